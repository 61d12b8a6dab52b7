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

An upload that ends in a connection error is followed by one ``GetLock``: a lock held by someone
else there is the answer (``Locked``, as the data server would have said had its answer been
read), and ``Unavailable`` is kept for a storage that really did not answer.

Locks: :class:`Cs3LockStore` keeps WOPI locks on the gateway (``SetLock``/``GetLock``/
``RefreshLock``/``Unlock``) so that every client of the storage sees them. A gateway that answers
UNIMPLEMENTED is remembered, and the wrapper falls back to wopibridge's own lock store.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import AsyncIterable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import cs3.rpc.v1beta1.code_pb2 as code
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr

from wopibridge.errors import (
    FileExists,
    Locked,
    NotFound,
    NotImplementedOperation,
    Unavailable,
    WopiError,
)
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import Capabilities, FileContent, FileStat
from wopibridge.storage.cs3.client import GatewayClient, Shared
from wopibridge.storage.cs3.config import (
    APP_NAME,
    META_PREFIX,
    Cs3Config,
    decode_resource_id,
    encode_resource_id,
    format_reva_id,
    parse_reva_id,
)
from wopibridge.storage.cs3.locks import Cs3LockStore
from wopibridge.storage.cs3.versions import Cs3Versions
from wopibridge.storage.httpbody import HttpFileContent, Upload
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.remote import StreamsStagedFiles, http_status_error

log = logging.getLogger("wopibridge.storage.cs3")


class Cs3Storage(Cs3Versions, StreamsStagedFiles):
    """Files in a CS3 namespace, reached through the gateway."""

    capabilities = Capabilities(
        user_credential=True, own_locks=True, shared_by_sites=True, reva_gateway=True
    )
    versioned = replace(capabilities, versions=True)

    def __init__(
        self,
        name: str,
        config: Cs3Config,
        session: aiohttp.ClientSession,
        *,
        token: str | None = None,
        shared: Shared | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._session = session
        self.gateway = GatewayClient(name, config, token or config.token, shared or Shared())
        if config.versions:
            self.capabilities = self.versioned

    def with_credential(self, credential: str | None) -> Cs3Storage:
        """A view of this storage acting with the user's Reva token."""
        if not credential or credential == self.gateway.token:
            return self
        return Cs3Storage(
            self.name, self.config, self._session, token=credential, shared=self.gateway.shared
        )

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WOPI locks for files of this storage: on the gateway, or ``fallback`` without."""
        return Cs3LockStore(self.gateway, self.config.site, self.name, fallback)

    async def start(self) -> None:
        log.info("storage %s: CS3 gateway %s", self.name, self.config.gateway)

    # -- gRPC --------------------------------------------------------------------------

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
        response = await self.gateway.checked("Stat", sp.StatRequest(ref=ref), what="read")
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
            stat = self._make_stat(await self._stat_ref(ref))
            content = await self._download(ref, stat, pinned=True)
            if content is not None:
                return content
        raise Unavailable(f"The file keeps changing on the storage {self.name}")

    async def _download(
        self, ref: spr.Reference, stat: FileStat, *, pinned: bool = False
    ) -> FileContent | None:
        """The bytes at ``ref`` as ``stat`` describes them; ``None`` when ``pinned`` and the
        data server sent another state (its ETag is not ``stat``'s version)."""
        response = await self.gateway.checked(
            "InitiateFileDownload", sp.InitiateFileDownloadRequest(ref=ref), what="read"
        )
        protocol = _pick(response.protocols)
        if protocol is None:
            raise self.gateway.down(" (no download endpoint)")
        http = await self._transfer("GET", protocol.download_endpoint, protocol.token)
        if http.status == 200 and (not pinned or _etag_matches(http, stat.version)):
            return HttpFileContent(stat, http, self.name)
        http.release()
        if http.status not in (200, 412):
            raise self._http_error(http.status, what="read")
        return None

    async def _transfer(
        self, method: str, url: str, transfer_token: str, upload: Upload | None = None
    ) -> aiohttp.ClientResponse:
        headers = {"x-access-token": self.gateway.token}
        if transfer_token:
            headers["X-Reva-Transfer"] = transfer_token
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.timeout, sock_read=self.config.timeout
        )
        sending = self._session.request(
            method,
            url,
            headers=headers,
            data=upload.body() if upload is not None else None,
            timeout=timeout,
            ssl=not self.config.insecure_data,
        )
        try:
            if upload is not None:
                return await upload.guard(sending, self.config.timeout)
            return await sending
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.gateway.down(f" ({type(exc).__name__})") from None

    def _http_error(self, status: int, *, what: str) -> WopiError:
        # a 401 of the data server reads as its 403: the storage refused
        known = http_status_error(self.name, 403 if status == 401 else status, what)
        return known or self.gateway.down(f" (HTTP {status})")

    async def _current_lock_id(self, ref: spr.Reference) -> str:
        """Our own gateway lock on the file, to pass along with a write."""
        if not self.gateway.shared.locks_supported:
            return ""
        try:
            response = await self.gateway.call("GetLock", sp.GetLockRequest(ref=ref))
        except NotImplementedOperation:
            return ""
        if response.status.code != code.CODE_OK or response.lock.app_name != APP_NAME:
            return ""
        return str(response.lock.lock_id)

    async def _locked_by_other(self, ref: spr.Reference, ours: str) -> bool:
        """Whether the gateway holds a lock on the file other than ``ours`` (after an upload
        broke off; a gateway that does not answer either is no evidence of a lock)."""
        if not self.gateway.shared.locks_supported:
            return False
        try:
            response = await self.gateway.call("GetLock", sp.GetLockRequest(ref=ref))
        except WopiError:
            return False
        return (
            response.status.code == code.CODE_OK
            and bool(response.lock.lock_id)
            and (response.lock.lock_id != ours)
        )

    async def _upload(
        self, ref: spr.Reference, chunks: AsyncIterable[bytes], **conditions: Any
    ) -> None:
        lock_id = await self._current_lock_id(ref) if ref.HasField("resource_id") else ""
        response = await self.gateway.checked(
            "InitiateFileUpload",
            sp.InitiateFileUploadRequest(ref=ref, lock_id=lock_id, **conditions),
            what="write",
        )
        protocol = _pick(response.protocols)
        if protocol is None:
            raise self.gateway.down(" (no upload endpoint)")

        try:
            http = await self._transfer(
                "PUT", protocol.upload_endpoint, protocol.token, Upload(chunks)
            )
        except Unavailable:
            if ref.HasField("resource_id") and await self._locked_by_other(ref, lock_id):
                raise Locked(f"The file is locked on the storage {self.name}") from None
            raise
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

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        """``folder`` is a path in the gateway's namespace (``/home/...``; relative paths are
        taken from ``/``)."""
        parent = "/" + folder.strip("/") if folder else "/"
        ref = spr.Reference(path=posixpath.join(parent, check_name(name)))
        await self._upload(ref, chunks, if_not_exist=True)
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
        await self.gateway.checked(
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
        await self.gateway.checked(
            "Delete",
            sp.DeleteRequest(ref=ref, lock_id=await self._current_lock_id(ref)),
            what="delete",
        )

    async def get_meta(self, file_id: str, key: str) -> str | None:
        response = await self.gateway.checked(
            "Stat",
            sp.StatRequest(ref=self._ref(file_id), arbitrary_metadata_keys=[META_PREFIX + key]),
            what="read",
        )
        value = response.info.arbitrary_metadata.metadata.get(META_PREFIX + key)
        return None if value is None else value

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        ref = self._ref(file_id)
        meta = spr.ArbitraryMetadata(metadata={META_PREFIX + key: value})
        await self.gateway.checked(
            "SetArbitraryMetadata",
            sp.SetArbitraryMetadataRequest(
                ref=ref, arbitrary_metadata=meta, lock_id=await self._current_lock_id(ref)
            ),
            what="annotate",
        )

    async def check(self) -> None:
        await self.gateway.probe()

    async def lock_file_ids(self) -> list[str]:
        return []  # see Storage.lock_file_ids: no walk over the network

    async def close(self) -> None:
        await self.gateway.close()


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


def build(name: str, table: Mapping[str, Any], session: aiohttp.ClientSession) -> Cs3Storage:
    return Cs3Storage(name, Cs3Config.from_table(name, table), session)
