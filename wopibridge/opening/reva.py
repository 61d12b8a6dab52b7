"""``GET /wopi/iop/openinapp``: how Reva (and any web UI speaking its contract) opens a file.

Reva shows the body of a failed answer to the user, so every error is a short sentence. The
user's storage credential (``TokenHeader``) never goes into anything handed to the editor.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from wopibridge import keys
from wopibridge.errors import BadRequest, NotFound, Unauthorized
from wopibridge.opening import native, wiring
from wopibridge.security.tokens import Mode
from wopibridge.storage.base import FileStat
from wopibridge.storage.factory import MeshRegistry, file_locks, locked_elsewhere, with_credential
from wopibridge.wopi.desktoplocks import desktop_lock_holder

VIEW_MODES: dict[str, Mode] = {
    "VIEW_MODE_READ_WRITE": "edit",
    "VIEW_MODE_READ_ONLY": "view",
    "VIEW_MODE_VIEW_ONLY": "view",
    "VIEW_MODE_PREVIEW": "view",
    "VIEW_MODE_EMBEDDED": "view",
}
USER_TYPES = {"regular", "federated", "ocm", "anonymous", "lightweight", "primary", "guest"}


def check_iop_secret(request: web.Request) -> None:
    """Constant-time check of ``Authorization: Bearer <iop secret>``."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[keys.SECRETS].iop_secret
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise Unauthorized("Client not authorized")


def guest_name(user_id: str) -> str:
    """A stable display name for users that come without one (public links)."""
    return "Guest " + hashlib.sha256(user_id.encode()).hexdigest()[:6].upper()


def with_wopisrc(app_url: str, wopi_src: str) -> str:
    """Append ``WOPISrc`` to an editor URL, whatever it already ends with."""
    separator = "" if app_url.endswith(("?", "&")) else ("&" if "?" in app_url else "?")
    return f"{app_url}{separator}WOPISrc={quote(wopi_src, safe='')}"


@dataclass(frozen=True, slots=True)
class Opened:
    wopi_id: str
    wopi_src: str
    stat: FileStat
    token: str
    ttl_ms: int
    mode: Mode = "view"
    forced_reason: str = ""


LOCKED_ELSEWHERE = "The file is being edited at another site"


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
) -> Opened:
    """Resolve a file and mint its access token; shared by every open endpoint.

    ``credential`` is the user's own storage credential (Reva's ``TokenHeader``): the file is
    resolved with it and it travels sealed in the token. An edit open of a file locked by
    another site is downgraded to view, with the reason.
    """
    app = request.app
    registry = app[keys.STORAGES]
    storage = registry.get(storage_name) if storage_name else registry.default
    storage = with_credential(storage, credential)
    stat = await storage.resolve(ref)
    wopi_id = registry.wopi_id(storage, stat.file_id)
    forced_reason = ""
    if mode == "edit":
        site = app[keys.SETTINGS].server.public_url
        if await locked_elsewhere(file_locks(storage, app[keys.LOCKS], site), stat.identity):
            mode, forced_reason = "view", LOCKED_ELSEWHERE
    if mode == "edit":  # a desktop office holding the file: open it read-only
        holder = await desktop_lock_holder(storage, stat.file_id, stat)
        if holder:
            mode, forced_reason = "view", holder
    if credential and isinstance(registry, MeshRegistry) and hasattr(storage, "with_credential"):
        extra = {**(extra or {}), **registry.seal_credential(storage.name, credential)}
    token, info = app[keys.TOKENS].mint(
        file_id=wopi_id,
        user_id=user_id,
        user_name=user_name or guest_name(user_id),
        user_type=user_type,
        app=app_name,
        mode=mode,
        extra=extra,
    )
    wopi_src = f"{app[keys.SETTINGS].server.public_url}/wopi/files/{wopi_id}"
    return Opened(wopi_id, wopi_src, stat, token, info.ttl_ms, mode, forced_reason)


async def openinapp(request: web.Request) -> web.Response:
    check_iop_secret(request)
    query = request.query
    for name in ("fileid", "viewmode", "userid"):
        if not query.get(name):
            raise BadRequest(f"Missing parameter: {name}")
    mode = VIEW_MODES.get(query["viewmode"])
    if mode is None:
        raise BadRequest("Unknown view mode")
    user_type = query.get("usertype", "regular").lower() or "regular"
    if user_type not in USER_TYPES:
        raise BadRequest("Unknown user type")
    app_name = query.get("appname", "")
    if not (query.get("appurl") or query.get("appviewurl")) and not wiring.configured(
        request.app, app_name
    ):
        raise BadRequest("Missing parameter: appurl")
    # folderurl becomes CloseUrl; the editor URLs let PutRelativeFile name HostEditUrl and
    # HostViewUrl for the new file.
    extra = {name: query[name] for name in ("folderurl", "appurl", "appviewurl") if query.get(name)}
    endpoint = query.get("endpoint", "")
    storage_name, ref = _storage_for_endpoint(request, endpoint, query["fileid"])
    opened = await open_file(
        request,
        ref=ref,
        storage_name=storage_name,
        mode=mode,
        user_id=query["userid"],
        user_name=query.get("username", ""),
        user_type=user_type,
        app_name=query.get("appname", ""),
        extra=extra,
        credential=request.headers.get("TokenHeader") or None,
    )
    app_url = (query.get("appurl") if opened.mode == "edit" else None) or query.get("appviewurl")
    app_url = app_url or query.get("appurl", "")
    if app_url:
        editor_url = with_wopisrc(app_url, opened.wopi_src)
    else:  # no appurl from Reva: the configured app's discovery gives it
        editor_url = await native.discovery_app_url(
            request.app, opened, app_name, opened.mode, query.get("lang", "")
        )
    answer: dict[str, object] = {
        "app-url": editor_url,
        "form-parameters": {
            "access_token": opened.token,
            "access_token_ttl": str(opened.ttl_ms),
        },
    }
    if opened.forced_reason:
        answer["forced-viewmode-reason"] = opened.forced_reason
    return web.json_response(answer)


def _storage_for_endpoint(request: web.Request, endpoint: str, fileid: str) -> tuple[str, str]:
    """The storage Reva's ``endpoint`` names (``storage_id$space_id``) and the reference in it:
    a configured storage's name, or a Reva storage id served by the configured CS3 gateway."""
    storage_id = endpoint.partition("$")[0].lower()
    registry = request.app[keys.STORAGES]
    if storage_id in registry.names():
        return storage_id, fileid
    if endpoint and isinstance(registry, MeshRegistry):
        try:
            storage, ref = registry.pick(endpoint, fileid)
        except NotFound:
            return "", fileid
        return storage.name, ref
    return "", fileid


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/iop/openinapp", openinapp)
