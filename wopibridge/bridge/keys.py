"""The bridge's application keys (kept here so the foundation's keys module stays untouched)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from wopibridge.apps.bridged import BridgedEditor
    from wopibridge.bridge.engine import Bridge

BRIDGE: web.AppKey[Bridge] = web.AppKey("bridge")
BRIDGE_EDITORS: web.AppKey[Mapping[str, BridgedEditor]] = web.AppKey("bridge_editors")
