"""The ``/wopi/files`` routes and the override table.

Every request under this prefix has its token checked first (and the proof-key check after
it); the operation is then picked from one explicit table keyed by ``X-WOPI-Override``.
Anything not in the table is 501.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from wopibridge.errors import NotImplementedOperation
from wopibridge.security.keys import ACCESS
from wopibridge.wopi import contents, files, locking, templates, versions
from wopibridge.wopi.context import WopiRequest, bind_access, version_purpose
from wopibridge.wopi.saves import entry as saves

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
    if path_tail.startswith("versions"):  # versions, versions/{version_id}/contents|restore
        if path_tail == "versions":
            return "ListVersions"
        if path_tail.endswith("/restore"):
            return "RestoreVersion"
        if path_tail.endswith("/contents"):
            return "GetVersion"
        return "VersionFileInfo" if method == "GET" else "Unknown"
    if method == "GET":
        return "CheckFileInfo"
    if override is None:
        return "Unknown"
    if override == "LOCK":
        return "Lock"  # UnlockAndRelock is logged as Lock
    entry = OVERRIDES.get(override.upper())
    return entry[0] if entry else "Unknown"


Check = Callable[[web.Request], Awaitable[None]]
#: Checks every WOPI request passes after its token is bound (the proof-key check).
WOPI_CHECKS: web.AppKey[tuple[Check, ...]] = web.AppKey("wopi_checks")


def wopi_route(
    operation: Operation,
    *,
    checked: bool = True,
    version_token: bool = False,
    file_token_unchecked: bool = False,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route handler: token bound to the file, the configured checks, then ``operation``.

    The checks run per route rather than as app middlewares so that only ``/wopi/files``
    requests pay for them, without a sub-application's second routing step. ``checked=False``
    is for routes a browser or a web UI calls with the access token, never an editor (the
    versions list, a restore): no editor proof would come there, even where an app's
    ``proof_keys`` is ``require``. ``version_token`` routes (under
    ``/versions/{version_id}``) also take the token of that one version, whose own WOPISrc an
    editor opened read-only. ``file_token_unchecked`` (a version's download) checks the
    version's token, an editor's GetFile, but not the file's own token, which a browser
    brings to download the version from a versions panel or page.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        purpose = version_purpose(request.match_info["version_id"]) if version_token else ""
        await bind_access(request, purpose)
        if checked and not (file_token_unchecked and not request[ACCESS].purpose):
            for check in request.app[WOPI_CHECKS]:
                await check(request)
        return await operation(WopiRequest.of(request))

    return handler


async def _post_contents(wopi: WopiRequest) -> web.StreamResponse:
    override = (wopi.header("X-WOPI-Override") or "PUT").upper()
    if override != "PUT":
        raise NotImplementedOperation(f"Unsupported operation {override!r} on contents")
    return await saves.put_file(wopi)


async def _post_file(wopi: WopiRequest) -> web.StreamResponse:
    override = (wopi.header("X-WOPI-Override") or "").upper()
    entry = OVERRIDES.get(override)
    if entry is None:
        raise NotImplementedOperation(f"Unsupported operation {override or '(none)'!r}")
    return await entry[1](wopi)


def add_routes(app: web.Application, *checks: Check) -> None:
    """The WOPI file routes under ``/wopi/files``; ``checks`` run after the token check."""
    app[WOPI_CHECKS] = checks
    app.router.add_get("/wopi/files/{file_id}", wopi_route(files.check_file_info), allow_head=False)
    app.router.add_post("/wopi/files/{file_id}", wopi_route(_post_file))
    app.router.add_get(
        "/wopi/files/{file_id}/contents", wopi_route(contents.get_file), allow_head=False
    )
    app.router.add_post("/wopi/files/{file_id}/contents", wopi_route(_post_contents))
    app.router.add_get(
        "/wopi/files/{file_id}/versions",
        wopi_route(versions.list_versions, checked=False),
        allow_head=False,
    )
    app.router.add_get(
        "/wopi/files/{file_id}/versions/{version_id}",
        wopi_route(versions.version_info, version_token=True),
        allow_head=False,
    )
    app.router.add_post(
        "/wopi/files/{file_id}/versions/{version_id}",
        wopi_route(versions.version_operation, version_token=True),
    )
    app.router.add_get(
        "/wopi/files/{file_id}/versions/{version_id}/contents",
        wopi_route(versions.get_version, version_token=True, file_token_unchecked=True),
        allow_head=False,
    )
    app.router.add_post(
        "/wopi/files/{file_id}/versions/{version_id}/restore",
        wopi_route(versions.restore_version, checked=False),
    )
    templates.add_routes(app)
