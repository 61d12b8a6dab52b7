"""What every way of opening a file shares: the iop secret, resolving a file and minting its
token, choosing the editor and building its URL.

``reva`` (openinapp) and ``native`` (``/wopi/open``) both sit on this module and never import
each other; ``wiring`` adds their routes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

from aiohttp import web

from wopibridge.apps.base import EditorApp, OpenRequest
from wopibridge.apps.keys import EDITORS
from wopibridge.config import SETTINGS
from wopibridge.errors import BadRequest, NotFound, Unauthorized
from wopibridge.locks.keys import LOCKS
from wopibridge.security.failures import FailureLog
from wopibridge.security.keys import SECRETS, TOKENS
from wopibridge.security.tokens import AccessToken, Mode
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.factory import (
    STORAGES,
    locked_elsewhere,
    owner_holder,
    with_credential,
)
from wopibridge.wopi.desktoplocks import desktop_lock_holder

#: Refused iop secrets, logged with the peer address at a bounded rate.
IOP_FAILURES: web.AppKey[FailureLog] = web.AppKey("iop_failures", FailureLog)


def check_iop_secret(request: web.Request) -> None:
    """Constant-time check of ``Authorization: Bearer <iop secret>``; a refusal is logged
    (rate-limited) with the peer's address."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[SECRETS].iop_secret
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        failures = request.app.get(IOP_FAILURES)
        if failures is not None:
            failures.record(request.remote)
        raise Unauthorized("Client not authorized")


def check_secure_view(editor: EditorApp | None, mode: Mode) -> None:
    """Secure view needs an editor that enforces it in the browser; bridged editors
    (CodiMD, Etherpad) show the plain text to anyone holding the page."""
    if mode == "secureview" and editor is not None and editor.bridged:
        raise BadRequest(f"{editor.name} cannot show files in secure view")


def unnamed_endpoint_storage(app: web.Application) -> str:
    """The storage for a Reva ``endpoint`` that names no configured storage: the only one
    there is (Reva's id for it is not its name here), never a guess among several, where the
    same reference could name another file that the user was never granted."""
    registry = app[STORAGES]
    if len(registry.names()) > 1:
        raise NotFound("The storage of this file is not served here")
    return registry.default.name


def guest_name(user_id: str) -> str:
    """A stable display name for users that come without one (public links)."""
    return "Guest " + hashlib.sha256(user_id.encode()).hexdigest()[:6].upper()


@dataclass(frozen=True, slots=True)
class Opened:
    wopi_id: str
    wopi_src: str
    stat: FileStat
    token: str
    info: AccessToken
    mode: Mode = "view"
    forced_reason: str = ""

    @property
    def ttl_ms(self) -> int:
        return self.info.ttl_ms


LOCKED_ELSEWHERE = "The file is being edited at another site"


async def locked_at_owner(app: web.Application, storage: Storage, stat: FileStat) -> str:
    """Why an edit open must be read-only because the owner's storage holds a lock on the file
    for someone else (a desktop WebDAV client, another site's host), naming the holder where
    the storage says who; ``""`` when it does not."""
    site = app[SETTINGS].server.public_url
    holder = await owner_holder(storage, app[LOCKS], site, stat.identity)
    if holder is None:
        return ""
    return f"The file is locked at its storage by {holder.name or 'another client'}"


async def open_file(
    request: web.Request,
    *,
    ref: str,
    storage_name: str,
    mode: Mode,
    user_id: str,
    user_name: str,
    user_type: str,
    app_name: str,
    extra: dict[str, str] | None = None,
    credential: str | None = None,
    short: bool = True,
) -> Opened:
    """Resolve a file and mint its access token; shared by every open endpoint.

    ``credential`` is the user's own storage credential (Reva's ``TokenHeader``): the file is
    resolved with it and it travels sealed in the token. An edit open of a file locked by
    another site is downgraded to view, with the reason. ``short=False``: a plain JWT even
    with short tokens on, for a token that :func:`reissue` replaces before it is handed out.
    """
    app = request.app
    registry = app[STORAGES]
    storage = registry.get(storage_name) if storage_name else registry.default
    storage = with_credential(storage, credential)
    stat = await storage.resolve(ref)
    wopi_id = registry.wopi_id(storage, stat.file_id)
    forced_reason = ""
    if mode == "edit" and stat.read_only_reason:
        mode, forced_reason = "view", stat.read_only_reason
    if mode == "edit":
        forced_reason = await locked_at_owner(app, storage, stat)
        if forced_reason:
            mode = "view"
    if mode == "edit":
        site = app[SETTINGS].server.public_url
        if await locked_elsewhere(storage, app[LOCKS], site, stat.identity):
            mode, forced_reason = "view", LOCKED_ELSEWHERE
    if mode == "edit":  # a desktop office holding the file: open it read-only
        holder = await desktop_lock_holder(storage, stat.file_id, stat)
        if holder:
            mode, forced_reason = "view", holder
    if credential and storage.capabilities.user_credential:
        extra = {**(extra or {}), **registry.seal_credential(storage.name, credential)}
    token, info = await app[TOKENS].issue(
        file_id=wopi_id,
        user_id=user_id,
        user_name=user_name or guest_name(user_id),
        user_type=user_type,
        app=app_name,
        mode=mode,
        extra=extra,
        short=short,
    )
    wopi_src = f"{app[SETTINGS].server.public_url}/wopi/files/{wopi_id}"
    return Opened(wopi_id, wopi_src, stat, token, info, mode, forced_reason)


async def reissue(app: web.Application, opened: Opened, extra: dict[str, str]) -> Opened:
    """The same open with the token that is handed out, carrying ``extra`` besides the first
    one's claims: one token (and with short tokens one handle) per open, not two."""
    info = opened.info
    token, info = await app[TOKENS].issue(
        file_id=info.file_id,
        user_id=info.user_id,
        user_name=info.user_name,
        user_type=info.user_type,
        app=info.app,
        mode=info.mode,
        extra={**info.extra, **extra},
    )
    return replace(opened, token=token, info=info)


@dataclass(frozen=True, slots=True)
class OpenResult:
    app: EditorApp
    app_url: str
    access_token: str
    access_token_ttl: int
    mode: str
    file_id: str
    forced_viewmode_reason: str = ""


async def open_document(
    app: web.Application,
    *,
    storage: Storage,
    backend_id: str,
    stat: FileStat,
    app_name: str = "",
    mode: str = "view",
    user_id: str,
    user_name: str,
    user_type: str = "regular",
    lang: str = "",
    extra: dict[str, str] | None = None,
) -> OpenResult:
    """Choose the app, decide the mode (an edit is downgraded when a desktop office holds the
    file or the app can only view its type), mint the token and build the editor URL.

    ``secureview`` mints a secure-view token and opens the view action; ``embedview`` a view
    token and the ``embedview`` action (discovery falls back to ``view``)."""
    registry = app[EDITORS]
    ext = stat.extension
    wants_edit = mode in ("edit", "editnew")
    editor = registry.get(app_name) if app_name else registry.choose(ext, edit=wants_edit)
    check_secure_view(editor, "secureview" if mode == "secureview" else "view")
    reason = ""
    if wants_edit:
        holder = await desktop_lock_holder(storage, backend_id, stat)
        if stat.read_only_reason:
            reason = stat.read_only_reason
        elif holder:
            reason = holder
        elif owner_reason := await locked_at_owner(app, storage, stat):
            reason = owner_reason
        elif not editor.can_edit(ext):
            reason = f"{editor.name} can only view {ext or 'these'} files"
    token_mode: Mode = "edit" if wants_edit and not reason else "view"
    if mode == "secureview":
        token_mode = "secureview"
    action = {"secureview": "view"}.get(mode, mode) if not reason else "view"
    if action == "edit" and stat.size == 0:
        action = "editnew"
    wopi_id = app[STORAGES].wopi_id(storage, backend_id)
    raw, info = await app[TOKENS].issue(
        file_id=wopi_id,
        user_id=user_id,
        user_name=user_name,
        user_type=user_type,
        app=editor.name,
        mode=token_mode,
        extra=extra,
    )
    public = app[SETTINGS].server.public_url
    request = OpenRequest(
        wopi_src=f"{public}/wopi/files/{wopi_id}",
        stat=stat,
        token=info,
        access_token=raw,
        mode=token_mode,
        lang=lang,
        action=action,
    )
    url = await editor.editor_url(request)
    return OpenResult(editor, url, raw, info.ttl_ms, token_mode, wopi_id, reason)


async def discovery_app_url(
    app: web.Application, opened: Opened, app_name: str, action: str = "", lang: str = ""
) -> str:
    """The editor URL for ``openinapp`` calls that bring no ``appurl`` (or want an action
    Reva has no URL for, ``embedview``). ``action`` empty: from the token's mode."""
    registry = app[EDITORS]
    ext = opened.stat.extension
    editor = (
        registry.get(app_name) if app_name else registry.choose(ext, edit=opened.mode == "edit")
    )
    request = OpenRequest(
        wopi_src=opened.wopi_src,
        stat=opened.stat,
        token=opened.info,
        access_token=opened.token,
        mode=opened.info.mode,
        lang=lang,
        action=action,
    )
    return await editor.editor_url(request)
