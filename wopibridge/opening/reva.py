"""``GET /wopi/iop/openinapp``: how Reva (and any web UI speaking its contract) opens a file.

Reva shows the body of a failed answer to the user, so every error is a short sentence. The
user's storage credential (``TokenHeader``) never goes into anything handed to the editor.
"""

from __future__ import annotations

from aiohttp import web

from wopibridge import keys
from wopibridge.errors import BadRequest, NotFound
from wopibridge.opening.common import check_iop_secret, discovery_app_url, open_file
from wopibridge.security.tokens import Mode
from wopibridge.wopi.links import is_web_url, with_wopisrc

VIEW_MODES: dict[str, Mode] = {
    "VIEW_MODE_READ_WRITE": "edit",
    "VIEW_MODE_READ_ONLY": "view",
    "VIEW_MODE_VIEW_ONLY": "view",
    "VIEW_MODE_PREVIEW": "view",
    "VIEW_MODE_EMBEDDED": "view",
}
USER_TYPES = {"regular", "federated", "ocm", "anonymous", "lightweight", "primary", "guest"}


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
    if not (query.get("appurl") or query.get("appviewurl")) and not _configured(
        request.app, app_name
    ):
        raise BadRequest("Missing parameter: appurl")
    # folderurl becomes CloseUrl; the editor URLs let PutRelativeFile name HostEditUrl and
    # HostViewUrl for the new file.
    extra = {name: query[name] for name in ("folderurl", "appurl", "appviewurl") if query.get(name)}
    for name, url in extra.items():
        if not is_web_url(url):
            raise BadRequest(f"{name} must be an http(s) URL")
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
        editor_url = await discovery_app_url(
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


def _configured(app: web.Application, name: str) -> bool:
    """Whether an app of this name is configured (case-insensitive)."""
    return bool(name) and name.lower() in app[keys.EDITORS].names()


def _storage_for_endpoint(request: web.Request, endpoint: str, fileid: str) -> tuple[str, str]:
    """The storage Reva's ``endpoint`` names (``storage_id$space_id``) and the reference in it:
    a configured storage's name, or a Reva storage id served by the configured CS3 gateway."""
    storage_id = endpoint.partition("$")[0].lower()
    registry = request.app[keys.STORAGES]
    if storage_id in registry.names():
        return storage_id, fileid
    if endpoint:
        try:
            storage, ref = registry.pick(endpoint, fileid)
        except NotFound:
            return "", fileid
        return storage.name, ref
    return "", fileid


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/iop/openinapp", openinapp)
