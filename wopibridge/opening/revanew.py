"""``POST /wopi/iop/new``: a new document from a template, in Reva's openinapp style.

Reva's own "new from template" is not implemented; this endpoint takes what openinapp takes
(``Authorization: Bearer <iop secret>``, ``TokenHeader`` with the user's storage credential,
``userid``, ``username``, ``usertype``, ``email``, ``appname``, ``endpoint``, ``lang``) plus:

- ``folder``: the folder's path on the storage ``endpoint`` names (the default storage
  without one); ``""`` or absent for its root;
- ``filename``: the wanted name; a taken one becomes ``name (1).ext``…;
- ``template``: ``blank`` (default) or a path on the same storage, read as the user.

``appname`` must be a configured app: its discovery gives the ``editnew`` URL. The answer is
openinapp's (``app-url``, ``form-parameters``) plus ``file-id`` and ``name``.
"""

from __future__ import annotations

from aiohttp import web

from wopibridge.apps.keys import EDITORS
from wopibridge.errors import BadRequest
from wopibridge.jsonio import json_response
from wopibridge.opening.common import check_iop_secret, discovery_app_url, open_file
from wopibridge.opening.newdoc import create_document, resolve_template
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.names import check_editor_name, split_ext

USER_TYPES = {"regular", "federated", "ocm", "anonymous", "lightweight", "primary", "guest"}


async def new_document(request: web.Request) -> web.Response:
    check_iop_secret(request)
    query = request.query
    for name in ("filename", "userid", "appname"):
        if not query.get(name):
            raise BadRequest(f"Missing parameter: {name}")
    user_type = query.get("usertype", "regular").lower() or "regular"
    if user_type not in USER_TYPES:
        raise BadRequest("Unknown user type")
    name = check_editor_name(query["filename"])
    extension = split_ext(name)[1]
    editors = request.app[EDITORS]
    if query["appname"].lower() not in editors.names():
        raise BadRequest("Unknown app")
    editor = editors.get(query["appname"])
    if not editor.can_edit(extension):
        raise BadRequest(f"The {editor.name} editor cannot create {extension or 'these'} files")
    credential = request.headers.get("TokenHeader") or None
    storages = request.app[STORAGES]
    endpoint = query.get("endpoint", "").partition("$")[0].lower()
    storage_name = endpoint if endpoint in storages.names() else storages.default.name
    storage = storages.bound(storage_name, credential)
    spec: object = query.get("template") or None
    if spec not in (None, "blank"):
        spec = {"storage": storage_name, "path": str(spec)}
    template = await resolve_template(request.app, spec, extension, credential)
    created = await create_document(
        storage, query.get("folder", "").strip("/"), name, template, editor
    )
    extra = dict(created.extra)
    if query.get("email"):
        extra["email"] = query["email"][:256]
    opened = await open_file(
        request,
        ref=created.stat.file_id,
        storage_name=storage_name,
        mode="edit",
        user_id=query["userid"],
        user_name=query.get("username", ""),
        user_type=user_type,
        app_name=editor.name,
        extra=extra,
        credential=credential,
    )
    url = await discovery_app_url(
        request.app, opened, editor.name, "editnew", query.get("lang", "")
    )
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
