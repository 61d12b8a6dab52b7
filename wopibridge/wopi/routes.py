"""The ``/wopi/files`` sub-application: routes, the override table and its middlewares.

Every request under this prefix passes the token middleware first; the operation is then
picked from one explicit table keyed by ``X-WOPI-Override``. Anything not in the table is 501.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import NotImplementedOperation
from . import contents, files, locking
from .context import WopiRequest, wopi_context

Operation = Callable[[WopiRequest], Awaitable[web.StreamResponse]]

OVERRIDES: dict[str, tuple[str, Operation]] = {
    "LOCK": ("Lock", locking.lock),
    "UNLOCK": ("Unlock", locking.unlock),
    "REFRESH_LOCK": ("RefreshLock", locking.refresh_lock),
    "GET_LOCK": ("GetLock", locking.get_lock),
    "PUT_RELATIVE": ("PutRelativeFile", files.put_relative_file),
    "RENAME_FILE": ("RenameFile", files.rename_file),
    "DELETE": ("DeleteFile", files.delete_file),
    "PUT_USER_INFO": ("PutUserInfo", files.put_user_info),
}


def operation_name(method: str, path_tail: str, override: str | None) -> str:
    """A stable operation name for logs and metrics."""
    if path_tail == "contents":
        return "GetFile" if method == "GET" else "PutFile"
    if method == "GET":
        return "CheckFileInfo"
    if override is None:
        return "Unknown"
    if override == "LOCK":
        return "Lock"  # UnlockAndRelock is logged as Lock
    entry = OVERRIDES.get(override.upper())
    return entry[0] if entry else "Unknown"


async def _check_file_info(request: web.Request) -> web.StreamResponse:
    return await files.check_file_info(WopiRequest.of(request))


async def _get_file(request: web.Request) -> web.StreamResponse:
    return await contents.get_file(WopiRequest.of(request))


async def _post_contents(request: web.Request) -> web.StreamResponse:
    override = request.headers.get("X-WOPI-Override", "PUT").upper()
    if override != "PUT":
        raise NotImplementedOperation(f"Unsupported operation {override!r} on contents")
    return await contents.put_file(WopiRequest.of(request))


async def _post_file(request: web.Request) -> web.StreamResponse:
    override = request.headers.get("X-WOPI-Override", "").upper()
    entry = OVERRIDES.get(override)
    if entry is None:
        raise NotImplementedOperation(f"Unsupported operation {override or '(none)'!r}")
    return await entry[1](WopiRequest.of(request))


def files_app(*middlewares: Callable[..., Awaitable[web.StreamResponse]]) -> web.Application:
    """The sub-app mounted at ``/wopi/files``; extra middlewares run after the token check."""
    app = web.Application(middlewares=[wopi_context, *middlewares])
    app.router.add_get("/{file_id}", _check_file_info, allow_head=False)
    app.router.add_post("/{file_id}", _post_file)
    app.router.add_get("/{file_id}/contents", _get_file, allow_head=False)
    app.router.add_post("/{file_id}/contents", _post_contents)
    return app
