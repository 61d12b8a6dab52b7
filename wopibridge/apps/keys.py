"""The editor layer's keys on the app: the configured editors, their discovery documents and
their HTTP session holder."""

from __future__ import annotations

from aiohttp import web

from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.apps.registry import AppRegistry, SessionHolder

EDITORS: web.AppKey[AppRegistry] = web.AppKey("editors")
DISCOVERY: web.AppKey[DiscoveryCache] = web.AppKey("discovery")
EDITORS_HTTP: web.AppKey[SessionHolder] = web.AppKey("editors_http")
