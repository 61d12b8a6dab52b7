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

from . import keys
from .errors import BadRequest, Unauthorized
from .storage.base import FileStat
from .tokens import Mode

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
    expected = request.config_dict[keys.SECRETS].iop_secret
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
) -> Opened:
    """Resolve a file and mint its access token; shared by every open endpoint."""
    app = request.config_dict
    registry = app[keys.STORAGES]
    storage = registry.get(storage_name) if storage_name else registry.default
    stat = await storage.resolve(ref)
    wopi_id = registry.wopi_id(storage, stat.file_id)
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
    return Opened(wopi_id, wopi_src, stat, token, info.ttl_ms)


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
    app_url = (query.get("appurl") if mode == "edit" else None) or query.get("appviewurl")
    app_url = app_url or query.get("appurl")
    if not app_url:
        raise BadRequest("Missing parameter: appurl")
    # folderurl becomes CloseUrl; the editor URLs let PutRelativeFile name HostEditUrl and
    # HostViewUrl for the new file.
    extra = {name: query[name] for name in ("folderurl", "appurl", "appviewurl") if query.get(name)}
    endpoint = query.get("endpoint", "")
    opened = await open_file(
        request,
        ref=query["fileid"],
        storage_name=_storage_for_endpoint(request, endpoint),
        mode=mode,
        user_id=query["userid"],
        user_name=query.get("username", ""),
        user_type=user_type,
        app_name=query.get("appname", ""),
        extra=extra,
    )
    return web.json_response(
        {
            "app-url": with_wopisrc(app_url, opened.wopi_src),
            "form-parameters": {
                "access_token": opened.token,
                "access_token_ttl": str(opened.ttl_ms),
            },
        }
    )


def _storage_for_endpoint(request: web.Request, endpoint: str) -> str:
    """The configured storage Reva's ``endpoint`` names (``storage_id$space_id``), if any."""
    storage_id = endpoint.partition("$")[0].lower()
    registry = request.config_dict[keys.STORAGES]
    return storage_id if storage_id in registry.names() else ""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/iop/openinapp", openinapp)
