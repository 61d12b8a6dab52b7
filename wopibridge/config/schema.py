"""Every key the settings know: its default, its converter and what it means.

``docs/configuration.md`` is generated from :data:`SCHEMA` (:mod:`wopibridge.config.reference`)
and the tests fail when the two differ, so an undocumented key cannot creep in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wopibridge.config.values import (
    as_bool,
    as_duration,
    as_event_loop,
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
    """One setting: its default, its converter, what it means (a sentence or two, Markdown),
    and how the reference shows the default when the value itself would mislead."""

    default: Any
    parse: Callable[[Any], Any]
    doc: str
    shown: str = ""


SCHEMA: dict[str, dict[str, Key]] = {
    "server": {
        "host": Key(
            "127.0.0.1",
            as_str,
            "Address to listen on.",
        ),
        "port": Key(
            8880,
            as_port,
            "Port to listen on.",
        ),
        "public_url": Key(
            "",
            as_optional_str,
            "Base URL of every WOPISrc, as editors reach this server.",
            shown="`http://{host}:{port}`",
        ),
        "state_dir": Key(
            "./state",
            as_str,
            "Folder for generated secrets, and the local file-id index when locks are in process.",
        ),
        "max_upload_size": Key(
            1024 * 1024 * 1024,
            as_positive,
            "Largest accepted upload in bytes; larger is 413, before the body is read when "
            "declared.",
        ),
        "log_level": Key(
            "INFO",
            as_log_level,
            "Python log level.",
        ),
        "log_format": Key(
            "json",
            as_log_format,
            "`json` (one JSON object a line on stderr) or `text`.",
        ),
        "workers": Key(
            1,
            as_positive,
            "Server processes sharing the port (one per core); more than one needs `locks.url = "
            '"redis://..."`.',
        ),
        "event_loop": Key(
            "asyncio",
            as_event_loop,
            "`asyncio` (the standard library's) or `uvloop` (in C: about 10% less CPU per small "
            "request; GetFile still hands the file to the kernel, `sendfile`).",
        ),
        "min_free_space": Key(
            1024**3,
            as_positive,
            '`/ready` warns (`"warnings"`, still 200) when the state folder or a local data '
            "folder has fewer free bytes.",
        ),
        "header_timeout": Key(
            10,
            as_positive,
            "Seconds a client has, from a request's first byte, to send its line and headers; "
            "slower gets 408 and the connection is closed.",
        ),
        "read_timeout": Key(
            60,
            as_positive,
            "Seconds a request body may stall (no byte arriving while wopibridge waits for one) "
            "before the connection is closed.",
        ),
        "keepalive_timeout": Key(
            15,
            as_positive,
            "Seconds an idle keep-alive connection is kept open.",
        ),
        "max_connections": Key(
            10000,
            as_positive,
            "Open connections per worker, lowered at start to fit the open-file limit (both "
            "logged). At the cap the longest-idle connection is closed, or the new one answered "
            "503 when none is idle.",
        ),
        "drain_seconds": Key(
            5,
            as_duration,
            "On SIGTERM, seconds `/ready` answers 503 while every request is still served, so "
            "balancers take the instance out first.",
        ),
        "shutdown_timeout": Key(
            30,
            as_duration,
            "After the drain, seconds the uploads and downloads in flight get to finish before "
            "they are cut off.",
        ),
    },
    "recovery": {
        "max_bytes": Key(
            10 * 1024**3,
            as_positive,
            "Bytes of kept refused saves (conflict copies and `<state_dir>/recovery/`) in all; "
            "see [Saves that cannot land](editors.md#saves-that-cannot-land).",
        ),
        "max_bytes_per_user": Key(
            1024**3,
            as_positive,
            "Bytes of kept refused saves per user.",
        ),
        "max_age": Key(
            30 * 86400,
            as_positive,
            "Seconds a kept refused save is kept (30 days).",
        ),
    },
    "storage": {
        "root": Key(
            "./data",
            as_str,
            "Folder of the local storage, created on first run.",
        ),
        "versions": Key(
            True,
            as_bool,
            "Keep previous contents of the local storage's files (see "
            "[Version history](versions.md)).",
        ),
    },
    "versions": {
        "max_count": Key(50, as_positive, "Versions kept per file; the oldest go first."),
        "max_age": Key(90 * 86400, as_positive, "Seconds a version is kept (90 days)."),
        "max_bytes": Key(1024**3, as_positive, "Bytes of one file's versions (the newest stays)."),
        "autosave_window": Key(
            3600, as_positive, "Seconds an editing session's autosaves coalesce into one version."
        ),
    },
    "locks": {
        "url": Key(
            "memory://",
            as_lock_url,
            "`memory://` for in-process locks, or Redis: `redis://`, `rediss://`, `unix://`, "
            "`redis+sentinel://`, `redis+cluster://` (see [Locks and bridge state in "
            "Redis](redis.md#locks-and-bridge-state-in-redis)).",
        ),
        "prefix": Key(
            "wopibridge:",
            as_prefix,
            "Namespace of every Redis key: locks, bridge state, file id map (no `{` or `}`).",
        ),
        "min_replicas": Key(
            "auto",
            as_replicas,
            "Replicas a Lock, UnlockAndRelock or RefreshLock must reach (`WAIT`) before it is "
            "answered 200; `auto` is 1 with Sentinel or Cluster, 0 otherwise.",
        ),
        "timeout": Key(
            3.0,
            as_seconds,
            "Seconds a Redis call may take (replica acknowledgement included) before the "
            "request answers 503.",
        ),
    },
    "security": {
        "token_secret": Key(
            "",
            as_optional_str,
            "Secret that signs access tokens (at least 16 characters).",
            shown="generated",
        ),
        "token_secret_file": Key(
            "",
            as_optional_str,
            "File holding the token secret, instead of the key above.",
        ),
        "iop_secret": Key(
            "",
            as_optional_str,
            "Bearer secret shared with Reva and web UIs for the open calls.",
            shown="generated",
        ),
        "iop_secret_file": Key(
            "",
            as_optional_str,
            "File holding the iop secret.",
        ),
        "token_ttl": Key(
            36000,
            as_positive,
            "Access-token lifetime in seconds (10 hours).",
        ),
        "short_tokens": Key(
            False,
            as_bool,
            'Hand out short token handles kept where the locks are (see "Short access tokens").',
        ),
    },
}
