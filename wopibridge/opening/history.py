"""The versions page: ``GET /wopi/history?link=…``, CheckFileInfo's ``FileVersionUrl``.

Microsoft's *Version History* opens ``FileVersionUrl`` in a new browser tab, any time while
the document is open, so its link cannot be one of the host page's two-minute links. It is a
:class:`HistoryLinks` link: the WOPI file id, the access token the editor was given and that
token's expiry, encrypted and authenticated with a key derived from the token secret (under
its own label, so a host-page link is never taken for one). It works exactly as long as the
token it was minted from, never longer, and the token is not readable from it. It is minted
only for the apps that open it (``opens_version_url``), only where versions may be shown (a
storage that keeps them, not a secure-view token), when their CheckFileInfo asks.

The page (``templates/history.html.j2``) lists the versions newest first, with a download
link, *Open read-only* (``POST {WOPISrc}/versions/{id}/open``, in a new window) and, for an
edit token, *Restore*, all through the version API on the same token and under its rules: a
restore carries no WOPI lock, so while an editor holds the document locked the API answers
409 and the page says to close the document first; it never restores over an open document.
An expired or altered link gets the styled error page (404), a token that no longer works
(its file deleted) the API's answer as a page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from wopibridge.config import SETTINGS
from wopibridge.errors import BROWSER_PAGE, BadRequest, NotFound
from wopibridge.security.keys import ACCESS, FILE_ID, SECRETS, TOKENS
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.versions import VersionInfo
from wopibridge.wopi.context import WopiRequest
from wopibridge.wopi.names import split_ext
from wopibridge.wopi.versions import listed

#: The key derivation's label: a link of the host page never opens here, nor one of these there.
KEY_LABEL = b"wopibridge version history\0"


@dataclass(frozen=True, slots=True)
class HistoryLink:
    """What a versions page needs: the file, the token to act with, and when both expire."""

    file_id: str
    access_token: str
    #: the token's ``exp`` (seconds since the epoch): the link's too
    expires: int


class HistoryLinks:
    """Mints and opens versions-page links; ``clock`` is read when a link is opened."""

    def __init__(self, token_secret: str, clock: Callable[[], float] = time.time) -> None:
        key = hashlib.sha256(KEY_LABEL + token_secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._clock = clock

    def mint(self, link: HistoryLink) -> str:
        data = json.dumps([link.file_id, link.access_token, link.expires], separators=(",", ":"))
        return self._fernet.encrypt_at_time(data.encode(), int(self._clock())).decode()

    def open(self, text: str) -> HistoryLink:
        try:
            file_id, token, expires = json.loads(self._fernet.decrypt(text.encode()))
            if not isinstance(file_id, str) or not isinstance(token, str):
                raise TypeError("not a versions link")
            link = HistoryLink(file_id, token, int(expires))
        except (InvalidToken, ValueError, TypeError):
            raise NotFound("This link to the versions of a document is not valid.") from None
        if link.expires <= self._clock():
            raise NotFound(
                "A link to the versions of a document works as long as the document's access; "
                "this one has expired."
            )
        return link


class VersionPages:
    """``FileVersionUrl`` for CheckFileInfo. Its key is derived on first use (the secrets
    are loaded when the app starts, after the hooks were built); ``clock`` may be replaced
    before then (the tests move time with it)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.clock: Callable[[], float] = time.time
        self._links: HistoryLinks | None = None

    @property
    def links(self) -> HistoryLinks:
        if self._links is None:
            self._links = HistoryLinks(self._app[SECRETS].token_secret, clock=lambda: self.clock())
        return self._links

    def url(self, access: AccessToken, token: str) -> str:
        link = self.links.mint(HistoryLink(access.file_id, token, access.expires))
        return f"{self._app[SETTINGS].server.public_url}/wopi/history?link={link}"


VERSION_PAGES: web.AppKey[VersionPages] = web.AppKey("version_pages", VersionPages)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _row(version: VersionInfo, name: str, base: str, token: str) -> dict[str, Any]:
    when = time.gmtime(version.mtime_ns // 1_000_000_000)
    stem, ext = split_ext(name)
    return {
        "id": version.version_id,
        "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", when),
        "size": _size(version.size),
        "author": version.author,
        "href": f"{base}/{version.version_id}/contents?access_token={quote(token, safe='')}",
        "download": f"{stem} ({time.strftime('%Y-%m-%d %H.%M.%S', when)}){ext}",
    }


async def history_page(request: web.Request) -> web.Response:
    request[BROWSER_PAGE] = True  # a person reads what goes wrong here: answer with a page
    text = request.query.get("link", "")
    if not text:
        raise BadRequest("The link is incomplete")
    link = request.app[VERSION_PAGES].links.open(text)
    access = await request.app[TOKENS].resolve(link.access_token, link.file_id)
    if access.file_id != link.file_id or access.purpose:
        raise NotFound("This link to the versions of a document is not valid.")
    request[ACCESS] = access
    request[FILE_ID] = link.file_id
    wopi = WopiRequest.of(request)
    versions = await listed(wopi)  # secure view and storages without versions: refused
    stat = await wopi.stat()
    public = request.app[SETTINGS].server.public_url
    wopi_src = f"{public}/wopi/files/{link.file_id}"
    nonce = secrets.token_urlsafe(16)
    context = {
        "name": stat.name,
        "rows": [_row(v, stat.name, wopi_src + "/versions", link.access_token) for v in versions],
        "can_restore": access.can_write,
        "wopi_src": wopi_src,
        "access_token": link.access_token,
        "nonce": nonce,
    }
    response = aiohttp_jinja2.render_template("history.html.j2", request, context)
    parts = urlsplit(public)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        f"connect-src {parts.scheme}://{parts.netloc}; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
