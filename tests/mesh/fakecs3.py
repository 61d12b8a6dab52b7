"""A FAKE CS3 gateway for the tests: no Reva can be built here (see MESH.md).

It serves ``cs3.gateway.v1beta1.GatewayAPI`` with the same generated ``cs3apis`` stubs the
client uses, over real gRPC on loopback, with a local folder behind it, plus the HTTP data
endpoints that ``InitiateFileDownload``/``InitiateFileUpload`` hand out. It follows Reva's
contract as MESH.md describes it, and only the parts wopibridge calls:

* the user's token in the ``x-access-token`` gRPC metadata (and on the data transfers);
  unknown tokens get ``CODE_UNAUTHENTICATED``, tokens of readers get ``CODE_PERMISSION_DENIED``
  on every write;
* ``Stat`` by path (absolute, below ``/``) or by resource id; resource ids are random opaque ids
  kept in memory, so they survive content writes and moves, as Reva's do;
* ``InitiateFileDownload``/``InitiateFileUpload`` answer a ``simple`` protocol with a one-time
  transfer token that must come back in ``X-Reva-Transfer``; uploads honour ``if_match`` and
  ``if_not_exist`` (checked again when the upload commits) and land atomically (temporary file,
  rename); an upload cut short leaves the old content;
* ``Move``, ``Delete``, ``SetArbitraryMetadata`` and arbitrary metadata in ``Stat``;
* ``SetLock``/``GetLock``/``RefreshLock``/``Unlock`` when ``locks=True``; otherwise they answer
  UNIMPLEMENTED like a gateway whose storage driver has no locks. A lock held under another
  lock id makes writes answer ``CODE_LOCKED``.
* file versions as Reva's decomposed filesystem keeps them: every upload over an existing file
  keeps its previous content under the key ``<opaque id>.REV.<mtime ns>``;
  ``ListFileVersions`` lists them (key, size, mtime in seconds, etag);
  ``InitiateFileDownload`` of a ``Reference`` whose resource id's opaque id is a version key
  downloads that version (as ocdav's ``GET /meta/<id>/v/<key>`` does); ``RestoreFileVersion``
  (ref, key, lock_id) makes the version current and keeps the replaced content as a version.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import cs3.gateway.v1beta1.gateway_api_pb2 as gw
import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc
import cs3.gateway.v1beta1.resources_pb2 as gwr
import cs3.identity.user.v1beta1.resources_pb2 as users
import cs3.rpc.v1beta1.code_pb2 as code
import cs3.rpc.v1beta1.status_pb2 as status_pb
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr
import cs3.types.v1beta1.types_pb2 as types
import grpc
from aiohttp import web

from tests.support.procs import free_port

STORAGE_ID = "fake-storage"
SPACE_ID = "fake-space"


def _status(value: int, message: str = "") -> status_pb.Status:
    return status_pb.Status(code=value, message=message)


@dataclass
class _Transfer:
    path: Path
    user: str
    if_match: str = ""
    if_not_exist: bool = False
    lock_id: str = ""


@dataclass
class FakeGateway(gw_grpc.GatewayAPIServicer):
    root: Path
    tokens: dict[str, str]  # token -> user id
    readers: set[str] = field(default_factory=set)  # tokens that may only read
    locks: bool = True
    ids: dict[str, str] = field(default_factory=dict)  # opaque id -> relative path
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    held: dict[str, spr.Lock] = field(default_factory=dict)
    transfers: dict[str, _Transfer] = field(default_factory=dict)
    data_url: str = ""
    calls: list[str] = field(default_factory=list)
    #: The ``traceparent`` metadata of every call that carried one.
    traceparents: list[str] = field(default_factory=list)
    #: version key -> (opaque id of the file, the kept content)
    versions: dict[str, tuple[str, Path]] = field(default_factory=dict)

    @property
    def versions_root(self) -> Path:
        return self.root.parent / f"{self.root.name}.versions"

    def _keep_version(self, path: Path) -> None:
        """Keep the content at ``path`` (about to be replaced) as a version of its file."""
        if not path.is_file():
            return
        opaque = self._id_of(str(path.relative_to(self.root)))
        key = f"{opaque}.REV.{path.stat().st_mtime_ns}"
        kept = self.versions_root / opaque / key
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, kept)
        self.versions[key] = (opaque, kept)

    # -- helpers -----------------------------------------------------------------------

    def _user(self, context: grpc.aio.ServicerContext) -> str | None:
        metadata = dict(context.invocation_metadata() or ())
        if "traceparent" in metadata:
            self.traceparents.append(metadata["traceparent"])
        return self.tokens.get(metadata.get("x-access-token", ""))

    def _token(self, context: grpc.aio.ServicerContext) -> str:
        return dict(context.invocation_metadata() or ()).get("x-access-token", "")

    def _id_of(self, relative: str) -> str:
        for opaque, path in self.ids.items():
            if path == relative:
                return opaque
        opaque = secrets.token_hex(8)
        self.ids[opaque] = relative
        return opaque

    def _relative(self, ref: spr.Reference) -> str | None:
        if ref.HasField("resource_id") and ref.resource_id.opaque_id:
            return self.ids.get(ref.resource_id.opaque_id)
        path = ref.path
        if not path.startswith("/") or ".." in path.split("/"):
            return None
        return path.strip("/")

    def _etag(self, st: os.stat_result) -> str:
        return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"

    def _info(self, relative: str, keys: list[str]) -> spr.ResourceInfo | None:
        path = self.root / relative
        try:
            st = path.stat()
        except OSError:
            return None
        opaque = self._id_of(relative)
        meta = self.meta.get(opaque, {})
        kind = spr.RESOURCE_TYPE_CONTAINER if path.is_dir() else spr.RESOURCE_TYPE_FILE
        info = spr.ResourceInfo(
            type=kind,
            id=spr.ResourceId(storage_id=STORAGE_ID, space_id=SPACE_ID, opaque_id=opaque),
            etag=f'"{self._etag(st)}"',
            mtime=types.Timestamp(
                seconds=st.st_mtime_ns // 1_000_000_000, nanos=st.st_mtime_ns % 1_000_000_000
            ),
            path="/" + relative if relative else "/",
            size=st.st_size,
            owner=users.UserId(opaque_id="owner", idp="fake"),
            name=path.name,
            arbitrary_metadata=spr.ArbitraryMetadata(
                metadata={k: v for k, v in meta.items() if k in keys or "*" in keys}
            ),
        )
        lock = self._lock_of(opaque)
        if lock is not None:
            info.lock.CopyFrom(lock)
        return info

    def _lock_of(self, opaque: str) -> spr.Lock | None:
        lock = self.held.get(opaque)
        if lock is not None and lock.expiration.seconds and lock.expiration.seconds < time.time():
            del self.held[opaque]
            return None
        return lock

    def _write_denied(
        self, context: grpc.aio.ServicerContext, opaque: str | None, lock_id: str
    ) -> status_pb.Status | None:
        if self._user(context) is None:
            return _status(code.CODE_UNAUTHENTICATED, "bad token")
        if self._token(context) in self.readers:
            return _status(code.CODE_PERMISSION_DENIED, "read only")
        if opaque is not None:
            lock = self._lock_of(opaque)
            if lock is not None and lock.lock_id != lock_id:
                return _status(code.CODE_LOCKED, "locked")
        return None

    # -- metadata calls ----------------------------------------------------------------

    async def Stat(self, request: sp.StatRequest, context: grpc.aio.ServicerContext):
        self.calls.append("Stat")
        if self._user(context) is None:
            return sp.StatResponse(status=_status(code.CODE_UNAUTHENTICATED, "bad token"))
        relative = self._relative(request.ref)
        info = (
            None
            if relative is None
            else self._info(relative, list(request.arbitrary_metadata_keys))
        )
        if info is None:
            return sp.StatResponse(status=_status(code.CODE_NOT_FOUND, "not found"))
        return sp.StatResponse(status=_status(code.CODE_OK), info=info)

    async def InitiateFileDownload(self, request, context):
        self.calls.append("InitiateFileDownload")
        if self._user(context) is None:
            return gw.InitiateFileDownloadResponse(status=_status(code.CODE_UNAUTHENTICATED))
        version = self.versions.get(request.ref.resource_id.opaque_id)
        if version is not None:
            target = version[1]
        else:
            relative = self._relative(request.ref)
            if relative is None or not (self.root / relative).is_file():
                return gw.InitiateFileDownloadResponse(status=_status(code.CODE_NOT_FOUND))
            target = self.root / relative
        transfer = secrets.token_urlsafe(16)
        self.transfers[transfer] = _Transfer(target, self._token(context))
        protocol = gwr.FileDownloadProtocol(
            protocol="simple", download_endpoint=f"{self.data_url}/data/{transfer}", token=transfer
        )
        return gw.InitiateFileDownloadResponse(status=_status(code.CODE_OK), protocols=[protocol])

    async def InitiateFileUpload(self, request, context):
        self.calls.append("InitiateFileUpload")
        relative = self._relative(request.ref)
        if relative is None:
            return gw.InitiateFileUploadResponse(status=_status(code.CODE_NOT_FOUND))
        path = self.root / relative
        opaque = self._id_of(relative) if path.exists() else None
        denied = self._write_denied(context, opaque, request.lock_id)
        if denied is not None:
            return gw.InitiateFileUploadResponse(status=denied)
        if not path.parent.is_dir():
            return gw.InitiateFileUploadResponse(status=_status(code.CODE_NOT_FOUND))
        if request.if_not_exist and path.exists():
            return gw.InitiateFileUploadResponse(status=_status(code.CODE_ALREADY_EXISTS))
        if request.if_match and (
            not path.exists() or self._etag(path.stat()) != request.if_match.strip('"')
        ):
            return gw.InitiateFileUploadResponse(status=_status(code.CODE_ABORTED, "etag mismatch"))
        transfer = secrets.token_urlsafe(16)
        self.transfers[transfer] = _Transfer(
            path, self._token(context), request.if_match.strip('"'), request.if_not_exist
        )
        protocol = gwr.FileUploadProtocol(
            protocol="simple", upload_endpoint=f"{self.data_url}/data/{transfer}", token=transfer
        )
        return gw.InitiateFileUploadResponse(status=_status(code.CODE_OK), protocols=[protocol])

    async def Move(self, request, context):
        self.calls.append("Move")
        source = self._relative(request.source)
        target = self._relative(request.destination)
        if source is None or target is None or not (self.root / source).exists():
            return sp.MoveResponse(status=_status(code.CODE_NOT_FOUND))
        opaque = self._id_of(source)
        denied = self._write_denied(context, opaque, request.lock_id)
        if denied is not None:
            return sp.MoveResponse(status=denied)
        if (self.root / target).exists():
            return sp.MoveResponse(status=_status(code.CODE_ALREADY_EXISTS))
        os.rename(self.root / source, self.root / target)
        self.ids[opaque] = target
        return sp.MoveResponse(status=_status(code.CODE_OK))

    async def Delete(self, request, context):
        self.calls.append("Delete")
        relative = self._relative(request.ref)
        if relative is None or not (self.root / relative).is_file():
            return sp.DeleteResponse(status=_status(code.CODE_NOT_FOUND))
        opaque = self._id_of(relative)
        denied = self._write_denied(context, opaque, request.lock_id)
        if denied is not None:
            return sp.DeleteResponse(status=denied)
        (self.root / relative).unlink()
        self.ids.pop(opaque, None)
        self.meta.pop(opaque, None)
        return sp.DeleteResponse(status=_status(code.CODE_OK))

    async def SetArbitraryMetadata(self, request, context):
        self.calls.append("SetArbitraryMetadata")
        relative = self._relative(request.ref)
        if relative is None or not (self.root / relative).exists():
            return sp.SetArbitraryMetadataResponse(status=_status(code.CODE_NOT_FOUND))
        opaque = self._id_of(relative)
        denied = self._write_denied(context, opaque, request.lock_id)
        if denied is not None:
            return sp.SetArbitraryMetadataResponse(status=denied)
        self.meta.setdefault(opaque, {}).update(request.arbitrary_metadata.metadata)
        return sp.SetArbitraryMetadataResponse(status=_status(code.CODE_OK))

    # -- versions ----------------------------------------------------------------------

    async def ListFileVersions(self, request, context):
        self.calls.append("ListFileVersions")
        if self._user(context) is None:
            return sp.ListFileVersionsResponse(status=_status(code.CODE_UNAUTHENTICATED))
        relative = self._relative(request.ref)
        if relative is None or not (self.root / relative).is_file():
            return sp.ListFileVersionsResponse(status=_status(code.CODE_NOT_FOUND))
        opaque = self._id_of(relative)
        found = []
        for key, (owner, kept) in self.versions.items():
            if owner == opaque and kept.is_file():
                st = kept.stat()
                found.append(
                    spr.FileVersion(
                        key=key,
                        size=st.st_size,
                        mtime=st.st_mtime_ns // 1_000_000_000,
                        etag=f'"{self._etag(st)}"',
                    )
                )
        return sp.ListFileVersionsResponse(status=_status(code.CODE_OK), versions=found)

    async def RestoreFileVersion(self, request, context):
        self.calls.append("RestoreFileVersion")
        relative = self._relative(request.ref)
        if relative is None or not (self.root / relative).is_file():
            return sp.RestoreFileVersionResponse(status=_status(code.CODE_NOT_FOUND))
        opaque = self._id_of(relative)
        denied = self._write_denied(context, opaque, request.lock_id)
        if denied is not None:
            return sp.RestoreFileVersionResponse(status=denied)
        version = self.versions.get(request.key)
        if version is None or version[0] != opaque:
            return sp.RestoreFileVersionResponse(status=_status(code.CODE_NOT_FOUND))
        path = self.root / relative
        temp = path.with_name(f".~restore-{secrets.token_hex(6)}-{path.name}")
        temp.write_bytes(version[1].read_bytes())
        self._keep_version(path)
        os.replace(temp, path)
        return sp.RestoreFileVersionResponse(status=_status(code.CODE_OK))

    # -- locks -------------------------------------------------------------------------

    async def _lock_target(self, request, context) -> tuple[str | None, status_pb.Status | None]:
        if not self.locks:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "locks are not implemented")
        if self._user(context) is None:
            return None, _status(code.CODE_UNAUTHENTICATED)
        relative = self._relative(request.ref)
        if relative is None or not (self.root / relative).is_file():
            return None, _status(code.CODE_NOT_FOUND)
        return self._id_of(relative), None

    async def SetLock(self, request, context):
        self.calls.append("SetLock")
        opaque, error = await self._lock_target(request, context)
        if error is not None:
            return sp.SetLockResponse(status=error)
        if self._lock_of(opaque) is not None:
            return sp.SetLockResponse(status=_status(code.CODE_FAILED_PRECONDITION, "locked"))
        self.held[opaque] = request.lock
        return sp.SetLockResponse(status=_status(code.CODE_OK))

    async def GetLock(self, request, context):
        self.calls.append("GetLock")
        opaque, error = await self._lock_target(request, context)
        if error is not None:
            return sp.GetLockResponse(status=error)
        lock = self._lock_of(opaque)
        if lock is None:
            return sp.GetLockResponse(status=_status(code.CODE_NOT_FOUND, "no lock"))
        return sp.GetLockResponse(status=_status(code.CODE_OK), lock=lock)

    async def RefreshLock(self, request, context):
        self.calls.append("RefreshLock")
        opaque, error = await self._lock_target(request, context)
        if error is not None:
            return sp.RefreshLockResponse(status=error)
        lock = self._lock_of(opaque)
        expected = request.existing_lock_id or request.lock.lock_id
        if lock is None or lock.lock_id != expected:
            return sp.RefreshLockResponse(status=_status(code.CODE_FAILED_PRECONDITION))
        self.held[opaque] = request.lock
        return sp.RefreshLockResponse(status=_status(code.CODE_OK))

    async def Unlock(self, request, context):
        self.calls.append("Unlock")
        opaque, error = await self._lock_target(request, context)
        if error is not None:
            return sp.UnlockResponse(status=error)
        lock = self._lock_of(opaque)
        if lock is None or lock.lock_id != request.lock.lock_id:
            return sp.UnlockResponse(status=_status(code.CODE_FAILED_PRECONDITION))
        del self.held[opaque]
        return sp.UnlockResponse(status=_status(code.CODE_OK))

    # -- HTTP data endpoints -----------------------------------------------------------

    def _take(self, request: web.Request) -> _Transfer:
        transfer = self.transfers.pop(request.match_info["transfer"], None)
        if (
            transfer is None
            or request.headers.get("X-Reva-Transfer") != request.match_info["transfer"]
        ):
            raise web.HTTPForbidden(text="bad transfer token")
        if request.headers.get("x-access-token") != transfer.user:
            raise web.HTTPUnauthorized(text="bad access token")
        return transfer

    async def download(self, request: web.Request) -> web.StreamResponse:
        transfer = self._take(request)
        if not transfer.path.is_file():
            raise web.HTTPNotFound()
        with transfer.path.open("rb") as handle:
            st = os.fstat(handle.fileno())
            response = web.StreamResponse(headers={"ETag": f'"{self._etag(st)}"'})
            response.content_length = st.st_size
            await response.prepare(request)
            while block := await asyncio.to_thread(handle.read, 256 * 1024):
                await response.write(block)
            await response.write_eof()
        return response

    async def upload(self, request: web.Request) -> web.Response:
        transfer = self._take(request)
        path = transfer.path
        temp = path.with_name(f".~upload-{secrets.token_hex(6)}-{path.name}")
        try:
            with temp.open("wb") as handle:
                async for block in request.content.iter_chunked(256 * 1024):
                    await asyncio.to_thread(handle.write, block)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if transfer.if_not_exist and path.exists():
            temp.unlink()
            raise web.HTTPPreconditionFailed(text="exists")
        if transfer.if_match and (
            not path.exists() or self._etag(path.stat()) != transfer.if_match
        ):
            temp.unlink()
            raise web.HTTPPreconditionFailed(text="etag mismatch")
        self._keep_version(path)
        os.replace(temp, path)
        return web.Response(status=200)


class RunningGateway:
    """The fake gateway's gRPC server and its HTTP data server, started together."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.grpc_port = free_port()
        self.server: grpc.aio.Server | None = None
        self.runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/data/{transfer}", self.gateway.download)
        app.router.add_put("/data/{transfer}", self.gateway.upload)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        http_port = free_port()
        site = web.TCPSite(self.runner, "127.0.0.1", http_port)
        await site.start()
        self.gateway.data_url = f"http://127.0.0.1:{http_port}"
        await self.start_grpc()

    async def start_grpc(self) -> None:
        self.server = grpc.aio.server()
        gw_grpc.add_GatewayAPIServicer_to_server(self.gateway, self.server)
        self.server.add_insecure_port(self.address)
        await self.server.start()

    async def stop_grpc(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None

    async def stop(self) -> None:
        await self.stop_grpc()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
