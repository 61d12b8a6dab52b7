"""Settings: a TOML file, every key overridable by ``WOPIBRIDGE_<SECTION>_<KEY>``.

The settings are frozen dataclasses built once at start. Every key is declared in
:data:`SCHEMA` with its type, default and a one-line description; the README's configuration
table is checked against it by the tests, so an undocumented key cannot creep in. A bad value
stops the server with one :class:`ConfigError` line naming the key.

Tables of named entries (``[apps.<name>]``, ``[storages.<name>]``) are kept as plain mappings
for their owners to validate; their keys are overridable as
``WOPIBRIDGE_APPS_<NAME>_<KEY>`` (names contain no underscore).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wopibridge.lockurl import DEFAULT_MIN_REPLICAS, RedisTarget, parse_lock_url

ENV_PREFIX = "WOPIBRIDGE_"
NAMED_TABLES = ("apps", "storages")


class ConfigError(Exception):
    """An invalid setting. ``str()`` is the one line shown to the operator."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"invalid configuration: {key}: {problem}")
        self.key = key


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise ValueError("must be an integer")
    return int(value)


def _as_port(value: Any) -> int:
    port = _as_int(value)
    if not 1 <= port <= 65535:
        raise ValueError("must be an integer between 1 and 65535")
    return port


def _as_positive(value: Any) -> int:
    number = _as_int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _as_http_url(value: Any) -> str:
    url = _as_str(value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _as_lock_url(value: Any) -> str:
    url = _as_str(value)
    parse_lock_url(url)
    return url


def _as_prefix(value: Any) -> str:
    prefix = _as_str(value)
    if "{" in prefix or "}" in prefix:
        raise ValueError("must not contain { or }: keys carry Redis Cluster hash tags")
    return prefix


def _as_replicas(value: Any) -> int:
    """``auto`` (-1, resolved per topology) or a number of replicas, 0 and up."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return -1
    number = _as_int(value)
    if number < 0:
        raise ValueError("must be auto or an integer >= 0")
    return number


def _as_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if not 0 < seconds <= 300:
        raise ValueError("must be above 0 and at most 300 seconds")
    return seconds


def _as_optional_str(value: Any) -> str:
    return "" if value is None else _as_str(value)


@dataclass(frozen=True)
class Key:
    default: Any
    parse: Callable[[Any], Any]
    doc: str


SCHEMA: dict[str, dict[str, Key]] = {
    "server": {
        "host": Key("127.0.0.1", _as_str, "Address to listen on."),
        "port": Key(8880, _as_port, "Port to listen on."),
        "public_url": Key(
            "", _as_optional_str, "Base URL of every WOPISrc; default `http://{host}:{port}`."
        ),
        "state_dir": Key(
            "./state", _as_str, "Folder for generated secrets and the local file-id index."
        ),
        "max_upload_size": Key(
            1024 * 1024 * 1024, _as_positive, "Largest accepted upload in bytes (413 above)."
        ),
        "log_level": Key("INFO", _as_str, "Python log level."),
        "workers": Key(
            1, _as_positive, "Server processes sharing the port; above 1 needs Redis locks."
        ),
    },
    "storage": {
        "root": Key("./data", _as_str, "Folder of the local storage, created on first run."),
    },
    "locks": {
        "url": Key(
            "memory://",
            _as_lock_url,
            "`memory://`, `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or "
            "`redis+cluster://` (see Locks and bridge state in Redis).",
        ),
        "prefix": Key("wopibridge:", _as_prefix, "Namespace of every Redis key (no braces)."),
        "min_replicas": Key(
            "auto",
            _as_replicas,
            "Replicas a Lock write must reach before 200 (`WAIT`); `auto`: 1 with Sentinel "
            "or Cluster, 0 otherwise.",
        ),
        "timeout": Key(
            3.0, _as_seconds, "Seconds a Redis call may take before the request answers 503."
        ),
    },
    "security": {
        "token_secret": Key("", _as_optional_str, "Secret signing access tokens."),
        "token_secret_file": Key("", _as_optional_str, "File holding `token_secret`."),
        "iop_secret": Key("", _as_optional_str, "Bearer secret shared with Reva/web UIs."),
        "iop_secret_file": Key("", _as_optional_str, "File holding `iop_secret`."),
        "token_ttl": Key(36000, _as_positive, "Access-token lifetime in seconds."),
    },
}


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    public_url: str
    state_dir: Path
    max_upload_size: int
    log_level: str
    workers: int


@dataclass(frozen=True)
class StorageSettings:
    root: Path


@dataclass(frozen=True)
class LockSettings:
    url: str
    prefix: str
    min_replicas: int
    timeout: float

    @property
    def target(self) -> RedisTarget:
        return parse_lock_url(self.url)


@dataclass(frozen=True)
class SecuritySettings:
    token_secret: str
    token_secret_file: str
    iop_secret: str
    iop_secret_file: str
    token_ttl: int


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    storage: StorageSettings
    locks: LockSettings
    security: SecuritySettings
    apps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    storages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


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


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for section, keys in SCHEMA.items():
        for key in keys:
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name in env:
                raw.setdefault(section, {})[key] = env[name]
    for table in NAMED_TABLES:
        prefix = f"{ENV_PREFIX}{table}_".upper()
        for name, value in env.items():
            if not name.startswith(prefix):
                continue
            entry, _, key = name[len(prefix) :].partition("_")
            if entry and key:
                raw.setdefault(table, {}).setdefault(entry.lower(), {})[key.lower()] = value


def _section(raw: dict[str, Any], section: str) -> dict[str, Any]:
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
            raise ConfigError(f"{section}.{key}", str(exc)) from None
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
    _apply_env(raw, os.environ if env is None else env)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)

    server = _section(raw, "server")
    if not server["public_url"]:
        server["public_url"] = f"http://{server['host']}:{server['port']}"
    else:
        try:
            server["public_url"] = _as_http_url(server["public_url"])
        except ValueError as exc:
            raise ConfigError("server.public_url", str(exc)) from None
    server["state_dir"] = Path(server["state_dir"])
    storage = _section(raw, "storage")
    storage["root"] = Path(storage["root"])
    locks = _section(raw, "locks")
    if locks["min_replicas"] < 0:
        locks["min_replicas"] = DEFAULT_MIN_REPLICAS[parse_lock_url(locks["url"]).topology]
    if server["workers"] > 1 and urlsplit(locks["url"]).scheme == "memory":
        raise ConfigError(
            "server.workers",
            "more than one worker needs locks.url = redis://...: "
            "in-process locks are not shared between processes",
        )
    security = _section(raw, "security")
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
        apps=_named_table(raw, "apps"),
        storages=_named_table(raw, "storages"),
    )
