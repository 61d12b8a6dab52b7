"""Settings: a TOML file, every key overridable by ``WOPIBRIDGE_<SECTION>_<KEY>``.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wopibridge.lockurl import DEFAULT_MIN_REPLICAS, RedisTarget, parse_lock_url

ENV_PREFIX = "WOPIBRIDGE_"
NAMED_TABLES = ("apps", "storages")


class ConfigError(Exception):
    """An invalid setting. ``str()`` is the one line shown to the operator; ``source`` names
    the environment variable the value came from, when it did."""

    def __init__(self, key: str, problem: str, source: str = "") -> None:
        where = f"{key} ({source})" if source else key
        super().__init__(f"invalid configuration: {where}: {problem}")
        self.key = key
        self.source = source


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


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.strip().lower() in ("1", "true", "yes")
    raise ValueError("must be true or false")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _as_log_level(value: Any) -> str:
    level = _as_str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _as_log_format(value: Any) -> str:
    text = _as_str(value).strip().lower()
    if text not in ("json", "text"):
        raise ValueError('must be "json" or "text"')
    return text


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


def _as_duration(value: Any) -> float:
    """Seconds from 0 (none) up to an hour: the drain and shutdown bounds."""
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise ValueError("must be between 0 and 3600 seconds")
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
        "log_level": Key("INFO", _as_log_level, "Python log level."),
        "log_format": Key(
            "json", _as_log_format, "`json` (one JSON object a line on stderr) or `text`."
        ),
        "workers": Key(
            1, _as_positive, "Server processes sharing the port; above 1 needs Redis locks."
        ),
        "min_free_space": Key(
            1024**3, _as_positive, "`/ready` warns when the state or a data folder has less."
        ),
        "header_timeout": Key(
            10, _as_positive, "Seconds a client has to send a request's line and headers."
        ),
        "read_timeout": Key(
            60, _as_positive, "Seconds a request body may stall before the connection closes."
        ),
        "keepalive_timeout": Key(
            15, _as_positive, "Seconds an idle keep-alive connection is kept open."
        ),
        "max_connections": Key(
            10000,
            _as_positive,
            "Open connections per worker; lowered to fit the open-file limit found at start. "
            "At the cap the longest-idle connection is closed, or the new one answered 503.",
        ),
        "drain_seconds": Key(
            5,
            _as_duration,
            "On SIGTERM, seconds `/ready` answers 503 while requests are still served.",
        ),
        "shutdown_timeout": Key(
            30,
            _as_duration,
            "After the drain, seconds requests in flight get to finish before being cut off.",
        ),
    },
    "recovery": {
        "max_bytes": Key(10 * 1024**3, _as_positive, "Bytes of kept refused saves in all."),
        "max_bytes_per_user": Key(1024**3, _as_positive, "Bytes of kept refused saves per user."),
        "max_age": Key(30 * 86400, _as_positive, "Seconds a kept refused save is kept."),
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
        "short_tokens": Key(
            False, _as_bool, "Hand out short token handles kept in the lock store (URLs < 2 kB)."
        ),
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
    log_format: str
    workers: int
    min_free_space: int
    header_timeout: int = 10
    read_timeout: int = 60
    keepalive_timeout: int = 15
    max_connections: int = 10000
    drain_seconds: float = 5.0
    shutdown_timeout: float = 30.0


@dataclass(frozen=True)
class RecoverySettings:
    max_bytes: int
    max_bytes_per_user: int
    max_age: int


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
    short_tokens: bool = False


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    storage: StorageSettings
    locks: LockSettings
    security: SecuritySettings
    recovery: RecoverySettings = field(
        default_factory=lambda: RecoverySettings(10 * 1024**3, 1024**3, 30 * 86400)
    )
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
            server["public_url"] = _as_http_url(server["public_url"])
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
        apps=_named_table(raw, "apps"),
        storages=_named_table(raw, "storages"),
    )
