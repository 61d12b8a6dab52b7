"""The hooks the WOPI layer calls around locks, renames and CheckFileInfo, implemented by the
editor layer.

The WOPI handlers know nothing of editors: they call these hooks, and the editor layer
(:class:`wopibridge.apps.hooks.EditorHooks`) implements them. An application assembled without
editors runs with :data:`NO_HOOKS`, which adds nothing, so the WOPI layer never imports
``apps/`` or ``opening/``.

Save-time editor protocols (Collabora's ``X-COOL-WOPI-Timestamp`` 1010 check, exit saves) are
WOPI header semantics shared by several editors and live in :mod:`wopibridge.wopi.saves.hints`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web

from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage


class WopiHooks(Protocol):
    """What the editor layer adds to WOPI operations; every method is cheap when it adds nothing."""

    def file_info(self, access: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        """Extra CheckFileInfo properties of the token's app (never the host's own)."""

    def version_url(self, access: AccessToken, token: str) -> str:
        """CheckFileInfo's ``FileVersionUrl`` for the token's app: a page of the file's
        versions that works as long as ``token`` (the request's access token) does; ``""``
        for an app that does not open one. Called only where versions may be shown (a
        storage that keeps them, not a secure-view token)."""

    async def locked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        """After a WOPI lock was granted (not after UnlockAndRelock or RefreshLock)."""

    async def unlocked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        """After a WOPI lock was released by Unlock."""

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
        """After RenameFile; ``locked`` says whether the caller holds the file's WOPI lock."""


class _NoHooks:
    def file_info(self, access: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {}

    def version_url(self, access: AccessToken, token: str) -> str:
        return ""

    async def locked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        return None

    async def unlocked(
        self, access: AccessToken, storage: Storage, backend_id: str, stat: FileStat
    ) -> None:
        return None

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
        return None


#: The hooks of an application without editors.
NO_HOOKS: WopiHooks = _NoHooks()

HOOKS: web.AppKey[WopiHooks] = web.AppKey("wopi_hooks")


def hooks_of(app: web.Application) -> WopiHooks:
    return app.get(HOOKS, NO_HOOKS)
