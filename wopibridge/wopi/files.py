"""CheckFileInfo, PutRelativeFile, RenameFile, DeleteFile and PutUserInfo."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from wopibridge.config import SETTINGS
from wopibridge.errors import (
    BadRequest,
    Conflict,
    FileExists,
    InvalidFileName,
    LockMismatch,
    PayloadTooLarge,
)
from wopibridge.jsonio import json_response
from wopibridge.security.keys import TOKENS
from wopibridge.storage.base import FileStat
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.context import WopiRequest, token_from
from wopibridge.wopi.fileinfo import USER_INFO_KEY, file_info
from wopibridge.wopi.hooks import hooks_of
from wopibridge.wopi.links import is_web_url, with_wopisrc
from wopibridge.wopi.names import (
    check_editor_name,
    decode_utf7,
    encode_utf7,
    sanitize_name,
    split_ext,
    variants,
)
from wopibridge.wopi.saves.entry import body_chunks, upload_limit
from wopibridge.wopi.templates import TEMPLATE_CLAIM, template_source

MAX_USER_INFO = 1024


async def check_file_info(wopi: WopiRequest) -> web.Response:
    stat = await wopi.stat()
    user_info = await wopi.storage.get_meta(wopi.backend_id, USER_INFO_KEY + wopi.access.user_id)
    info = file_info(wopi.access, stat, user_info or "")
    hooks = hooks_of(wopi.request.app)
    info.update(hooks.file_info(wopi.access, stat))
    if wopi.storage.capabilities.versions and not wopi.access.secure:
        info["FileVersionPostMessage"] = True  # the host page answers UI_FileVersions
        version_url = hooks.version_url(wopi.access, token_from(wopi.request))
        if version_url:  # only the apps that open it (Microsoft) pay for the link
            info["FileVersionUrl"] = version_url
    if stat.size == 0 and wopi.access.can_write and TEMPLATE_CLAIM in wopi.access.extra:
        info["TemplateSource"] = await template_source(wopi.request, wopi.access)
    return json_response(info)


async def _free_name(wopi: WopiRequest, wanted: str) -> str:
    for candidate in variants(wanted):
        if await wopi.storage.find_sibling(wopi.backend_id, candidate) is None:
            return candidate
    raise Conflict("No free file name could be found")


async def _new_file_url(wopi: WopiRequest, created: FileStat) -> tuple[str, str]:
    """The WOPISrc of a new file with a fresh edit token for the same user and app."""
    app = wopi.request.app
    new_id = app[STORAGES].wopi_id(wopi.storage, created.file_id)
    token, _ = await app[TOKENS].issue(
        file_id=new_id,
        user_id=wopi.access.user_id,
        user_name=wopi.access.user_name,
        user_type=wopi.access.user_type,
        app=wopi.access.app,
        mode="edit",
        extra={k: v for k, v in wopi.access.extra.items() if k != TEMPLATE_CLAIM},
    )
    wopi_src = f"{app[SETTINGS].server.public_url}/wopi/files/{new_id}"
    return wopi_src, f"{wopi_src}?access_token={quote(token, safe='')}"


async def put_relative_file(wopi: WopiRequest) -> web.Response:
    wopi.require_edit()
    limit = upload_limit(wopi.request)
    suggested = wopi.header("X-WOPI-SuggestedTarget")
    relative = wopi.header("X-WOPI-RelativeTarget")
    if suggested is not None and relative is not None:
        raise BadRequest("X-WOPI-SuggestedTarget and X-WOPI-RelativeTarget are exclusive")
    if suggested is None and relative is None:
        raise BadRequest("Missing X-WOPI-SuggestedTarget or X-WOPI-RelativeTarget")
    declared = wopi.header("X-WOPI-Size")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes")
    stat = await wopi.stat()
    overwrite = False
    if suggested is not None:
        wanted = decode_utf7(suggested, "X-WOPI-SuggestedTarget").strip()
        if not wanted or not wanted.strip("."):
            raise InvalidFileName("The suggested name is empty")
        if wanted.startswith("."):
            wanted = split_ext(stat.name)[0] + wanted
        elif not split_ext(wanted)[1]:  # a bare name keeps the document's type
            wanted += stat.extension
        name = await _free_name(wopi, sanitize_name(wanted))
    else:
        assert relative is not None
        name = check_editor_name(decode_utf7(relative, "X-WOPI-RelativeTarget"))
        if not split_ext(name)[1]:
            raise InvalidFileName("The new name has no extension")
        overwrite = (wopi.header("X-WOPI-OverwriteRelativeTarget") or "").lower() == "true"
        existing = await wopi.storage.find_sibling(wopi.backend_id, name)
        if existing is not None:
            headers = {"X-WOPI-ValidRelativeTarget": encode_utf7(await _free_name(wopi, name))}
            current = await wopi.locks.get(existing.identity)
            if current:
                headers["X-WOPI-Lock"] = current
                raise Conflict("The target file is locked", headers=headers)
            if not overwrite:
                raise Conflict("A file with this name already exists", headers=headers)
    try:
        created = await wopi.storage.create(
            wopi.backend_id, name, body_chunks(wopi.request, limit), overwrite=overwrite
        )
    except FileExists:
        free = encode_utf7(await _free_name(wopi, name))
        raise Conflict(
            "A file with this name already exists", headers={"X-WOPI-ValidRelativeTarget": free}
        ) from None
    wopi_src, url = await _new_file_url(wopi, created)
    # Collabora takes LastModifiedTime from this answer as the timestamp of the *original*
    # document's next PutFile (WopiStorage::handleUploadToStorageResponse): the original's,
    # so that save lands (the new file's would be a false 1010, none would drop the check).
    answer = {"Name": created.name, "Url": url, "LastModifiedTime": stat.last_modified}
    edit_url = wopi.access.extra.get("appurl")
    view_url = wopi.access.extra.get("appviewurl") or edit_url
    if edit_url and is_web_url(edit_url):
        answer["HostEditUrl"] = with_wopisrc(edit_url, wopi_src)
    if view_url and is_web_url(view_url):
        answer["HostViewUrl"] = with_wopisrc(view_url, wopi_src)
    return json_response(answer)


async def rename_file(wopi: WopiRequest) -> web.Response:
    """RenameFile. Collabora sends the document as the body (it renames through its upload
    path, ``WopiStorage::uploadLocalFileToStorageAsync``); the body is read and dropped (the
    content was saved by the PutFile before). The answer carries ``Name`` (WOPI, OnlyOffice),
    and ``Url`` and ``LastModifiedTime``, which Collabora reads before every view reloads."""
    wopi.require_edit()
    limit = upload_limit(wopi.request)
    async for _ in body_chunks(wopi.request, limit):
        pass
    requested = wopi.header("X-WOPI-RequestedName")
    if requested is None:
        raise BadRequest("Missing X-WOPI-RequestedName header")
    stem = decode_utf7(requested, "X-WOPI-RequestedName")
    if not stem.strip(" ."):  # "" would turn keep.txt into the hidden file .txt
        raise InvalidFileName("The new name is empty")
    stat = await wopi.stat()
    extension = stat.extension
    check_editor_name(stem + extension)
    current = await wopi.locks.get(stat.identity)
    if current and wopi.header("X-WOPI-Lock") != current:
        raise LockMismatch(current, "The file is locked by another session")
    for candidate in variants(stem + extension):
        try:
            renamed = await wopi.storage.rename(wopi.backend_id, candidate)
        except FileExists:
            continue
        await hooks_of(wopi.request.app).renamed(
            wopi.access, wopi.storage, wopi.backend_id, stat, renamed, locked=bool(current)
        )
        public = wopi.request.app[SETTINGS].server.public_url
        token = quote(token_from(wopi.request), safe="")
        return json_response(
            {
                "Name": split_ext(renamed.name)[0],
                "Url": f"{public}/wopi/files/{wopi.file_id}?access_token={token}",
                "LastModifiedTime": renamed.last_modified,
            }
        )
    raise BadRequest("No free file name could be found")


async def delete_file(wopi: WopiRequest) -> web.Response:
    wopi.require_edit()
    stat = await wopi.stat()
    current = await wopi.locks.get(stat.identity)
    if current:
        raise LockMismatch(current, "The file is locked")
    await wopi.storage.delete(wopi.backend_id)
    await wopi.request.app[TOKENS].revoke_file(wopi.file_id)
    return web.Response()


async def _read_small_body(wopi: WopiRequest, limit: int) -> bytes | None:
    """The whole body up to ``limit`` bytes, however many TCP segments it arrives in;
    ``None`` when it is longer. (One ``read(n)`` returns what has arrived so far.)"""
    raw = bytearray()
    async for chunk in wopi.request.content.iter_any():
        raw += chunk
        if len(raw) > limit:
            return None
    return bytes(raw)


async def put_user_info(wopi: WopiRequest) -> web.Response:
    raw = await _read_small_body(wopi, MAX_USER_INFO * 4)
    too_long = BadRequest(f"The user info is longer than {MAX_USER_INFO} characters")
    if raw is None:
        raise too_long
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The user info must be UTF-8 text") from None
    if len(text) > MAX_USER_INFO:
        raise too_long
    await wopi.storage.set_meta(wopi.backend_id, USER_INFO_KEY + wopi.access.user_id, text)
    return web.Response()
