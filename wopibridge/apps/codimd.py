"""CodiMD / HedgeDoc, following the calls listed in EDITORS.md.

* Load for editing: with an API key, CERN's ``PUT /api/notes/<id>`` (``{"content": md}``,
  ``Authorization: Bearer``) so the note id is the document id; without one (stock HedgeDoc
  1.x) ``POST /new`` with ``Content-Type: text/markdown``, the note id taken from
  ``Location``. The browser goes to ``/<id>?both``.
* Read-only: ``POST /new?mode=locked`` and the browser goes to ``/<id>/publish``.
* Content back: ``GET /<id>/download``; changes are detected by its digest.
* ``.zmd`` bundles: a stored ZIP of ``index.md`` and its images. Images are uploaded with
  ``POST /uploadimage`` on load (the Markdown's relative links become CodiMD's
  ``/uploads/upload_<hex>.<ext>`` links) and collected back from those links on save (links
  become relative names in the bundle again).
* A 413 from CodiMD means the file is too large for it.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

import aiohttp

from wopibridge.apps._bridged import BridgedAppBase
from wopibridge.apps.bridged import Loaded
from wopibridge.errors import BadRequest, PayloadTooLarge, Unavailable

DEFAULT_EXTENSIONS = (".md", ".txt", ".zmd")
BUNDLE_MARKDOWN = "index.md"
_UPLOAD_LINK = re.compile(
    r"(?:https?://[^\s()<>\"']*?)?/uploads/(upload_[0-9a-fA-F]+\.[A-Za-z0-9]{1,5})"
)
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}


def read_bundle(data: bytes) -> tuple[str, dict[str, bytes]]:
    """The Markdown and the attachments of a ``.zmd`` bundle (empty file: empty note)."""
    if not data:
        return "", {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            markdown = ""
            files: dict[str, bytes] = {}
            for entry in bundle.infolist():
                if entry.is_dir():
                    continue
                body = bundle.read(entry)
                if entry.filename == BUNDLE_MARKDOWN or (
                    entry.filename.endswith(".md") and not markdown
                ):
                    markdown = body.decode("utf-8")
                else:
                    files[entry.filename] = body
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError):
        raise BadRequest("The file is not a valid .zmd bundle") from None
    return markdown, files


def write_bundle(markdown: str, files: Mapping[str, bytes]) -> bytes:
    """A stored (uncompressed) ZIP, entries in a fixed order so equal content gives equal bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as bundle:
        for name in [BUNDLE_MARKDOWN, *sorted(files)]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            bundle.writestr(info, markdown.encode() if name == BUNDLE_MARKDOWN else files[name])
    return out.getvalue()


class CodiMDApp(BridgedAppBase):
    label = "CodiMD"
    kind = "codimd"
    default_extensions = DEFAULT_EXTENSIONS

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.apikey}"} if self.config.apikey else {}

    async def _new_note(self, http: aiohttp.ClientSession, markdown: str, *, locked: bool) -> str:
        """``POST /new`` (``?mode=locked`` for readers); the note id from ``Location``."""
        url = f"{self.config.url}/new" + ("?mode=locked" if locked else "")
        headers = {"Content-Type": "text/markdown; charset=utf-8", **self._headers()}
        try:
            async with http.post(
                url, data=markdown.encode(), headers=headers, allow_redirects=False
            ) as response:
                self.check_status(response, "create the note")
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.unreachable(exc) from None
        note = posixpath.basename(urlsplit(location).path.rstrip("/"))
        if not note:
            raise Unavailable("CodiMD did not say where the new note is")
        return note

    async def _put_note(self, http: aiohttp.ClientSession, note: str, markdown: str) -> bool:
        """CERN's ``PUT /api/notes/<id>``; ``False`` when the server has no such API."""
        url = f"{self.config.url}/api/notes/{quote(note)}"
        try:
            async with http.put(url, json={"content": markdown}, headers=self._headers()) as resp:
                if resp.status in (404, 405, 501):
                    return False
                if resp.status in (401, 403):
                    raise Unavailable("CodiMD refused wopibridge's API key")
                self.check_status(resp, "load the note")
                return True
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.unreachable(exc) from None

    async def _upload(self, http: aiohttp.ClientSession, name: str, body: bytes) -> str:
        form = aiohttp.FormData()
        ctype = _IMAGE_TYPES.get(posixpath.splitext(name)[1].lower(), "application/octet-stream")
        form.add_field("image", body, filename=posixpath.basename(name), content_type=ctype)
        try:
            async with http.post(
                f"{self.config.url}/uploadimage", data=form, headers=self._headers()
            ) as response:
                self.check_status(response, "store an image")
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self.unreachable(exc) from None
        link = reply.get("link") if isinstance(reply, dict) else None
        if not isinstance(link, str) or not _UPLOAD_LINK.search(link):
            raise Unavailable("CodiMD did not accept an image of the bundle")
        return link

    async def _markdown_of(
        self, http: aiohttp.ClientSession, filename: str, content: bytes
    ) -> tuple[str, bool]:
        if len(content) > self.config.max_size:
            raise PayloadTooLarge("The file is too large for CodiMD")
        if not filename.lower().endswith(".zmd"):
            try:
                return content.decode("utf-8"), False
            except UnicodeDecodeError:
                raise BadRequest("The file is not UTF-8 text") from None
        markdown, files = read_bundle(content)
        for name, body in files.items():
            link = await self._upload(http, name, body)
            markdown = re.sub(rf"(?<=\()\s*(?:\./)?{re.escape(name)}(?=[\s)])", link, markdown)
        return markdown, True

    async def load(
        self, http: aiohttp.ClientSession, docid: str, filename: str, content: bytes
    ) -> Loaded:
        markdown, bundle = await self._markdown_of(http, filename, content)
        meta = {"bundle": "1" if bundle else "0"}
        if self.config.apikey and await self._put_note(http, docid, markdown):
            return Loaded(ref=docid, meta=meta)
        return Loaded(ref=await self._new_note(http, markdown, locked=False), meta=meta)

    async def _download(self, http: aiohttp.ClientSession, note: str) -> bytes:
        url = f"{self.config.url}/{quote(note)}/download"
        try:
            async with http.get(url, headers=self._headers()) as response:
                self.check_status(response, "give the note back")
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.unreachable(exc) from None

    async def _collect(self, http: aiohttp.ClientSession, markdown: str) -> bytes:
        files: dict[str, bytes] = {}
        for name in sorted(set(_UPLOAD_LINK.findall(markdown))):
            url = f"{self.config.url}/uploads/{quote(name)}"
            try:
                async with http.get(url) as response:
                    if response.status == 404:
                        continue  # a dangling link: keep the text, nothing to collect
                    self.check_status(response, "give an image back")
                    files[name] = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self.unreachable(exc) from None
        local = _UPLOAD_LINK.sub(
            lambda m: m.group(1) if m.group(1) in files else m.group(0), markdown
        )
        return write_bundle(local, files)

    async def fetch(self, http: aiohttp.ClientSession, loaded: Loaded, filename: str) -> bytes:
        body = await self._download(http, loaded.ref)
        if loaded.meta.get("bundle") == "1":
            return await self._collect(http, body.decode("utf-8", errors="replace"))
        return body

    async def revision(self, http: aiohttp.ClientSession, loaded: Loaded) -> str:
        return hashlib.sha256(await self._download(http, loaded.ref)).hexdigest()

    async def live_users(self, http: aiohttp.ClientSession, loaded: Loaded) -> int | None:
        return None  # CodiMD says when users leave through the save webhook

    def edit_url(self, loaded: Loaded, user_name: str) -> str:
        return f"{self.config.public_url}/{quote(loaded.ref)}?both"

    async def view_url(
        self,
        http: aiohttp.ClientSession,
        docid: str,
        filename: str,
        content: bytes,
        live: Loaded | None,
        user_name: str,
    ) -> str:
        if live is not None:
            return f"{self.config.public_url}/{quote(live.ref)}/publish"
        markdown, _ = await self._markdown_of(http, filename, content)
        note = await self._new_note(http, markdown, locked=True)
        return f"{self.config.public_url}/{quote(note)}/publish"
