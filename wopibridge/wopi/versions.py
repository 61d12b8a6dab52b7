"""The version history of a file, on its WOPI access token (so any instance answers):

- ``GET {WOPISrc}/versions``: ``{"versions": [{"id", "size", "last_modified", "author"}]}``,
  newest first, previous contents only;
- ``GET {WOPISrc}/versions/{id}/contents``: the bytes of one version;
- ``POST {WOPISrc}/versions/{id}/restore``: the version's content becomes current (edit token;
  ``X-WOPI-Lock`` when the file is locked, else 409); what was current is kept as the newest
  version, so a restore loses nothing.

View tokens list and download; secure-view tokens get nothing, since their bytes must not
leave the editor. A storage that keeps no versions answers 501.

One version opens read-only in an editor under its own WOPISrc, ``{WOPISrc}/versions/{id}``,
with a view token good for that version only: CheckFileInfo there describes the version
(never writable), GetFile is ``/contents`` above, and every other operation is 501.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from wopibridge.errors import LockMismatch, NotFound, NotImplementedOperation, Unauthorized
from wopibridge.jsonio import json_response
from wopibridge.storage.base import FileStat
from wopibridge.storage.versions import SaveNote, Versioned, VersionInfo, noting
from wopibridge.wopi.contents import send_content
from wopibridge.wopi.context import WopiRequest
from wopibridge.wopi.fileinfo import file_info
from wopibridge.wopi.hooks import hooks_of


def _versions(wopi: WopiRequest) -> Versioned:
    """The storage's version calls, for a token that may see them."""
    if wopi.access.secure:
        raise Unauthorized("A secure-view token gives no access to versions")
    storage = wopi.storage
    if not storage.capabilities.versions or not isinstance(storage, Versioned):
        raise NotImplementedOperation("This storage keeps no versions of its files")
    return storage


async def version_stat(wopi: WopiRequest, version_id: str) -> FileStat:
    """The file as one of its versions: that version's size and time, never writable (from
    the list, so that nothing is downloaded to describe it)."""
    listed = await _versions(wopi).list_versions(wopi.backend_id)
    version = next((v for v in listed if v.version_id == version_id), None)
    if version is None:
        raise NotFound("Version not found")
    return dataclasses.replace(
        await wopi.stat(),
        size=version.size,
        mtime_ns=version.mtime_ns,
        version=f"v{version_id}",
        read_only_reason="A previous version is read-only",
    )


async def listed(wopi: WopiRequest) -> list[VersionInfo]:
    """The file's versions, newest first, under the API's rules (the versions page lists
    them with these)."""
    return await _versions(wopi).list_versions(wopi.backend_id)


async def list_versions(wopi: WopiRequest) -> web.StreamResponse:
    versions = await listed(wopi)
    return json_response({"versions": [version.as_json() for version in versions]})


async def get_version(wopi: WopiRequest) -> web.StreamResponse:
    version_id = wopi.request.match_info["version_id"]
    content = await _versions(wopi).open_version(wopi.backend_id, version_id)
    headers = {"Content-Type": "application/octet-stream", "X-WOPI-ItemVersion": version_id}
    return await send_content(wopi.request, content, headers)


async def version_info(wopi: WopiRequest) -> web.StreamResponse:
    """CheckFileInfo of one version: the file's, read-only, with the version's size, time
    and version string."""
    stat = await version_stat(wopi, wopi.request.match_info["version_id"])
    info = file_info(wopi.access, stat, "")
    info.update(hooks_of(wopi.request.app).file_info(wopi.access, stat))
    info.update(
        {
            "ReadOnly": True,
            "UserCanWrite": False,
            "UserCanRename": False,
            "UserCanNotWriteRelative": True,
            "SupportsLocks": False,
            "SupportsUpdate": False,
            "SupportsRename": False,
            "SupportsDeleteFile": False,
        }
    )
    return json_response(info)


async def version_operation(wopi: WopiRequest) -> web.StreamResponse:
    override = wopi.header("X-WOPI-Override") or "(none)"
    raise NotImplementedOperation(f"A previous version is read-only: {override[:32]!r} refused")


async def restore_version(wopi: WopiRequest) -> web.StreamResponse:
    """Like PutFile: only the lock holder restores a locked file (409 and the current lock
    otherwise); an unlocked file may be restored by any edit token."""
    versions = _versions(wopi)
    wopi.require_edit()
    if wopi.access.purpose:
        raise Unauthorized("This token opens one version read-only")
    version_id = wopi.request.match_info["version_id"]
    stat = await wopi.stat()
    current = await wopi.locks.get(stat.identity)
    given = wopi.header("X-WOPI-Lock") or ""
    if current and given != current:
        raise LockMismatch(current, "The file is locked by another session")
    if not current and given:
        raise LockMismatch("", "The file is not locked")
    author = wopi.access.user_name or wopi.access.user_id
    with noting(SaveNote(author=author, kind="restore")):
        written = await versions.restore_version(
            wopi.backend_id, version_id, expected_version=stat.version
        )
    return json_response(
        {"LastModifiedTime": written.last_modified, "Version": written.version},
        headers={"X-WOPI-ItemVersion": written.version},
    )
