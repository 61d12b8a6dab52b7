"""``GET /wopi/iop/openinapp``: how Reva (and any web UI speaking its contract) opens a file.

Reva shows the body of a failed answer to the user, so every error is a short sentence. The
user's storage credential (``TokenHeader``) never goes into anything handed to the editor.

View modes: ``VIEW_MODE_VIEW_ONLY`` mints a secure-view token (no download, print, copy or
export; watermarked where the editor can); ``VIEW_MODE_EMBEDDED`` a view token for the editor's
``embedview`` action when the app is configured here (Reva has no URL for it).
"""

from __future__ import annotations

from aiohttp import web

from wopibridge.apps.keys import EDITORS
from wopibridge.errors import BadRequest, NotFound
from wopibridge.jsonio import json_response
from wopibridge.opening.common import (
    Opened,
    check_iop_secret,
    check_secure_view,
    discovery_app_url,
    open_file,
    reissue,
    unnamed_endpoint_storage,
)
from wopibridge.security.keys import FILE_ID
from wopibridge.security.tokens import Mode
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.links import is_web_url, with_wopisrc, without_wopisrc

#: Reva's view mode → the token's mode and the discovery action ("" = from the token).
VIEW_MODES: dict[str, tuple[Mode, str]] = {
    "VIEW_MODE_READ_WRITE": ("edit", ""),
    "VIEW_MODE_READ_ONLY": ("view", ""),
    "VIEW_MODE_VIEW_ONLY": ("secureview", "view"),
    "VIEW_MODE_PREVIEW": ("view", ""),
    "VIEW_MODE_EMBEDDED": ("view", "embedview"),
}
USER_TYPES = {"regular", "federated", "ocm", "anonymous", "lightweight", "primary", "guest"}


async def openinapp(request: web.Request) -> web.Response:
    check_iop_secret(request)
    query = request.query
    for name in ("fileid", "viewmode", "userid"):
        if not query.get(name):
            raise BadRequest(f"Missing parameter: {name}")
    wanted = VIEW_MODES.get(query["viewmode"])
    if wanted is None:
        raise BadRequest("Unknown view mode")
    mode, action = wanted
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
    if query.get("email"):  # for the secure-view watermark's {email}
        extra["email"] = query["email"][:256]
    configured = _configured(request.app, app_name)
    if configured:
        check_secure_view(request.app[EDITORS].get(app_name), mode)
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
        short=False,  # replaced below by the one token handed out
    )
    app_url = (query.get("appurl") if opened.mode == "edit" else None) or query.get("appviewurl")
    app_url = app_url or query.get("appurl", "")
    if configured and _own_action(request.app, app_name, opened, action):
        app_url = ""  # the configured app's embedview, or editnew for an empty file
    more: dict[str, str] = {}
    if app_url:
        editor_url = with_wopisrc(app_url, opened.wopi_src)
    else:  # no appurl from Reva: the configured app's discovery gives it
        editor_url = await discovery_app_url(
            request.app, opened, app_name, action, query.get("lang", "")
        )
        if not request.app[EDITORS].get(app_name).bridged:
            # The token carries the editor URL, as it does Reva's appurl, so that
            # PutRelativeFile can name HostEditUrl/HostViewUrl for the new file.
            more["appurl"] = without_wopisrc(editor_url, opened.wopi_src)
    opened = await reissue(request.app, opened, more)
    request[FILE_ID] = opened.wopi_id
    # access_token_ttl is a number, as from /wopi/open and in Microsoft's host-page example.
    # Reva reads only access_token from form-parameters and posts its own access_token_ttl.
    answer: dict[str, object] = {
        "app-url": editor_url,
        "form-parameters": {"access_token": opened.token, "access_token_ttl": opened.ttl_ms},
    }
    if opened.forced_reason:
        answer["forced-viewmode-reason"] = opened.forced_reason
    return json_response(answer)


def _own_action(app: web.Application, name: str, opened: Opened, action: str) -> bool:
    """Whether the app's own URL replaces Reva's: ``embedview`` for the embedded mode,
    ``editnew`` for an empty file opened for editing, and only when the app's discovery lists
    that action (otherwise, or while the editor is unreachable, Reva's URL stands)."""
    if action != "embedview":
        if opened.mode != "edit" or opened.stat.size:
            return False
        action = "editnew"
    return app[EDITORS].get(name).lists_action(opened.stat.extension, action)


def _configured(app: web.Application, name: str) -> bool:
    """Whether an app of this name is configured (case-insensitive)."""
    return bool(name) and name.lower() in app[EDITORS].names()


def _storage_for_endpoint(request: web.Request, endpoint: str, fileid: str) -> tuple[str, str]:
    """The storage Reva's ``endpoint`` names (``storage_id$space_id``) and the reference in it:
    a configured storage's name, or a Reva storage id served by the configured CS3 gateway."""
    storage_id = endpoint.partition("$")[0].lower()
    registry = request.app[STORAGES]
    if storage_id in registry.names():
        return storage_id, fileid
    if endpoint:
        try:
            storage, ref = registry.pick(endpoint, fileid)
        except NotFound:
            return unnamed_endpoint_storage(request.app), fileid
        return storage.name, ref
    return "", fileid


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/iop/openinapp", openinapp)
