"""Loading the settings: a TOML file, every key overridable by ``WOPIBRIDGE_<SECTION>_<KEY>``.

The settings are frozen dataclasses built once at start. Every key is declared in
:data:`SCHEMA` with its type, default and a one-line description; the README's configuration
table is checked against it by the tests, so an undocumented key cannot creep in. A bad value
stops the server with one :class:`ConfigError` line naming the key.

Tables of named entries (``[apps.<name>]``, ``[storages.<name>]``) are kept as plain mappings
for their owners to validate; their keys are overridable as
``WOPIBRIDGE_APPS_<NAME>_<KEY>`` (names contain no underscore). A ``WOPIBRIDGE_*`` variable
that names no key is refused like a mistyped TOML key: a typo must not be ignored in silence.

Relative paths written in a config file (and the default ``./data`` and ``./state`` when a
file is given) are relative to the file's folder, so the server finds the same secrets and
files whatever folder it is started from. Paths from the environment or the command line are
relative to the current folder, as a shell user expects.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wopibridge.config.redisurl import DEFAULT_MIN_REPLICAS, parse_lock_url
from wopibridge.config.schema import SCHEMA
from wopibridge.config.settings import (
    LockSettings,
    RecoverySettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    StorageSettings,
    VersionSettings,
)
from wopibridge.config.values import ConfigError, as_http_url

ENV_PREFIX = "WOPIBRIDGE_"
NAMED_TABLES = ("apps", "storages")


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("--config", f"file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML ({exc})") from None


#: Keys whose values are filesystem paths: relative ones in a file are anchored to its folder.
PATH_KEYS = {
    "server": ("state_dir",),
    "storage": ("root",),
    "security": ("token_secret_file", "iop_secret_file"),
}
#: The same in named tables: ``apps.<name>.apikey_file``, a local storage's ``root``.
NAMED_PATH_KEYS = {"apps": ("apikey_file",), "storages": ("root",)}


def _anchored(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str(base / value)
    return value


def _anchor_paths(raw: dict[str, Any], base: Path) -> None:
    """Make the relative paths of a config file (and the path defaults) relative to ``base``."""
    for section, keys in PATH_KEYS.items():
        given = raw.setdefault(section, {})
        if not isinstance(given, dict):
            continue  # reported by _section
        for key in keys:
            default = SCHEMA[section][key].default
            if key in given:
                given[key] = _anchored(given[key], base)
            elif default:
                given[key] = _anchored(default, base)
    for table, keys in NAMED_PATH_KEYS.items():
        entries = raw.get(table)
        if not isinstance(entries, dict):
            continue
        for entry in entries.values():
            if not isinstance(entry, dict):
                continue
            if table == "storages" and entry.get("type", "local") != "local":
                continue  # a CS3 root or a WebDAV URL is not a local path
            for key in keys:
                if key in entry:
                    entry[key] = _anchored(entry[key], base)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Merge ``WOPIBRIDGE_*`` variables into ``raw``; answers ``section.key`` -> variable.

    A variable that names no key stops the start, naming it."""
    sources: dict[str, str] = {}
    known: dict[str, tuple[str, str]] = {
        f"{ENV_PREFIX}{section}_{key}".upper(): (section, key)
        for section, keys in SCHEMA.items()
        for key in keys
    }
    prefixes = {f"{ENV_PREFIX}{table}_".upper(): table for table in NAMED_TABLES}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        value = env[name]
        if name in known:
            section, key = known[name]
            raw.setdefault(section, {})[key] = value
            sources[f"{section}.{key}"] = name
            continue
        table = next((t for p, t in prefixes.items() if name.startswith(p)), None)
        if table is not None:
            entry, _, key = name[len(f"{ENV_PREFIX}{table}_") :].partition("_")
            if entry and key:
                entries = raw.setdefault(table, {})
                if isinstance(entries, dict):
                    entries.setdefault(entry.lower(), {})[key.lower()] = value
                continue
        raise ConfigError(
            name,
            "unknown environment variable (WOPIBRIDGE_<SECTION>_<KEY>, "
            "WOPIBRIDGE_APPS_<NAME>_<KEY> or WOPIBRIDGE_STORAGES_<NAME>_<KEY>)",
        )
    return sources


def _section(
    raw: dict[str, Any], section: str, sources: Mapping[str, str] | None = None
) -> dict[str, Any]:
    given = raw.get(section, {})
    if not isinstance(given, dict):
        raise ConfigError(section, "must be a table")
    unknown = set(given) - set(SCHEMA[section])
    if unknown:
        raise ConfigError(f"{section}.{sorted(unknown)[0]}", "unknown key")
    values: dict[str, Any] = {}
    for key, spec in SCHEMA[section].items():
        value = given.get(key, spec.default)
        try:
            values[key] = spec.parse(value)
        except (ValueError, TypeError) as exc:
            name = f"{section}.{key}"
            raise ConfigError(name, str(exc), (sources or {}).get(name, "")) from None
    return values


def _named_table(raw: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    given = raw.get(table, {})
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise ConfigError(table, "must be a table of named tables")
    return {str(name).lower(): dict(entry) for name, entry in given.items()}


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from a TOML file, then the environment, then explicit overrides
    (the command line's ``--host``/``--port``)."""
    raw = _read_file(path)
    unknown = set(raw) - set(SCHEMA) - set(NAMED_TABLES)
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown section")
    if path is not None:
        _anchor_paths(raw, path.resolve().parent)
    sources = _apply_env(raw, os.environ if env is None else env)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)

    server = _section(raw, "server", sources)
    if not server["public_url"]:
        server["public_url"] = f"http://{server['host']}:{server['port']}"
    else:
        try:
            server["public_url"] = as_http_url(server["public_url"])
        except ValueError as exc:
            name = "server.public_url"
            raise ConfigError(name, str(exc), sources.get(name, "")) from None
    server["state_dir"] = Path(server["state_dir"])
    storage = _section(raw, "storage", sources)
    storage["root"] = Path(storage["root"])
    locks = _section(raw, "locks", sources)
    if locks["min_replicas"] < 0:
        locks["min_replicas"] = DEFAULT_MIN_REPLICAS[parse_lock_url(locks["url"]).topology]
    if server["workers"] > 1 and urlsplit(locks["url"]).scheme == "memory":
        raise ConfigError(
            "server.workers",
            "more than one worker needs locks.url = redis://...: "
            "in-process locks are not shared between processes",
        )
    security = _section(raw, "security", sources)
    recovery = _section(raw, "recovery", sources)
    versions = _section(raw, "versions", sources)
    for name in ("token_secret", "iop_secret"):
        if security[name] and security[f"{name}_file"]:
            raise ConfigError(f"security.{name}", f"set either {name} or {name}_file, not both")
        if security[name] and len(security[name]) < 16:
            raise ConfigError(f"security.{name}", "must be at least 16 characters")
    return Settings(
        server=ServerSettings(**server),
        storage=StorageSettings(**storage),
        locks=LockSettings(**locks),
        security=SecuritySettings(**security),
        recovery=RecoverySettings(**recovery),
        versions=VersionSettings(**versions),
        apps=_named_table(raw, "apps"),
        storages=_named_table(raw, "storages"),
    )
