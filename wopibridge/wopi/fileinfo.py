"""CheckFileInfo: what the editor may do with the file, and only what really works."""

from __future__ import annotations

from typing import Any

from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat

USER_INFO_KEY = "userinfo:"


def file_info(access: AccessToken, stat: FileStat, user_info: str) -> dict[str, Any]:
    can_write = access.can_write and not stat.read_only_reason
    info: dict[str, Any] = {
        "BaseFileName": stat.name,
        "OwnerId": stat.owner_id or "unknown",
        "Size": stat.size,
        "UserId": access.user_id,
        "UserFriendlyName": access.user_name,
        "Version": stat.version,
        "LastModifiedTime": stat.last_modified,
        "FileExtension": stat.extension,
        "FileNameMaxLength": 255,
        "ReadOnly": not can_write,
        "UserCanWrite": can_write,
        "UserCanRename": can_write,
        "UserCanNotWriteRelative": not can_write,
        "SupportsLocks": True,
        "SupportsGetLock": True,
        "SupportsExtendedLockLength": True,
        "SupportsUpdate": True,
        "SupportsRename": True,
        "SupportsDeleteFile": True,
        "SupportsUserInfo": True,
        "UserInfo": user_info,
        "IsAnonymousUser": access.user_type == "anonymous",
        "LicenseCheckForEditIsEnabled": False,
    }
    folder_url = access.extra.get("folderurl")
    if folder_url:
        info["BreadcrumbFolderUrl"] = folder_url
        info["CloseUrl"] = folder_url
    return info
