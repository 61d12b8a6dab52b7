"""``POST /wopi/iop/new``: a new document from a template, in Reva's openinapp style.

Reva's own "new from template" is not implemented; this endpoint takes what openinapp takes
(``Authorization: Bearer <iop secret>``, ``TokenHeader`` with the user's storage credential,
``userid``, ``username``, ``usertype``, ``email``, ``appname``, ``endpoint``, ``lang``) plus:

- ``folder``: the folder's path on the storage ``endpoint`` names (the default storage
  without one); ``""`` or absent for its root;
- ``filename``: the wanted name; a taken one becomes ``name (1).ext``…;
- ``template``: ``blank`` (default) or a path on the same storage, read as the user.

The app is chosen as openinapp chooses it: ``appname`` naming a configured app (its discovery
gives the ``editnew`` URL), or ``appurl``, the editor URL Reva's app registry gives (then
``appname`` may be any app's name). The answer is openinapp's (``app-url``,
``form-parameters``) plus ``file-id`` and ``name``.
"""

from __future__ import annotations

from aiohttp import web

from wopibridge.apps.keys import EDITORS
from wopibridge.errors import BadRequest
from wopibridge.jsonio import json_response
from wopibridge.opening.common import (
    check_iop_secret,
    discovery_app_url,
    open_file,
    unnamed_endpoint_storage,
)
from wopibridge.opening.newdoc import create_document, removed_on_failure, resolve_template
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.links import is_web_url, with_wopisrc
from wopibridge.wopi.names import check_editor_name, split_ext

USER_TYPES = {"regular", "federated", "ocm", "anonymous", "lightweight", "primary", "guest"}


async def new_document(request: web.Request) -> web.Response:
    check_iop_secret(request)
    query = request.query
    for name in ("filename", "userid"):
        if not query.get(name):
            raise BadRequest(f"Missing parameter: {name}")
    app_name, app_url = query.get("appname", ""), query.get("appurl", "")
    user_type = query.get("usertype", "regular").lower() or "regular"
    if user_type not in USER_TYPES:
        raise BadRequest("Unknown user type")
    name = check_editor_name(query["filename"])
    extension = split_ext(name)[1]
    editors = request.app[EDITORS]
    editor = editors.get(app_name) if app_name.lower() in editors.names() else None
    if editor is None and not app_url:
        raise BadRequest("Missing parameter: appurl" if not app_name else "Unknown app")
    if app_url and not is_web_url(app_url):
        raise BadRequest("appurl must be an http(s) URL")
    if editor is not None and not editor.can_edit(extension):
        raise BadRequest(f"The {editor.name} editor cannot create {extension or 'these'} files")
    credential = request.headers.get("TokenHeader") or None
    storages = request.app[STORAGES]
    endpoint = query.get("endpoint", "").partition("$")[0].lower()
    if endpoint in storages.names():
        storage_name = endpoint
    else:
        storage_name = unnamed_endpoint_storage(request.app) if endpoint else storages.default.name
    storage = storages.bound(storage_name, credential)
    spec: object = query.get("template") or None
    if spec not in (None, "blank"):
        spec = {"storage": storage_name, "path": str(spec)}
    template = await resolve_template(request.app, spec, extension, credential)
    extra = {"email": query["email"][:256]} if query.get("email") else {}
    created = await create_document(
        storage, query.get("folder", "").strip("/"), name, template, editor
    )
    if app_url:
        extra["appurl"] = app_url
    async with removed_on_failure(storage, created):
        opened = await open_file(
            request,
            ref=created.stat.file_id,
            storage_name=storage_name,
            mode="edit",
            user_id=query["userid"],
            user_name=query.get("username", ""),
            user_type=user_type,
            app_name=editor.name if editor is not None else app_name,
            extra={**created.extra, **extra},
            credential=credential,
        )
        if editor is not None:
            url = await discovery_app_url(
                request.app, opened, editor.name, "editnew", query.get("lang", "")
            )
        else:
            url = with_wopisrc(app_url, opened.wopi_src)
    answer: dict[str, object] = {
        "app-url": url,
        "form-parameters": {
            "access_token": opened.token,
            "access_token_ttl": str(opened.ttl_ms),
        },
        "file-id": opened.wopi_id,
        "name": created.stat.name,
    }
    return json_response(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/wopi/iop/new", new_document)
