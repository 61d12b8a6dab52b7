"""Settings of one bridged app, read from its ``[apps.<name>]`` table.

The foundation hands named app tables over as plain mappings; bridged apps validate their own
keys here so that a typo stops the server at start with one line naming the key, like every
other setting. Keys every bridged app understands:

``kind``            ``etherpad`` or ``codimd`` (default: the table's name)
``url``             the editor's base URL as wopibridge reaches it
``public_url``      the editor's base URL as browsers reach it (default: ``url``)
``apikey`` / ``apikey_file``  the editor's API key (Etherpad: required; CodiMD: optional, CERN's
                    ``PUT /api/notes`` API is used when set)
``extensions``      the file extensions the app opens, as a list or a comma-separated string
``save_interval``   seconds between two saves of a document being edited (default 60)
``unlock_delay``    seconds the WOPI lock is kept after the last user left (default 90)
``poll_interval``   seconds between two looks at the editor for changes (default 5)
``idle_timeout``    seconds without any sign of life after which a document counts as closed
                    (default 3600)
``max_size``        largest file in bytes the bridge loads into the editor (default 10 MiB)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wopibridge.config import ConfigError

_KNOWN = {
    "type",
    "url",
    "public_url",
    "apikey",
    "apikey_file",
    "extensions",
    "save_interval",
    "unlock_delay",
    "poll_interval",
    "idle_timeout",
    "max_size",
}


@dataclass(frozen=True, slots=True)
class BridgeAppConfig:
    name: str
    kind: str
    url: str
    public_url: str
    apikey: str
    extensions: frozenset[str]
    save_interval: float
    unlock_delay: float
    poll_interval: float
    idle_timeout: float
    max_size: int


def _url(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"apps.{name}.{key}", "must be a string")
    url = value.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"apps.{name}.{key}", "must be an http:// or https:// URL")
    return url


def _seconds(name: str, key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"apps.{name}.{key}", "must be a number of seconds") from None
    if number <= 0:
        raise ConfigError(f"apps.{name}.{key}", "must be more than 0 seconds")
    return number


def _extensions(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"apps.{name}.extensions", "must be a list of extensions")
    exts = {("." + v.strip().lstrip(".")).lower() for v in value if v.strip()}
    if not exts:
        raise ConfigError(f"apps.{name}.extensions", "must name at least one extension")
    return frozenset(exts)


def parse_app_config(
    name: str,
    table: Mapping[str, Any],
    *,
    kind: str,
    default_extensions: tuple[str, ...],
    apikey_required: bool,
) -> BridgeAppConfig:
    unknown = set(table) - _KNOWN
    if unknown:
        raise ConfigError(f"apps.{name}.{sorted(unknown)[0]}", "unknown key")
    if "url" not in table:
        raise ConfigError(f"apps.{name}.url", "is required")
    url = _url(name, "url", table["url"])
    public_url = _url(name, "public_url", table["public_url"]) if table.get("public_url") else url
    apikey = table.get("apikey", "")
    if not isinstance(apikey, str):
        raise ConfigError(f"apps.{name}.apikey", "must be a string")
    if table.get("apikey_file"):
        if apikey:
            raise ConfigError(f"apps.{name}.apikey", "set either apikey or apikey_file, not both")
        try:
            apikey = Path(str(table["apikey_file"])).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"apps.{name}.apikey_file", f"cannot read {table['apikey_file']} ({exc.strerror})"
            ) from None
    if apikey_required and not apikey:
        raise ConfigError(f"apps.{name}.apikey", "is required")
    try:
        max_size = int(table.get("max_size", 10 * 1024 * 1024))
        if max_size <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"apps.{name}.max_size", "must be a positive integer") from None
    return BridgeAppConfig(
        name=name,
        kind=kind,
        url=url,
        public_url=public_url,
        apikey=apikey,
        extensions=_extensions(name, table.get("extensions", list(default_extensions))),
        save_interval=_seconds(name, "save_interval", table.get("save_interval", 60)),
        unlock_delay=_seconds(name, "unlock_delay", table.get("unlock_delay", 90)),
        poll_interval=_seconds(name, "poll_interval", table.get("poll_interval", 5)),
        idle_timeout=_seconds(name, "idle_timeout", table.get("idle_timeout", 3600)),
        max_size=max_size,
    )
