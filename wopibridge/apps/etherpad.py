"""Etherpad through its stock HTTP API (``/api/1.2.15``) with an API key.

No plugin is needed: the pad is created or reset with ``createPad``/``setText``, changes are
detected by polling ``getRevisionsCount``, connected browsers are counted with
``padUsersCount``, and the content comes back with ``getText`` (plain text files) or the
``/p/<id>/export/etherpad`` export (``.etherpad`` files, Etherpad's own JSON format). Readers
get the pad's read-only id from ``getReadOnlyID``.

Etherpad always ends a pad with a newline; a file that did not end with one gets it removed
again on save, so opening and saving an unchanged file never changes its bytes.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from wopibridge.apps._bridged import BridgedAppBase
from wopibridge.apps.bridged import Loaded
from wopibridge.errors import BadRequest, PayloadTooLarge, Unavailable
from wopibridge.security.jsoninput import parse_json

API = "/api/1.2.15"
DEFAULT_EXTENSIONS = (".etherpad", ".txt")


def _pad_text(export: bytes) -> str:
    """The text of a ``.etherpad`` export (``{"pad:<id>": {"atext": {"text": ...}}, ...}``)."""
    if not export.strip():
        return ""
    try:
        data = parse_json(export, max_depth=64, what="The Etherpad export")
        for key, value in data.items():
            if key.startswith("pad:") and ":" not in key[4:] and isinstance(value, dict):
                return str(value["atext"]["text"])
    except (BadRequest, KeyError, TypeError, AttributeError):
        pass
    raise BadRequest("The file is not a valid Etherpad export")


class EtherpadApp(BridgedAppBase):
    label = "Etherpad"
    kind = "etherpad"
    default_extensions = DEFAULT_EXTENSIONS
    apikey_required = True

    async def _api(self, http: aiohttp.ClientSession, method: str, **params: str) -> dict[str, Any]:
        """Call one API method; answer its ``data`` or raise a WopiError."""
        form = {"apikey": self.config.apikey, **params}
        try:
            async with http.post(f"{self.config.url}{API}/{method}", data=form) as response:
                if response.status == 401:
                    raise Unavailable("Etherpad refused wopibridge's API key")
                self.check_status(response, method)
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self.unreachable(exc) from None
        code = reply.get("code") if isinstance(reply, dict) else None
        if code == 0:
            return dict(reply.get("data") or {})
        if code == 4:
            raise Unavailable("Etherpad refused wopibridge's API key")
        raise _ApiError(int(code) if isinstance(code, int) else -1, str(reply.get("message")))

    async def load(
        self, http: aiohttp.ClientSession, docid: str, filename: str, content: bytes
    ) -> Loaded:
        if len(content) > self.config.max_size:
            raise PayloadTooLarge("The file is too large for Etherpad")
        is_export = filename.lower().endswith(".etherpad")
        try:
            text = _pad_text(content) if is_export else content.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("The file is not UTF-8 text") from None
        with contextlib.suppress(_ApiError):  # an existing pad is reset below
            await self._api(http, "createPad", padID=docid)
        # setText, not createPad's text: createPad always appends a newline, setText only
        # when the text has none.
        await self._api(http, "setText", padID=docid, text=text)
        meta = {"format": "etherpad" if is_export else "text"}
        meta["newline"] = "1" if (text.endswith("\n") or is_export) else "0"
        return Loaded(ref=docid, meta=meta)

    async def fetch(self, http: aiohttp.ClientSession, loaded: Loaded, filename: str) -> bytes:
        if loaded.meta.get("format") == "etherpad":
            url = f"{self.config.url}/p/{quote(loaded.ref)}/export/etherpad"
            try:
                async with http.get(url) as response:
                    self.check_status(response, "export the pad")
                    return await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise self.unreachable(exc) from None
        text = str((await self._api(http, "getText", padID=loaded.ref)).get("text", ""))
        if loaded.meta.get("newline") == "0" and text.endswith("\n"):
            text = text[:-1]
        return text.encode("utf-8")

    async def revision(self, http: aiohttp.ClientSession, loaded: Loaded) -> str:
        data = await self._api(http, "getRevisionsCount", padID=loaded.ref)
        return str(data.get("revisions", ""))

    async def live_users(self, http: aiohttp.ClientSession, loaded: Loaded) -> int | None:
        data = await self._api(http, "padUsersCount", padID=loaded.ref)
        count = data.get("padUsersCount")
        return int(count) if isinstance(count, int) else None

    def _pad_url(self, pad: str, user_name: str) -> str:
        query = f"?{urlencode({'userName': user_name})}" if user_name else ""
        return f"{self.config.public_url}/p/{quote(pad)}{query}"

    def edit_url(self, loaded: Loaded, user_name: str) -> str:
        return self._pad_url(loaded.ref, user_name)

    async def view_url(
        self,
        http: aiohttp.ClientSession,
        docid: str,
        filename: str,
        content: bytes,
        live: Loaded | None,
        user_name: str,
    ) -> str:
        pad = (
            live.ref if live is not None else (await self.load(http, docid, filename, content)).ref
        )
        data = await self._api(http, "getReadOnlyID", padID=pad)
        return self._pad_url(str(data["readOnlyID"]), user_name)


class _ApiError(Exception):
    """Etherpad answered a non-zero ``code`` other than a bad API key."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
