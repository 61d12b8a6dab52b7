"""The configured editors by name, built from ``[apps.<name>]`` tables.

``type`` picks a factory from :data:`FACTORIES`, an explicit dict (never an import string):
adding an app type is one entry there. ``name`` is the table name; ``type`` defaults to it, so
``[apps.collabora]`` needs no ``type`` line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from wopibridge.apps.base import EditorApp
from wopibridge.apps.collabora import CollaboraApp
from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.apps.msoffice import MsOfficeApp
from wopibridge.apps.office import OfficeApp, OfficeConfig
from wopibridge.apps.onlyoffice import OnlyOfficeApp
from wopibridge.config import ConfigError, Settings
from wopibridge.errors import BadRequest, NotFound, Unavailable


class SessionHolder:
    """The application's shared ``ClientSession``, which exists only once the application
    started: apps are built (and their configuration checked) before that."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def attach(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise Unavailable("The application has not started")
        return self._session


@dataclass
class AppContext:
    """What a factory may use to build its app."""

    settings: Settings
    http: SessionHolder
    discovery: DiscoveryCache


Factory = Callable[[str, Mapping[str, Any], AppContext], EditorApp]


def _office(cls: type[OfficeApp]) -> Factory:
    def build(name: str, raw: Mapping[str, Any], ctx: AppContext) -> EditorApp:
        config = OfficeConfig.parse(
            name,
            raw,
            public_url=ctx.settings.server.public_url,
            default_proof=cls.default_proof,
        )
        ctx.discovery.add(name, config.discovery_url, config.refresh_interval)
        return cls(config, ctx.discovery)

    return build


FACTORIES: dict[str, Factory] = {
    "collabora": _office(CollaboraApp),
    "onlyoffice": _office(OnlyOfficeApp),
    "msoffice": _office(MsOfficeApp),
    "wopi": _office(OfficeApp),  # any other WOPI client that publishes a discovery document
}


class AppRegistry:
    """Looks up an app by name (case-insensitive) or chooses one for a file extension."""

    def __init__(self, apps: Mapping[str, EditorApp]) -> None:
        self._apps = {name.lower(): app for name, app in apps.items()}

    def __iter__(self) -> Iterator[EditorApp]:
        return iter(self._apps.values())

    def __len__(self) -> int:
        return len(self._apps)

    def names(self) -> list[str]:
        return list(self._apps)

    def get(self, name: str) -> EditorApp:
        app = self._apps.get(name.lower())
        if app is None:
            raise NotFound(f"No editor called {name!r} is configured")
        return app

    def choose(self, extension: str, *, edit: bool = False) -> EditorApp:
        """The first configured app (in configuration order) that opens this extension,
        preferring one that can edit it when ``edit``. ``Unavailable`` when only apps that
        cannot be reached might have handled it."""
        unreachable: Unavailable | None = None
        viewer: EditorApp | None = None
        for app in self._apps.values():
            try:
                if not app.handles(extension):
                    continue
                if not edit or app.can_edit(extension):
                    return app
            except Unavailable as exc:
                unreachable = unreachable or exc
                continue
            viewer = viewer or app
        if viewer is not None and unreachable is None:
            return viewer
        if unreachable is not None:
            raise unreachable
        raise BadRequest(f"No configured editor opens {extension or 'files without extension'}")


def build_registry(
    settings: Settings,
    ctx: AppContext,
    factories: Mapping[str, Factory] = FACTORIES,
    prebuilt: Mapping[str, EditorApp] | None = None,
) -> AppRegistry:
    """Every configured app. ``prebuilt`` holds apps another part built from their own
    tables (the bridge's Etherpad and CodiMD): they are registered as they are."""
    apps: dict[str, EditorApp] = {}
    for name, raw in settings.apps.items():
        if prebuilt and name in prebuilt:
            apps[name] = prebuilt[name]
            continue
        kind = str(raw.get("type", name)).lower()
        factory = factories.get(kind)
        if factory is None:
            raise ConfigError(
                f"apps.{name}.type", f"unknown app type {kind!r} (known: {', '.join(factories)})"
            )
        apps[name] = factory(name, raw, ctx)
    return AppRegistry(apps)
