"""Opening a file without Reva: ``POST /wopi/open`` for web UIs, and the host page it links.

Request (``Authorization: Bearer <iop secret>``), JSON::

    {"path": "reports/q3.odt"  |  "file_id": "<WOPI file id>",
     "storage": "<name>",              # optional, with "path"; default storage otherwise
     "app": "collabora",               # optional: chosen by extension when absent
     "mode": "view" | "edit" | "editnew" | "embedview" | "secureview",   # default "view"
     "user": {"id": "...", "name": "...", "type": "regular|federated|ocm|anonymous",
              "email": "..."},             # email: optional, for the watermark
     "lang": "de-DE",                  # optional
     "close_url": "https://ui/..."}    # optional: where the host page goes on UI_Close

Answer 200::

    {"app": "...", "app_url": "<editor URL with WOPISrc>", "file_id": "...", "mode": "edit",
     "form_parameters": {"access_token": "...", "access_token_ttl": <ms since epoch>},
     "host_url": "<short-lived link to the host page>",
     "forced_viewmode_reason": "..."}   # only when an edit was downgraded

A new document (``"mode": "new"``) names where it goes instead of ``path``/``file_id``::

    {"mode": "new", "folder": "reports", "name": "Q4.docx", "storage": "<name>",
     "template": "blank" | {"path": "...", "storage": "..."} | {"file_id": "..."}, ...}

It is created under the first free variant of ``name`` (``Q4 (1).docx``…) and opened for
editing; the answer adds ``"name"``, the name it got (:mod:`wopibridge.opening.newdoc`).

The body is read with a size and depth cap (:mod:`wopibridge.security.jsoninput`); ``close_url``
must be an absolute http(s) URL. The decisions are
:func:`wopibridge.opening.common.open_document`'s.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from wopibridge.apps.keys import EDITORS
from wopibridge.config import SETTINGS
from wopibridge.errors import BROWSER_PAGE, BadRequest
from wopibridge.jsonio import json_response
from wopibridge.opening.common import check_iop_secret, open_document
from wopibridge.opening.hostpage import HostLinks, HostPage, render
from wopibridge.opening.newdoc import (
    Created,
    create_document,
    removed_on_failure,
    resolve_template,
)
from wopibridge.security.jsoninput import read_json
from wopibridge.security.keys import FILE_ID, SECRETS
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.links import is_web_url
from wopibridge.wopi.names import check_editor_name, split_ext
from wopibridge.wopi.saves.keeper import CONFLICTS

MODES = ("view", "edit", "editnew", "embedview", "secureview", "new")
USER_TYPES = ("regular", "federated", "ocm", "anonymous", "guest")


def _text(body: dict[str, Any], key: str, *, required: bool = False, limit: int = 1024) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"{key} must be a string of at most {limit} characters")
    if required and not value:
        raise BadRequest(f"{key} is required")
    return value


async def open_file(request: web.Request) -> web.Response:
    check_iop_secret(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    user = body.get("user") or {}
    if not isinstance(user, dict):
        raise BadRequest("user must be an object with id, name and type")
    mode = _text(body, "mode") or "view"
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    user_type = _text(user, "type") or "regular"
    if user_type not in USER_TYPES:
        raise BadRequest(f"user.type must be one of {', '.join(USER_TYPES)}")
    close_url = _text(body, "close_url", limit=2048)
    if close_url and not is_web_url(close_url):
        raise BadRequest("close_url must be an http(s) URL")

    app_name = _text(body, "app", limit=64)
    user_id = _text(user, "id", required=True, limit=256)  # all checked before a file is made
    user_name = _text(user, "name", limit=256)
    lang = _text(body, "lang", limit=35)
    email = _text(user, "email", limit=256)
    extra = {"email": email} if email else {}
    new: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if mode == "new":
        storage, created, app_name = await _create(request, body, app_name)
        stat = created.stat
        extra.update(created.extra)
        mode = "editnew"
        new = removed_on_failure(storage, created)  # a refused open leaves no file behind
    else:
        storage, stat = await _existing(request, body)
    backend_id = stat.file_id

    async with new:
        result = await open_document(
            request.app,
            storage=storage,
            backend_id=backend_id,
            stat=stat,
            app_name=app_name,
            mode=mode,
            user_id=user_id,
            user_name=user_name,
            user_type=user_type,
            lang=lang,
            extra=extra or None,
        )
    request[FILE_ID] = result.file_id
    kept = _kept_notice(request, stat, user_id, result.mode)
    links = HostLinks(request.app[SECRETS].token_secret)
    link = links.mint(
        HostPage(
            app_url=result.app_url,
            access_token=result.access_token,
            access_token_ttl=result.access_token_ttl,
            title=stat.name,
            close_url=close_url,
            app=result.app.name,
            load_timeout=result.app.load_timeout,
            kept=kept,
        )
    )
    public = request.app[SETTINGS].server.public_url
    answer: dict[str, Any] = {
        "app": result.app.name,
        "app_url": result.app_url,
        "file_id": result.file_id,
        "mode": result.mode,
        "form_parameters": {
            "access_token": result.access_token,
            "access_token_ttl": result.access_token_ttl,
        },
        "host_url": f"{public}/wopi/host?link={link}",
        "name": stat.name,
    }
    if result.forced_viewmode_reason:
        answer["forced_viewmode_reason"] = result.forced_viewmode_reason
    if kept:
        answer["kept"] = list(kept)
    return json_response(answer, headers={"Cache-Control": "no-store"})


def _kept_notice(request: web.Request, stat: FileStat, user_id: str, mode: str) -> tuple[str, ...]:
    """The names of this user's saves of this file that were kept instead of landing and that
    they were not told about yet: the host page shows them (once) at this open."""
    if mode == "view":
        return ()
    return tuple(row.name for row in request.app[CONFLICTS].notices(stat.identity, user_id))


async def _existing(request: web.Request, body: dict[str, Any]) -> tuple[Storage, FileStat]:
    storages = request.app[STORAGES]
    path, file_id = _text(body, "path", limit=4096), _text(body, "file_id", limit=6100)
    if bool(path) == bool(file_id):
        raise BadRequest("Give either path or file_id")
    if file_id:
        storage, backend_id = storages.for_file(file_id)
        return storage, await storage.stat(backend_id)
    name = _text(body, "storage", limit=64)
    storage = storages.get(name) if name else storages.default
    return storage, await storage.resolve(path)


async def _create(
    request: web.Request, body: dict[str, Any], app_name: str
) -> tuple[Storage, Created, str]:
    """A new document from its template; the storage, the new file and the editor."""
    if body.get("path") or body.get("file_id"):
        raise BadRequest("A new document takes folder and name, not path or file_id")
    name = check_editor_name(_text(body, "name", required=True))
    folder = _text(body, "folder", limit=4096).strip("/")
    storages = request.app[STORAGES]
    storage_name = _text(body, "storage", limit=64)
    storage = storages.get(storage_name) if storage_name else storages.default
    extension = split_ext(name)[1]
    editors = request.app[EDITORS]
    editor = editors.get(app_name) if app_name else editors.choose(extension, edit=True)
    if not editor.can_edit(extension):  # before anything is created
        raise BadRequest(f"The {editor.name} editor cannot create {extension or 'these'} files")
    template = await resolve_template(request.app, body.get("template"), extension)
    created = await create_document(storage, folder, name, template, editor)
    return storage, created, editor.name


async def host_page(request: web.Request) -> web.Response:
    request[BROWSER_PAGE] = True  # a person reads what goes wrong here: answer with a page
    link = request.query.get("link", "")
    if not link:
        raise BadRequest("The link is incomplete")
    page = HostLinks(request.app[SECRETS].token_secret).open(link)
    return render(request, page)
