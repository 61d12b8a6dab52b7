"""Every key the settings know: its default, its converter and the one line the README shows.

The README's configuration table is checked against :data:`SCHEMA` by the tests, so an
undocumented key cannot creep in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wopibridge.config.values import (
    as_bool,
    as_lock_url,
    as_log_format,
    as_log_level,
    as_optional_str,
    as_port,
    as_positive,
    as_prefix,
    as_replicas,
    as_seconds,
    as_str,
)


@dataclass(frozen=True)
class Key:
    default: Any
    parse: Callable[[Any], Any]
    doc: str


SCHEMA: dict[str, dict[str, Key]] = {
    "server": {
        "host": Key("127.0.0.1", as_str, "Address to listen on."),
        "port": Key(8880, as_port, "Port to listen on."),
        "public_url": Key(
            "", as_optional_str, "Base URL of every WOPISrc; default `http://{host}:{port}`."
        ),
        "state_dir": Key(
            "./state", as_str, "Folder for generated secrets and the local file-id index."
        ),
        "max_upload_size": Key(
            1024 * 1024 * 1024, as_positive, "Largest accepted upload in bytes (413 above)."
        ),
        "log_level": Key("INFO", as_log_level, "Python log level."),
        "log_format": Key(
            "json", as_log_format, "`json` (one JSON object a line on stderr) or `text`."
        ),
        "workers": Key(
            1, as_positive, "Server processes sharing the port; above 1 needs Redis locks."
        ),
        "min_free_space": Key(
            1024**3, as_positive, "`/ready` warns when the state or a data folder has less."
        ),
        "header_timeout": Key(
            10, as_positive, "Seconds a client has to send a request's line and headers."
        ),
        "read_timeout": Key(
            60, as_positive, "Seconds a request body may stall before the connection closes."
        ),
    },
    "recovery": {
        "max_bytes": Key(10 * 1024**3, as_positive, "Bytes of kept refused saves in all."),
        "max_bytes_per_user": Key(1024**3, as_positive, "Bytes of kept refused saves per user."),
        "max_age": Key(30 * 86400, as_positive, "Seconds a kept refused save is kept."),
    },
    "storage": {
        "root": Key("./data", as_str, "Folder of the local storage, created on first run."),
    },
    "locks": {
        "url": Key(
            "memory://",
            as_lock_url,
            "`memory://`, `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or "
            "`redis+cluster://` (see Locks and bridge state in Redis).",
        ),
        "prefix": Key("wopibridge:", as_prefix, "Namespace of every Redis key (no braces)."),
        "min_replicas": Key(
            "auto",
            as_replicas,
            "Replicas a Lock write must reach before 200 (`WAIT`); `auto`: 1 with Sentinel "
            "or Cluster, 0 otherwise.",
        ),
        "timeout": Key(
            3.0, as_seconds, "Seconds a Redis call may take before the request answers 503."
        ),
    },
    "security": {
        "token_secret": Key("", as_optional_str, "Secret signing access tokens."),
        "token_secret_file": Key("", as_optional_str, "File holding `token_secret`."),
        "iop_secret": Key("", as_optional_str, "Bearer secret shared with Reva/web UIs."),
        "iop_secret_file": Key("", as_optional_str, "File holding `iop_secret`."),
        "token_ttl": Key(36000, as_positive, "Access-token lifetime in seconds."),
        "short_tokens": Key(
            False, as_bool, "Hand out short token handles kept in the lock store (URLs < 2 kB)."
        ),
    },
}
