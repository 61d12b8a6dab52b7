"""The WOPI layer's key on the app: where refused saves are kept (conflict copies, recovery
folder). Its hooks' key stays beside their Protocol (``wopi.hooks.HOOKS``)."""

from __future__ import annotations

from aiohttp import web

from wopibridge.wopi.conflicts import ConflictKeeper

CONFLICTS: web.AppKey[ConflictKeeper] = web.AppKey("conflicts")
