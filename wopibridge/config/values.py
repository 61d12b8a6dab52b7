"""One setting's value: the converters the schema names, and the error a bad value raises.

Each converter takes what TOML or the environment gave and returns the typed value, or raises
``ValueError`` with a short reason; the loader wraps it in :class:`ConfigError` naming the key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from wopibridge.config.redisurl import parse_lock_url


class ConfigError(Exception):
    """An invalid setting. ``str()`` is the one line shown to the operator; ``source`` names
    the environment variable the value came from, when it did."""

    def __init__(self, key: str, problem: str, source: str = "") -> None:
        where = f"{key} ({source})" if source else key
        super().__init__(f"invalid configuration: {where}: {problem}")
        self.key = key
        self.source = source


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("-").isdigit():
            raise ValueError("must be an integer")
    return int(value)


def as_port(value: Any) -> int:
    port = as_int(value)
    if not 1 <= port <= 65535:
        raise ValueError("must be an integer between 1 and 65535")
    return port


def as_positive(value: Any) -> int:
    number = as_int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def as_http_url(value: Any) -> str:
    url = as_str(value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return url


def as_lock_url(value: Any) -> str:
    url = as_str(value)
    parse_lock_url(url)
    return url


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.strip().lower() in ("1", "true", "yes")
    raise ValueError("must be true or false")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def as_log_level(value: Any) -> str:
    level = as_str(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def as_log_format(value: Any) -> str:
    text = as_str(value).strip().lower()
    if text not in ("json", "text"):
        raise ValueError('must be "json" or "text"')
    return text


def as_event_loop(value: Any) -> str:
    text = as_str(value).strip().lower()
    if text not in ("uvloop", "asyncio"):
        raise ValueError('must be "uvloop" or "asyncio"')
    return text


def as_prefix(value: Any) -> str:
    prefix = as_str(value)
    if "{" in prefix or "}" in prefix:
        raise ValueError("must not contain { or }: keys carry Redis Cluster hash tags")
    return prefix


def as_replicas(value: Any) -> int:
    """``auto`` (-1, resolved per topology) or a number of replicas, 0 and up."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return -1
    number = as_int(value)
    if number < 0:
        raise ValueError("must be auto or an integer >= 0")
    return number


def _as_number_of_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None


def as_seconds(value: Any) -> float:
    seconds = _as_number_of_seconds(value)
    if not 0 < seconds <= 300:
        raise ValueError("must be above 0 and at most 300 seconds")
    return seconds


def as_duration(value: Any) -> float:
    """Seconds from 0 (none) up to an hour: the drain and shutdown bounds."""
    seconds = _as_number_of_seconds(value)
    if not 0 <= seconds <= 3600:
        raise ValueError("must be between 0 and 3600 seconds")
    return seconds


def as_optional_str(value: Any) -> str:
    return "" if value is None else as_str(value)
