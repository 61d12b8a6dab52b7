"""The settings as frozen dataclasses, built once at start, and the app key they live under."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from wopibridge.config.redisurl import RedisTarget, parse_lock_url


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
    event_loop: str = "asyncio"


@dataclass(frozen=True)
class RecoverySettings:
    max_bytes: int
    max_bytes_per_user: int
    max_age: int


@dataclass(frozen=True)
class StorageSettings:
    root: Path
    versions: bool = True


@dataclass(frozen=True)
class VersionSettings:
    max_count: int = 50
    max_age: int = 90 * 86400
    max_bytes: int = 1024**3
    autosave_window: int = 3600


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
    versions: VersionSettings = field(default_factory=VersionSettings)
    apps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    storages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
