"""CheckFileInfo: what the editor may do with the file, and only what really works."""

from __future__ import annotations

from typing import Any

from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat
from wopibridge.wopi.links import is_web_url

USER_INFO_KEY = "userinfo:"

#: What secure view sets, in WOPI's own names (Microsoft's, and Collabora's ``Disable*``
#: extensions); each editor reads its part (README, "Secure view"). Editors' extras never
#: replace these.
SECURE_VIEW: dict[str, Any] = {
    "DisablePrint": True,
    "DisableExport": True,
    "DisableCopy": True,
    "HidePrintOption": True,
    "HideSaveOption": True,
    "HideExportOption": True,
    "CopyPasteRestrictions": "BlockAll",
}


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
    if access.secure:
        info.update(SECURE_VIEW)
    folder_url = access.extra.get("folderurl", "")
    if is_web_url(folder_url):  # tokens minted before URLs were checked may carry others
        info["BreadcrumbFolderUrl"] = folder_url
        info["CloseUrl"] = folder_url
    return info
