"""CS3 storage: Reva, CERNBox and oCIS through the CS3 gateway API over gRPC (``grpc.aio``).

Metadata calls (``Stat``, ``Move``, ``Delete``, ``SetArbitraryMetadata``, the lock calls) go to
``cs3.gateway.v1beta1.GatewayAPI`` with the user's Reva token in the ``x-access-token`` gRPC
metadata. File bodies do not travel over gRPC: ``InitiateFileDownload``/``InitiateFileUpload``
answer an HTTP endpoint and a transfer token, and the bytes are streamed over the app's shared
aiohttp session with ``X-Reva-Transfer`` (and ``x-access-token``) headers, never buffered.

The user's token reaches this module through :meth:`Cs3Storage.with_credential`, which returns a
per-request view of the storage; the channel and the stubs are shared by all views.

Writes: the version precondition travels as the upload's ``if_match`` (the gateway checks it
atomically), a create uses ``if_not_exist``. A lock that wopibridge holds on the gateway is
passed along as ``lock_id`` so the gateway accepts the write.

Locks: :class:`Cs3LockStore` keeps WOPI locks on the gateway (``SetLock``/``GetLock``/
``RefreshLock``/``Unlock``) so that every client of the storage sees them. A gateway that answers
UNIMPLEMENTED is remembered, and the wrapper falls back to wopibridge's own lock store.
"""

from __future__ import annotations

import base64
import binascii
import logging
import posixpath
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc
import cs3.rpc.v1beta1.code_pb2 as code
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr
import cs3.types.v1beta1.types_pb2 as types
import grpc

from wopibridge.errors import (
    BadRequest,
    FileExists,
    Forbidden,
    InsufficientStorage,
    Locked,
    NotFound,
    NotImplementedOperation,
    Unauthorized,
    Unavailable,
    VersionConflict,
    WopiError,
)
from wopibridge.locks.base import LOCK_TTL_SECONDS, LockResult, LockStore
from wopibridge.storage.base import Capabilities, FileContent, FileStat
from wopibridge.storage.httpbody import HttpFileContent
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.propagation import grpc_metadata

log = logging.getLogger("wopibridge.storage.cs3")

APP_NAME = "wopibridge"
META_PREFIX = "wopibridge."
_ID_SEP = "\x1f"


def encode_resource_id(rid: spr.ResourceId) -> str:
    """A URL-safe backend id from a CS3 resource id (storage, space and opaque ids)."""
    raw = _ID_SEP.join((rid.storage_id, rid.space_id, rid.opaque_id)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_resource_id(file_id: str) -> spr.ResourceId:
    try:
        raw = base64.urlsafe_b64decode((file_id + "=" * (-len(file_id) % 4)).encode("ascii"))
        storage_id, space_id, opaque_id = raw.decode().split(_ID_SEP)
    except (binascii.Error, UnicodeError, ValueError):
        raise NotFound("File not found") from None
    if not opaque_id:
        raise NotFound("File not found")
    return spr.ResourceId(storage_id=storage_id, space_id=space_id, opaque_id=opaque_id)


def parse_reva_id(ref: str) -> spr.ResourceId | None:
    """Reva's string form ``storage_id$space_id!opaque_id`` (or ``storage_id!opaque_id``)."""
    head, sep, opaque_id = ref.partition("!")
    if not sep or not opaque_id or "/" in head:
        return None
    storage_id, _, space_id = head.partition("$")
    return spr.ResourceId(storage_id=storage_id, space_id=space_id, opaque_id=opaque_id)


def format_reva_id(rid: spr.ResourceId) -> str:
    return f"{rid.storage_id}${rid.space_id}!{rid.opaque_id}"


@dataclass(frozen=True, slots=True)
class Cs3Config:
    """One ``[storages.<name>]`` table of ``type = "cs3"``.

    ``gateway``: ``host:port`` of the gateway's gRPC endpoint; ``tls``: use a TLS channel;
    ``root``: the CS3 path that relative references start from; ``token``: a service token
    used when a request carries no user token (optional); ``site``: prefix of every lock key.
    """

    gateway: str
    tls: bool = False
    root: str = "/"
    token: str = ""
    site: str = ""
    timeout: float = 30.0
    insecure_data: bool = False

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> Cs3Config:
        known = set(cls.__dataclass_fields__) | {"type"}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"storages.{name}.{sorted(unknown)[0]}: unknown key")
        gateway = str(table.get("gateway", ""))
        host, _, port = gateway.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"storages.{name}.gateway: must be host:port")
        root = str(table.get("root", "/"))
        if not root.startswith("/"):
            raise ValueError(f"storages.{name}.root: must be an absolute CS3 path")
        try:
            timeout = float(table.get("timeout", 30.0))
        except (TypeError, ValueError):
            raise ValueError(f"storages.{name}.timeout: must be a number") from None

        def flag(key: str) -> bool:
            value = table.get(key, False)
            return value.lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)

        return cls(
            gateway=gateway,
            tls=flag("tls"),
            root=root.rstrip("/") or "/",
            token=str(table.get("token", "")),
            site=str(table.get("site", "")) or f"cs3:{gateway}",
            timeout=timeout,
            insecure_data=flag("insecure_data"),
        )


@dataclass(slots=True)
class _Shared:
    """What every view of one storage shares: the channel, the stub, what the gateway can do."""

    channel: grpc.aio.Channel | None = None
    stub: gw_grpc.GatewayAPIStub | None = None
    locks_supported: bool = True


class Cs3Storage:
    """Files in a CS3 namespace, reached through the gateway."""

    capabilities = Capabilities(
        user_credential=True, own_locks=True, shared_by_sites=True, reva_gateway=True
    )

    def __init__(
        self,
        name: str,
        config: Cs3Config,
        session: aiohttp.ClientSession,
        *,
        token: str | None = None,
        shared: _Shared | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._session = session
        self._token = token or config.token
        self._shared = shared or _Shared()

    def with_credential(self, credential: str | None) -> Cs3Storage:
        """A view of this storage acting with the user's Reva token."""
        if not credential or credential == self._token:
            return self
        return Cs3Storage(
            self.name, self.config, self._session, token=credential, shared=self._shared
        )

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WOPI locks for files of this storage: on the gateway, or ``fallback`` without."""
        return Cs3LockStore(self, fallback)

    async def start(self) -> None:
        log.info("storage %s: CS3 gateway %s", self.name, self.config.gateway)

    # -- gRPC --------------------------------------------------------------------------

    def _stub(self) -> gw_grpc.GatewayAPIStub:
        shared = self._shared
        if shared.stub is None:
            if self.config.tls:
                shared.channel = grpc.aio.secure_channel(
                    self.config.gateway, grpc.ssl_channel_credentials()
                )
            else:
                shared.channel = grpc.aio.insecure_channel(self.config.gateway)
            shared.stub = gw_grpc.GatewayAPIStub(shared.channel)
        return shared.stub

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        if not self._token:
            raise Unauthorized(f"The storage {self.name} needs the user's credential")
        return (("x-access-token", self._token),)

    def _down(self, detail: str = "") -> Unavailable:
        return Unavailable(f"The storage {self.name} is unavailable{detail}")

    async def _call(self, method: str, request: Any) -> Any:
        rpc = getattr(self._stub(), method)
        try:
            return await rpc(
                request, metadata=grpc_metadata(self._metadata()), timeout=self.config.timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise NotImplementedOperation(
                    f"The storage {self.name} does not implement {method}"
                ) from None
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthorized(
                    f"The storage {self.name} did not accept the credentials"
                ) from None
            raise self._down(f" ({exc.code().name})") from None

    def _error(self, status: Any, *, what: str) -> WopiError:
        value = status.code
        if value == code.CODE_NOT_FOUND:
            return NotFound("File not found")
        if value == code.CODE_PERMISSION_DENIED:
            return Forbidden(f"The storage {self.name} refused to {what} the file")
        if value == code.CODE_UNAUTHENTICATED:
            return Unauthorized(f"The storage {self.name} did not accept the credentials")
        if value in (code.CODE_FAILED_PRECONDITION, code.CODE_ABORTED):
            return VersionConflict("The file changed on the storage")
        if value == code.CODE_ALREADY_EXISTS:
            return FileExists("A file with that name already exists")
        if value == code.CODE_LOCKED:
            return Locked(f"The file is locked on the storage {self.name}")
        if value == code.CODE_INSUFFICIENT_STORAGE:
            return InsufficientStorage(f"The storage {self.name} is full")
        if value == code.CODE_UNIMPLEMENTED:
            return NotImplementedOperation(f"The storage {self.name} cannot {what} files")
        if value == code.CODE_INVALID_ARGUMENT:
            return BadRequest(f"The storage {self.name} refused the request")
        return self._down(f" ({code.Code.Name(value)})")

    async def _checked(self, method: str, request: Any, *, what: str) -> Any:
        response = await self._call(method, request)
        if response.status.code != code.CODE_OK:
            raise self._error(response.status, what=what)
        return response

    # -- references --------------------------------------------------------------------

    def _ref(self, file_id: str) -> spr.Reference:
        return spr.Reference(resource_id=decode_resource_id(file_id))

    def _path(self, relative: str) -> str:
        return posixpath.join(self.config.root, check_path(relative))

    def _make_stat(self, info: spr.ResourceInfo) -> FileStat:
        if info.type != spr.RESOURCE_TYPE_FILE:
            raise NotFound("File not found")
        path = info.path
        name = info.name or posixpath.basename(path)
        folder = posixpath.dirname(path)
        if folder.startswith(self.config.root):
            folder = folder[len(self.config.root) :]
        return FileStat(
            file_id=encode_resource_id(info.id),
            name=name,
            size=int(info.size),
            mtime_ns=info.mtime.seconds * 1_000_000_000 + info.mtime.nanos,
            version=info.etag.strip('"'),
            identity=f"{self.config.site}:{format_reva_id(info.id)}",
            owner_id=info.owner.opaque_id,
            folder=folder.strip("/"),
        )

    async def _stat_ref(self, ref: spr.Reference) -> spr.ResourceInfo:
        response = await self._checked("Stat", sp.StatRequest(ref=ref), what="read")
        return response.info

    # -- Storage -----------------------------------------------------------------------

    async def resolve(self, ref: str) -> FileStat:
        rid = parse_reva_id(ref)
        if rid is not None:
            return self._make_stat(await self._stat_ref(spr.Reference(resource_id=rid)))
        try:
            return await self.stat(ref)
        except NotFound:
            pass
        path = ref if ref.startswith("/") else self._path(ref)
        return self._make_stat(await self._stat_ref(spr.Reference(path=path)))

    async def stat(self, file_id: str) -> FileStat:
        return self._make_stat(await self._stat_ref(self._ref(file_id)))

    async def open_read(self, file_id: str) -> FileContent:
        ref = self._ref(file_id)
        for _ in range(3):
            info = await self._stat_ref(ref)
            stat = self._make_stat(info)
            response = await self._checked(
                "InitiateFileDownload", sp.InitiateFileDownloadRequest(ref=ref), what="read"
            )
            protocol = _pick(response.protocols)
            if protocol is None:
                raise self._down(" (no download endpoint)")
            http = await self._transfer("GET", protocol.download_endpoint, protocol.token, None)
            if http.status == 200 and _etag_matches(http, stat.version):
                return HttpFileContent(stat, http, self.name)
            http.release()
            if http.status not in (200, 412):
                raise self._http_error(http.status, what="read")
        raise Unavailable(f"The file keeps changing on the storage {self.name}")

    async def _transfer(
        self, method: str, url: str, transfer_token: str, data: Any
    ) -> aiohttp.ClientResponse:
        headers = {"x-access-token": self._token}
        if transfer_token:
            headers["X-Reva-Transfer"] = transfer_token
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.timeout, sock_read=self.config.timeout
        )
        try:
            return await self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=timeout,
                ssl=not self.config.insecure_data,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self._down(f" ({type(exc).__name__})") from None

    def _http_error(self, status: int, *, what: str) -> WopiError:
        if status == 404:
            return NotFound("File not found")
        if status in (401, 403):
            return Forbidden(f"The storage {self.name} refused to {what} the file")
        if status == 412:
            return VersionConflict("The file changed on the storage")
        if status == 423:
            return Locked(f"The file is locked on the storage {self.name}")
        if status == 507:
            return InsufficientStorage(f"The storage {self.name} is full")
        return self._down(f" (HTTP {status})")

    async def _current_lock_id(self, ref: spr.Reference) -> str:
        """Our own gateway lock on the file, to pass along with a write."""
        if not self._shared.locks_supported:
            return ""
        try:
            response = await self._call("GetLock", sp.GetLockRequest(ref=ref))
        except NotImplementedOperation:
            return ""
        if response.status.code != code.CODE_OK or response.lock.app_name != APP_NAME:
            return ""
        return str(response.lock.lock_id)

    async def _upload(
        self, ref: spr.Reference, chunks: AsyncIterable[bytes], **conditions: Any
    ) -> None:
        lock_id = await self._current_lock_id(ref) if ref.HasField("resource_id") else ""
        response = await self._checked(
            "InitiateFileUpload",
            sp.InitiateFileUploadRequest(ref=ref, lock_id=lock_id, **conditions),
            what="write",
        )
        protocol = _pick(response.protocols)
        if protocol is None:
            raise self._down(" (no upload endpoint)")

        async def body() -> AsyncIterator[bytes]:
            async for block in chunks:
                if block:
                    yield block

        http = await self._transfer("PUT", protocol.upload_endpoint, protocol.token, body())
        try:
            if http.status not in (200, 201, 204):
                if http.status == 412 and conditions.get("if_not_exist"):
                    raise FileExists("A file with that name already exists")
                raise self._http_error(http.status, what="write")
        finally:
            http.release()

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        ref = self._ref(file_id)
        info = await self._stat_ref(ref)
        if info.type != spr.RESOURCE_TYPE_FILE:
            raise NotFound("File not found")
        conditions = {"if_match": expected_version} if expected_version is not None else {}
        await self._upload(ref, chunks, **conditions)
        return await self.stat(file_id)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        info = await self._stat_ref(self._ref(sibling_of))
        path = posixpath.join(posixpath.dirname(info.path), check_name(name))
        ref = spr.Reference(path=path)
        await self._upload(ref, chunks, **({} if overwrite else {"if_not_exist": True}))
        return self._make_stat(await self._stat_ref(ref))

    async def find_sibling(self, file_id: str, name: str) -> FileStat | None:
        info = await self._stat_ref(self._ref(file_id))
        path = posixpath.join(posixpath.dirname(info.path), check_name(name))
        try:
            return self._make_stat(await self._stat_ref(spr.Reference(path=path)))
        except NotFound:
            return None

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        ref = self._ref(file_id)
        info = await self._stat_ref(ref)
        target = posixpath.join(posixpath.dirname(info.path), check_name(new_name))
        if target == info.path:
            return self._make_stat(info)
        try:
            await self._stat_ref(spr.Reference(path=target))
        except NotFound:
            pass
        else:
            raise FileExists(f"A file named {new_name} already exists")
        await self._checked(
            "Move",
            sp.MoveRequest(
                source=ref,
                destination=spr.Reference(path=target),
                lock_id=await self._current_lock_id(ref),
            ),
            what="rename",
        )
        return await self.stat(file_id)

    async def delete(self, file_id: str) -> None:
        ref = self._ref(file_id)
        self._make_stat(await self._stat_ref(ref))
        await self._checked(
            "Delete",
            sp.DeleteRequest(ref=ref, lock_id=await self._current_lock_id(ref)),
            what="delete",
        )

    async def get_meta(self, file_id: str, key: str) -> str | None:
        response = await self._checked(
            "Stat",
            sp.StatRequest(ref=self._ref(file_id), arbitrary_metadata_keys=[META_PREFIX + key]),
            what="read",
        )
        value = response.info.arbitrary_metadata.metadata.get(META_PREFIX + key)
        return None if value is None else value

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        ref = self._ref(file_id)
        meta = spr.ArbitraryMetadata(metadata={META_PREFIX + key: value})
        await self._checked(
            "SetArbitraryMetadata",
            sp.SetArbitraryMetadataRequest(
                ref=ref, arbitrary_metadata=meta, lock_id=await self._current_lock_id(ref)
            ),
            what="annotate",
        )

    async def check(self) -> None:
        """The gateway answers a Stat of the root: any CS3 status, or a refusal of the missing
        credential, means it is up."""
        stub = self._stub()
        try:
            await stub.Stat(
                sp.StatRequest(ref=spr.Reference(path=self.config.root)),
                metadata=grpc_metadata((("x-access-token", self._token),) if self._token else ()),
                timeout=min(self.config.timeout, 5.0),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return  # Reva's auth interceptor answered: the gateway is up
            raise self._down(f" ({exc.code().name})") from None

    async def close(self) -> None:
        shared = self._shared
        if shared.channel is not None:
            await shared.channel.close()
            shared.channel = None
            shared.stub = None


def _pick(protocols: Any) -> Any:
    for wanted in ("simple", "spaces"):
        for protocol in protocols:
            if protocol.protocol == wanted:
                return protocol
    return protocols[0] if len(protocols) else None


def _etag_matches(response: aiohttp.ClientResponse, version: str) -> bool:
    """A data server that sends an ETag must send the one we stat'ed (else it changed)."""
    etag = response.headers.get("ETag")
    return etag is None or etag.strip('"') == version


def _lock(lock_id: str, ttl: float) -> spr.Lock:
    return spr.Lock(
        lock_id=lock_id,
        type=spr.LOCK_TYPE_WRITE,
        app_name=APP_NAME,
        expiration=types.Timestamp(seconds=int(time.time() + ttl)),
    )


class Cs3LockStore:
    """WOPI locks kept on the CS3 gateway, for the files of one storage view.

    Keys that are not this storage's identities, and every key once the gateway has answered
    UNIMPLEMENTED, go to ``fallback`` (wopibridge's own lock store). Conflicts answer the lock
    the gateway reports, like every other lock store.
    """

    def __init__(self, storage: Cs3Storage, fallback: LockStore) -> None:
        self._storage = storage
        self._fallback = fallback
        self._prefix = storage.config.site + ":"

    def _ref(self, key: str) -> spr.Reference | None:
        if not self._storage._shared.locks_supported or not key.startswith(self._prefix):
            return None
        rid = parse_reva_id(key[len(self._prefix) :])
        return None if rid is None else spr.Reference(resource_id=rid)

    async def _try(self, method: str, request: Any) -> Any | None:
        """Call a lock method; ``None`` (and fall back from now on) when unimplemented."""
        try:
            response = await self._storage._call(method, request)
        except NotImplementedOperation:
            response = None
        if response is None or response.status.code == code.CODE_UNIMPLEMENTED:
            if self._storage._shared.locks_supported:
                log.info("storage %s has no CS3 locks; using wopibridge's", self._storage.name)
            self._storage._shared.locks_supported = False
            return None
        return response

    async def _current(self, ref: spr.Reference) -> str | None:
        response = await self._try("GetLock", sp.GetLockRequest(ref=ref))
        if response is None:
            return None
        if response.status.code == code.CODE_OK:
            return str(response.lock.lock_id)
        if response.status.code == code.CODE_NOT_FOUND:
            return ""
        raise self._storage._error(response.status, what="lock")

    async def lock(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        ref = self._ref(key)
        for _ in range(2):  # a lock released between SetLock and GetLock: try once more
            if ref is None:
                break
            request = sp.SetLockRequest(ref=ref, lock=_lock(lock_id, ttl))
            response = await self._try("SetLock", request)
            if response is None:
                break
            if response.status.code == code.CODE_OK:
                return LockResult(True, lock_id)
            current = await self._current(ref)
            if current is None:
                break
            if current == lock_id:
                return await self.refresh(key, lock_id, ttl)
            if current:
                return LockResult(False, current)
        else:
            return LockResult(False, "")
        return await self._fallback.lock(key, lock_id, ttl)

    async def unlock_and_relock(
        self, key: str, old_lock_id: str, new_lock_id: str, ttl: float = LOCK_TTL_SECONDS
    ) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            request = sp.RefreshLockRequest(
                ref=ref, lock=_lock(new_lock_id, ttl), existing_lock_id=old_lock_id
            )
            response = await self._try("RefreshLock", request)
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, new_lock_id)
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.unlock_and_relock(key, old_lock_id, new_lock_id, ttl)

    async def unlock(self, key: str, lock_id: str) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            response = await self._try("Unlock", sp.UnlockRequest(ref=ref, lock=_lock(lock_id, 0)))
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, "")
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.unlock(key, lock_id)

    async def refresh(self, key: str, lock_id: str, ttl: float = LOCK_TTL_SECONDS) -> LockResult:
        ref = self._ref(key)
        if ref is not None:
            response = await self._try(
                "RefreshLock", sp.RefreshLockRequest(ref=ref, lock=_lock(lock_id, ttl))
            )
            if response is not None:
                if response.status.code == code.CODE_OK:
                    return LockResult(True, lock_id)
                current = await self._current(ref)
                if current is not None:
                    return LockResult(False, current)
        return await self._fallback.refresh(key, lock_id, ttl)

    async def get(self, key: str) -> str:
        ref = self._ref(key)
        if ref is not None:
            current = await self._current(ref)
            if current is not None:
                return current
        return await self._fallback.get(key)

    async def ping(self) -> None:
        await self._fallback.ping()

    async def close(self) -> None:
        """The fallback belongs to the app and the channel to the storage."""
        return None


def build(name: str, table: Mapping[str, Any], session: aiohttp.ClientSession) -> Cs3Storage:
    return Cs3Storage(name, Cs3Config.from_table(name, table), session)
