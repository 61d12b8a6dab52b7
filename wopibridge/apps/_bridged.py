"""Shared plumbing of the bridged editor clients: configuration, the open URL and HTTP error
mapping. A client names its kind, default extensions and whether it needs an API key; the
rest is the same for every bridged editor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import urlencode

import aiohttp

from wopibridge.apps.base import OpenRequest
from wopibridge.apps.bridgedconfig import BridgeAppConfig, parse_app_config
from wopibridge.errors import PayloadTooLarge, Unavailable, WopiError
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat

BRIDGE_OPEN_PATH = "/wopi/bridge/open"


class BridgedAppBase:
    """The :class:`~wopibridge.apps.base.EditorApp` side of a bridged editor."""

    bridged = True
    reads_template_source = False
    opens_version_url = False
    load_timeout = 0  # Etherpad and CodiMD speak no WOPI PostMessage
    #: The bridge holds the file while a pad is open; desktop users are not told through a
    #: lock file (the bridge's lock is a WOPI lock like any other).
    lock_files = False
    label = "editor"
    #: The ``type`` of its ``[apps.<name>]`` table.
    kind: ClassVar[str]
    default_extensions: ClassVar[tuple[str, ...]]
    apikey_required: ClassVar[bool] = False

    def __init__(self, config: BridgeAppConfig, public_url: str) -> None:
        self.name = config.name
        self.config = config
        self._wopibridge_url = public_url.rstrip("/")

    @classmethod
    def from_config(cls, name: str, table: Mapping[str, Any], public_url: str) -> Self:
        config = parse_app_config(
            name,
            table,
            kind=cls.kind,
            default_extensions=cls.default_extensions,
            apikey_required=cls.apikey_required,
        )
        return cls(config, public_url)

    def info(self) -> Mapping[str, str]:
        return {"app": self.name, "kind": self.kind, "url": self.config.url}

    def handles(self, extension: str) -> bool:
        return extension.lower() in self.config.extensions

    def can_edit(self, extension: str) -> bool:
        """A bridged editor edits everything it opens."""
        return self.handles(extension)

    def lists_action(self, extension: str, action: str) -> bool:
        """A bridged editor has one URL for everything; no discovery actions."""
        return False

    async def editor_url(self, request: OpenRequest) -> str:
        """wopibridge's own bridge: the token is form-POSTed there, never put in the URL."""
        query = urlencode({"app": self.name, "WOPISrc": request.wopi_src})
        return f"{self._wopibridge_url}{BRIDGE_OPEN_PATH}?{query}"

    def file_info(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {}

    def unreachable(self, exc: BaseException) -> WopiError:
        return Unavailable(f"{self.label} cannot be reached right now; please try again later")

    def check_status(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status == 413:
            raise PayloadTooLarge(f"The file is too large for {self.label}")
        if response.status >= 400:
            raise Unavailable(f"{self.label} failed to {what} (HTTP {response.status})")
