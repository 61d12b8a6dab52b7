"""The host page: a full-page iframe that receives the access token by form POST.

``/wopi/open`` answers a ``host_url``: a short-lived link (encrypted and authenticated with a
key derived from the token secret, so the access token it carries is not readable from the
link, and it stops working after :data:`LINK_TTL` seconds). Opening it renders
``templates/hostpage.html.j2``, which POSTs ``access_token`` and ``access_token_ttl`` into the
iframe (the token never goes into the iframe URL), answers the editor's ``App_LoadingStatus``
with ``Host_PostmessageReady`` and closes on ``UI_Close``. On ``UI_FileVersions`` it shows
the versions panel (``docs/versions.md``): the list from ``{WOPISrc}/versions``, downloads, and
restores that first ask the editor to save (``Host_VersionRestore`` / ``Pre_Restore``, answered
by ``App_VersionRestore`` / ``Pre_Restore_Ack``), then restore and load the editor again.
The page's Content-Security-Policy lets it frame and post forms only to the editor's origin,
and fetch only from the WOPISrc's.

The page shows a loading card until the editor answers the handshake; when it has not answered
within the app's ``load_timeout`` it says so, naming the editor's origin, with a button that
loads it again. A link that expired or was tampered with gets a styled page saying so
(``errors.BROWSER_PAGE``), not a line of text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp_jinja2
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

from wopibridge.errors import NotFound

LINK_TTL = 120


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class HostPage:
    """What the page needs: where to POST, what to POST, and where to go on close."""

    app_url: str
    access_token: str
    access_token_ttl: int
    title: str = ""
    close_url: str = ""
    app: str = ""
    #: Seconds to wait for the editor's PostMessage handshake (0: none expected).
    load_timeout: int = 0
    #: Names of this user's saves of this file that were kept instead of landing, since the
    #: last time they were told (see :mod:`wopibridge.wopi.saves`).
    kept: tuple[str, ...] = ()


class HostLinks:
    """Mints and opens host-page links."""

    def __init__(
        self, token_secret: str, ttl: int = LINK_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        key = hashlib.sha256(b"wopibridge host page\0" + token_secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.ttl = ttl
        self._clock = clock

    def mint(self, page: HostPage) -> str:
        data = json.dumps(asdict(page)).encode()
        return self._fernet.encrypt_at_time(data, int(self._clock())).decode()

    def open(self, link: str) -> HostPage:
        try:
            plain = self._fernet.decrypt_at_time(link.encode(), self.ttl, int(self._clock()))
            data = json.loads(plain)
            data["kept"] = tuple(data.get("kept", ()))
            return HostPage(**data)
        except (InvalidToken, ValueError, TypeError):
            raise NotFound(
                f"Links that open a document work for {self.ttl} seconds; this one has expired "
                "or is not valid."
            ) from None


def _wopi_src(app_url: str) -> str:
    """The WOPISrc the editor was given (the versions panel calls the API under it)."""
    values = parse_qs(urlsplit(app_url).query).get("WOPISrc", [])
    return values[0] if values and values[0].startswith(("http://", "https://")) else ""


def render(request: web.Request, page: HostPage) -> web.Response:
    editor = _origin(page.app_url)
    nonce = secrets.token_urlsafe(16)
    wopi_src = _wopi_src(page.app_url)
    context: dict[str, Any] = {
        "page": page,
        "editor_origin": editor,
        "editor_name": page.app or "The editor",
        "load_timeout": page.load_timeout,
        "nonce": nonce,
        "wopi_src": wopi_src,
    }
    response = aiohttp_jinja2.render_template("hostpage.html.j2", request, context)
    connect = f" connect-src {_origin(wopi_src)};" if wopi_src else ""
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline';{connect} "
        f"frame-src {editor}; form-action {editor}; base-uri 'none'; frame-ancestors 'self'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
