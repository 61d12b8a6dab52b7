"""Build the configured storages: the default local one plus every ``[storages.<name>]``.

Configuration::

    [storage]
    root = "./data"                 # the default storage, named "local"

    [storages.cernbox]
    type = "cs3"                    # "local", "webdav", "cs3" or "xrootd"
    gateway = "reva.example.org:9142"

    [storages.nextcloud]
    type = "webdav"
    url = "https://cloud.example.org/remote.php/dav/files/wopi"
    auth = "basic"
    username = "wopi"
    password = "..."

Each type validates its own table (one ``ConfigError`` line naming the bad key). Builders are
picked from the explicit :data:`BUILDERS` dict. The resulting :class:`MeshRegistry` also opens
per-request views: a storage acting with the user's own credential (sealed in the access token
by :mod:`wopibridge.security.crypto`) and the lock store that fits the storage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from wopibridge.config import SETTINGS, ConfigError, Settings
from wopibridge.config.values import as_bool
from wopibridge.errors import NotFound
from wopibridge.instruments import Instruments
from wopibridge.locks.base import LockStore
from wopibridge.locks.client import RedisConnection
from wopibridge.locks.instrumented import InstrumentedLockStore
from wopibridge.locks.keys import LOCKS
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.locks.ownerlocks import LOCK_USER, OwnerHolder, OwnerLockStore
from wopibridge.locks.redis import RedisLockStore
from wopibridge.locks.sitelocks import SiteLockStore
from wopibridge.security.crypto import CREDENTIAL_CLAIM, CredentialBox
from wopibridge.security.tokens import AccessToken
from wopibridge.storage import cs3, fileids, webdav, xrootd
from wopibridge.storage.base import ReportsLocks, Storage
from wopibridge.storage.idmap import IdMap, SqliteIdMap
from wopibridge.storage.instrumented import InstrumentedStorage, VersionCounters
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.local.owner import kept_site
from wopibridge.storage.redis_idmap import RedisIdMap
from wopibridge.storage.registry import StorageRegistry
from wopibridge.storage.versions import VersionLimits

DEFAULT_STORAGE = "local"

Builder = Callable[[str, Mapping[str, Any], Settings, aiohttp.ClientSession], Storage]


def _local(name: str, table: Mapping[str, Any], settings: Settings, _: Any) -> Storage:
    unknown = set(table) - {"type", "root", "versions"}
    if unknown:
        raise ValueError(f"storages.{name}.{sorted(unknown)[0]}: unknown key")
    if not table.get("root"):
        raise ValueError(f"storages.{name}.root: required for a local storage")
    root = Path(str(table["root"]))
    key = "storage.root" if name == DEFAULT_STORAGE else f"storages.{name}.root"
    try:  # the folder is created on first run; say which key when that cannot be done
        root.mkdir(parents=True, exist_ok=True)
        if not root.resolve().is_dir():
            raise NotADirectoryError(20, "Not a directory")
    except OSError as exc:
        raise ValueError(
            f"{key}: cannot use {root} as the storage folder ({exc.strerror})"
        ) from None
    try:
        versions = as_bool(table.get("versions", True))
    except ValueError as exc:
        raise ValueError(f"storages.{name}.versions: {exc}") from None
    state_dir = settings.server.state_dir
    try:
        # with in-process locks this one instance is its site: its id kept across restarts
        in_process = urlsplit(settings.locks.url).scheme == "memory"
        storage = LocalStorage(
            name,
            root,
            state_dir,
            open_id_map(name, settings),
            holder=settings.server.public_url,
            site=kept_site(state_dir) if in_process else None,
        )
    except (OSError, sqlite3.Error) as exc:
        problem = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(
            f"server.state_dir: cannot keep the file index in {state_dir} ({problem})"
        ) from None
    if versions:
        storage.keep_versions(version_limits(settings))
    return storage


def version_limits(settings: Settings) -> VersionLimits:
    """The ``[versions]`` limits every storage keeping versions applies."""
    v = settings.versions
    return VersionLimits(v.max_count, v.max_age, v.max_bytes, v.autosave_window)


def open_id_map(name: str, settings: Settings) -> IdMap:
    """Where a local storage's ids are mapped to paths: in Redis, seen by every instance,
    when the locks are there; in the state folder when locks are in process (one instance)."""
    locks = settings.locks
    if urlsplit(locks.url).scheme == "memory":
        return SqliteIdMap(settings.server.state_dir / f"{name}-files.sqlite3")
    return RedisIdMap.from_target(locks.target, locks.url, locks.timeout, locks.prefix, name)


def _webdav(name: str, table: Mapping[str, Any], settings: Settings, http: Any) -> Storage:
    ids: IdMap | None = None  # in-process locks: renames are remembered in this process
    tokens: LockStore = MemoryLockStore()
    if urlsplit(settings.locks.url).scheme != "memory":
        locks = settings.locks
        ids = RedisIdMap.from_target(locks.target, locks.url, locks.timeout, locks.prefix, name)
        # The WebDAV lock tokens of this site, beside its WOPI locks, seen by every instance.
        tokens = RedisLockStore(RedisConnection(locks.target, locks.timeout), locks.prefix)
    return webdav.build(name, table, http, ids, tokens, settings.server.public_url)


def _cs3(name: str, table: Mapping[str, Any], _: Settings, http: Any) -> Storage:
    return cs3.build(name, table, http)


def _xrootd(name: str, table: Mapping[str, Any], settings: Settings, _: Any) -> Storage:
    """An XRootD storage; its locks on the files record this instance's site."""
    return xrootd.build(name, table, open_id_map(name, settings), site=settings.server.public_url)


BUILDERS: dict[str, Builder] = {
    "local": _local,
    "webdav": _webdav,
    "cs3": _cs3,
    "xrootd": _xrootd,
}


def with_credential(storage: Storage, credential: str | None) -> Storage:
    """The storage acting with a user's credential, when the backend takes one."""
    if credential and storage.capabilities.user_credential:
        return storage.with_credential(credential)
    return storage


def file_locks(storage: Storage, app_locks: LockStore, site: str) -> LockStore:
    """The lock store for WOPI locks on files of ``storage``.

    Files on storages other sites reach too (WebDAV, CS3) record this site as holder (one more
    lock-store call next to a storage round trip). A local storage's locks stay one atomic
    call each.
    """
    locks = storage.lock_store(app_locks) if storage.capabilities.own_locks else app_locks
    if storage.capabilities.shared_by_sites:
        return SiteLockStore(locks, app_locks, site)
    return locks


async def locked_elsewhere(storage: Storage, app_locks: LockStore, site: str, key: str) -> bool:
    """Whether another site holds the WOPI lock on ``key`` (never for site-local files)."""
    if not storage.capabilities.shared_by_sites:
        return False
    locks = storage.lock_store(app_locks) if storage.capabilities.own_locks else app_locks
    return await SiteLockStore(locks, app_locks, site).locked_elsewhere(key)


async def owner_holder(
    storage: Storage, app_locks: LockStore, site: str, key: str
) -> OwnerHolder | None:
    """Who holds ``key`` at the owner's storage when it is not this site (a desktop client,
    another site's host): ``None`` when nobody else does, or the storage keeps no locks."""
    if not storage.capabilities.own_locks:
        return None
    locks = storage.lock_store(app_locks)
    if isinstance(locks, InstrumentedLockStore):  # the timing wrapper of the app's storages
        locks = locks.inner
    if not isinstance(locks, OwnerLockStore):
        return None
    holder = await locks.holder(key)
    if holder is None or holder.site == site:
        return None
    return holder


def lock_modes(registry: StorageRegistry) -> dict[str, str]:
    """How each storage that can hold WOPI locks at the owner does it now (``/ready``)."""
    modes: dict[str, str] = {}
    for storage in registry:
        mode = storage.lock_mode() if isinstance(storage, ReportsLocks) else ""
        if mode:
            modes[storage.name] = mode
    return modes


class MeshRegistry(StorageRegistry):
    """The storage registry, plus credential sealing and per-request storage views."""

    def __init__(self, storages: Mapping[str, Storage], default: str, box: CredentialBox) -> None:
        super().__init__(storages, default)
        self._box = box

    def seal_credential(self, storage_name: str, credential: str | None) -> dict[str, str]:
        """The ``extra`` claims carrying ``credential`` for files of ``storage_name``."""
        if not credential:
            return {}
        return {CREDENTIAL_CLAIM: self._box.seal(credential, context=storage_name)}

    def bound(self, storage_name: str, credential: str | None) -> Storage:
        """The named storage acting with ``credential`` (for ``openinapp``'s resolve)."""
        return with_credential(self.get(storage_name), credential)

    def pick(self, endpoint: str, fileid: str) -> tuple[Storage, str]:
        """The storage and reference for ``openinapp``'s ``endpoint`` and ``fileid``.

        ``endpoint`` may name a configured storage; otherwise it is Reva's storage id
        (``storage_id`` or ``storage_id$space_id``), served by the CS3 storage when exactly one
        is configured, and ``fileid`` is completed into Reva's ``storage$space!opaque`` form.
        Without an endpoint, the default storage resolves ``fileid``.
        """
        if not endpoint:
            return self.default, fileid
        if endpoint in self.names():
            return self.get(endpoint), fileid
        gateways = [s for s in self if s.capabilities.reva_gateway]
        if len(gateways) == 1:
            ref = fileid if "!" in fileid else f"{endpoint}!{fileid}"
            return gateways[0], ref
        raise NotFound("File not found")

    def for_access(self, access: AccessToken) -> tuple[Storage, str]:
        """The storage and backend id of a verified access token, acting as its user."""
        storage, backend_id = self.for_file(access.file_id)
        sealed = access.extra.get(CREDENTIAL_CLAIM)
        if sealed:
            storage = with_credential(storage, self._box.open(sealed, context=storage.name))
        return storage, backend_id

    async def close(self) -> None:
        for storage in self:
            await storage.close()


#: Every configured storage, built at start (``resources.storage_ctx``).
STORAGES: web.AppKey[MeshRegistry] = web.AppKey("storages")
#: The one client session for every outgoing call (discovery, editors, WebDAV); the storages
#: are its lowest user (they are built on it).
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")


def build_registry(
    settings: Settings,
    http: aiohttp.ClientSession,
    token_secret: str,
    instruments: Instruments | None = None,
) -> MeshRegistry:
    """Every configured storage, on the app's shared HTTP session. Raises ``ConfigError``.

    With ``instruments``, each storage is wrapped so that its calls are timed and traced.
    """
    storages: dict[str, Storage] = {}
    if DEFAULT_STORAGE not in settings.storages:
        try:
            default = {"root": str(settings.storage.root), "versions": settings.storage.versions}
            storages[DEFAULT_STORAGE] = _local(DEFAULT_STORAGE, default, settings, http)
        except ValueError as exc:
            key, _, problem = str(exc).partition(": ")
            raise ConfigError(key, problem) from None
    for name, table in settings.storages.items():
        if not fileids.valid_storage_name(name):
            raise ConfigError(f"storages.{name}", "names are lowercase letters, digits and -")
        kind = str(table.get("type", ""))
        builder = BUILDERS.get(kind)
        if builder is None:
            raise ConfigError(f"storages.{name}.type", f"must be one of {', '.join(BUILDERS)}")
        try:
            storages[name] = builder(name, table, settings, http)
        except ValueError as exc:
            key, _, problem = str(exc).partition(": ")
            raise ConfigError(key, problem or str(exc)) from None
    if instruments is not None:
        for storage in storages.values():
            if isinstance(storage, LocalStorage):
                storage.version_events = VersionCounters(instruments)
        storages = {
            name: InstrumentedStorage(storage, instruments) for name, storage in storages.items()
        }
    return MeshRegistry(storages, DEFAULT_STORAGE, CredentialBox(token_secret))


def bind_request(app: web.Application, access: AccessToken) -> tuple[Storage, str, LockStore]:
    """What one WOPI request works with: the storage acting as the token's user, the backend
    id, and the lock store for the file (recording this site, ``server.public_url``)."""
    storage, backend_id = app[STORAGES].for_access(access)
    site = app[SETTINGS].server.public_url
    LOCK_USER.set(access.user_name or access.user_id)
    return storage, backend_id, file_locks(storage, app[LOCKS], site)
