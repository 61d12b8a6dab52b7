"""The editor layer's side of :class:`wopibridge.wopi.hooks.WopiHooks`.

Built once at start from the app registry: which apps want desktop lock files is read from
their declared ``lock_files`` capability then, not looked up on every lock. Lock files are
written and removed after the answer by a :class:`~wopibridge.wopi.desktoplocks.LockFileWriter`
(see there), which :meth:`EditorHooks.close` drains at shutdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wopibridge.apps.registry import AppRegistry
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.wopi.desktoplocks import (
    LockFileWriter,
    move_lock_file,
    remove_lock_file,
    write_lock_file,
)
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
        self._apps = {name: registry.get(name) for name in registry.names()}
        self._lock_file_apps = frozenset(name for name, app in self._apps.items() if app.lock_files)
        self.writer = LockFileWriter()

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
        """Announce the web editor's lock to desktop users with a lock file (after the answer)."""
        if access.app.lower() in self._lock_file_apps and storage.capabilities.desktop_lock_files:
            user = access.user_name or access.user_id
            self.writer.submit(
                stat.identity, lambda: write_lock_file(storage, backend_id, stat, user)
            )

    async def unlocked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        if access.app.lower() in self._lock_file_apps and storage.capabilities.desktop_lock_files:
            self.writer.submit(stat.identity, lambda: remove_lock_file(storage, backend_id, stat))

    async def renamed(
        self,
        access: AccessToken,
        storage: Storage,
        backend_id: str,
        before: FileStat,
        after: FileStat,
        *,
        locked: bool,
    ) -> None:
        """Move our lock file along (whichever app renames: a stale one must not stay)."""
        if not storage.capabilities.desktop_lock_files:
            return
        keeps = locked and access.app.lower() in self._lock_file_apps
        user = (access.user_name or access.user_id) if keeps else None
        self.writer.submit(
            after.identity, lambda: move_lock_file(storage, backend_id, before, after, user)
        )

    async def close(self) -> None:
        await self.writer.drain()
