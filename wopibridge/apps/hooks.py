"""The editor layer's side of :class:`wopibridge.wopi.hooks.WopiHooks`.

``FileVersionUrl`` is minted by ``version_pages`` (given by the opening layer, which owns the
versions page) for the apps that declare ``opens_version_url``, and for no other.

Built once at start from the app registry: which apps want desktop lock files is read from
their declared ``lock_files`` capability then, not looked up on every lock. Lock files are
written and removed after the answer by a :class:`~wopibridge.wopi.desktoplocks.LockFileWriter`
(see there), which :meth:`EditorHooks.close` drains at shutdown. What it does is always
:func:`~wopibridge.wopi.desktoplocks.follow_wopi_lock`, from the state of the file's WOPI lock
in the lock store (``locks_for`` gives the store of a storage's files), never from the
operation that asked: that is what keeps lock files right when a fleet's instances lock,
rename and unlock one file in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wopibridge.apps.registry import AppRegistry
from wopibridge.locks.base import LockStore
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.wopi.desktoplocks import LockFileWriter, follow_wopi_lock
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
        "FileVersionPostMessage",
        "FileVersionUrl",
        *SECURE_VIEW,
    }
)


class EditorHooks:
    """CheckFileInfo extras per app, and desktop lock files for the apps that keep them."""

    def __init__(
        self,
        registry: AppRegistry,
        locks_for: Callable[[Storage], LockStore] | None = None,
        version_pages: Callable[[AccessToken, str], str] | None = None,
    ) -> None:
        self._apps = {name: registry.get(name) for name in registry.names()}
        self._lock_file_apps = frozenset(name for name, app in self._apps.items() if app.lock_files)
        # read once at start, like lock files: the other apps' CheckFileInfo tests one name
        self._version_url_apps = frozenset(
            name for name, app in self._apps.items() if app.opens_version_url
        )
        self._version_pages = version_pages
        self.writer = LockFileWriter()
        self._locks_for = locks_for
        # names a document had, whose lock files the next run removes (a rename's wish must
        # not be lost when an Unlock's replaces it before it ran)
        self._old_names: dict[str, set[str]] = {}

    def _follow(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        """Have the lock files of ``stat``'s document follow its WOPI lock, after the answer."""
        if self._locks_for is None or not storage.capabilities.desktop_lock_files:
            return
        locks = self._locks_for(storage)
        user = access.user_name or access.user_id
        writes = access.app.lower() in self._lock_file_apps
        key = stat.identity

        async def job() -> None:
            old = frozenset(self._old_names.pop(key, ()))
            left = await follow_wopi_lock(
                storage, locks, backend_id, user, writes=writes, old_names=old, last_seen=stat
            )
            if left:  # the file kept changing meanwhile: once more, after the next pause
                self._old_names.setdefault(key, set()).update(left)
                self.writer.submit(key, job)

        self.writer.submit(key, job)

    def file_info(self, access: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        app = self._apps.get(access.app.lower()) if access.app else None
        if app is None:
            return {}
        return {
            key: value
            for key, value in app.file_info(access, stat).items()
            if key not in HOST_PROPERTIES
        }

    def version_url(self, access: AccessToken, token: str) -> str:
        """The versions page's link, minted only for an app that opens ``FileVersionUrl``."""
        if self._version_pages is None or access.app.lower() not in self._version_url_apps:
            return ""
        return self._version_pages(access, token)

    async def locked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        """Announce the web editor's lock to desktop users with a lock file (after the answer)."""
        if access.app.lower() in self._lock_file_apps:
            self._follow(access, storage, backend_id, stat)

    async def unlocked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        if access.app.lower() in self._lock_file_apps:
            self._follow(access, storage, backend_id, stat)

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
        if before.name != after.name:
            self._old_names.setdefault(after.identity, set()).add(before.name)
        self._follow(access, storage, backend_id, after)

    async def close(self) -> None:
        await self.writer.drain()
