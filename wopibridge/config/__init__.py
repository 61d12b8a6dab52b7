"""Settings: a TOML file, every key overridable by ``WOPIBRIDGE_<SECTION>_<KEY>``.

``values`` reads one value (and raises :class:`ConfigError`), ``schema`` declares every key,
``settings`` holds the frozen dataclasses and their app key, ``loading`` reads the file and the
environment, ``redisurl`` parses ``locks.url`` (which the lock layer reads too).
"""

from wopibridge.config.loading import (
    ENV_PREFIX,
    NAMED_PATH_KEYS,
    NAMED_TABLES,
    PATH_KEYS,
    load_settings,
)
from wopibridge.config.schema import SCHEMA, Key
from wopibridge.config.settings import (
    SETTINGS,
    LockSettings,
    RecoverySettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    StorageSettings,
    VersionSettings,
)
from wopibridge.config.values import LOG_LEVELS, ConfigError

__all__ = [
    "ENV_PREFIX",
    "LOG_LEVELS",
    "NAMED_PATH_KEYS",
    "NAMED_TABLES",
    "PATH_KEYS",
    "SCHEMA",
    "SETTINGS",
    "ConfigError",
    "Key",
    "LockSettings",
    "RecoverySettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "VersionSettings",
    "load_settings",
]
