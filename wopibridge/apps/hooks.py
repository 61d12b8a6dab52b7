"""The editor layer's side of :class:`wopibridge.wopi.hooks.WopiHooks`.

Built once at start from the app registry: which apps want desktop lock files is read from
their declared ``lock_files`` capability then, not looked up on every lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wopibridge.apps.registry import AppRegistry
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.wopi.desktoplocks import remove_lock_file, write_lock_file
from wopibridge.wopi.fileinfo import SECURE_VIEW

#: CheckFileInfo properties the WOPI layer owns; an app's extras never replace them.
HOST_PROPERTIES = frozenset(
    {
        "BaseFileName",
        "OwnerId",
        "Size",
        "UserId",
        "Version",
        "LastModifiedTime",
        "UserCanWrite",
        "ReadOnly",
        "SupportsLocks",
        "SupportsUpdate",
        "UserCanNotWriteRelative",
        "TemplateSource",
        *SECURE_VIEW,
    }
)


class EditorHooks:
    """CheckFileInfo extras per app, and desktop lock files for the apps that keep them."""

    def __init__(self, registry: AppRegistry) -> None:
        self._registry = registry
        self._apps = {name: registry.get(name) for name in registry.names()}
        self._lock_file_apps = frozenset(name for name, app in self._apps.items() if app.lock_files)

    def file_info(self, access: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        app = self._apps.get(access.app.lower()) if access.app else None
        if app is None:
            return {}
        return {
            key: value
            for key, value in app.file_info(access, stat).items()
            if key not in HOST_PROPERTIES
        }

    async def locked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        """Announce the web editor's lock to desktop users with a lock file."""
        if access.app.lower() in self._lock_file_apps:
            await write_lock_file(storage, backend_id, stat, access.user_name or access.user_id)

    async def unlocked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        if access.app.lower() in self._lock_file_apps:
            await remove_lock_file(storage, backend_id, stat)
