"""The gRPC side of the CS3 storage: one channel to the gateway shared by every per-user view,
calls with the user's token in the metadata, and CS3 status codes mapped to WOPI errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc
import cs3.rpc.v1beta1.code_pb2 as code
import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr
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
from wopibridge.storage.cs3.config import Cs3Config
from wopibridge.storage.propagation import grpc_metadata


@dataclass(slots=True)
class Shared:
    """What every view of one storage shares: the channel, the stub, what the gateway can do."""

    channel: grpc.aio.Channel | None = None
    stub: gw_grpc.GatewayAPIStub | None = None
    locks_supported: bool = True


class GatewayClient:
    """Calls to the CS3 gateway as one identity (the user's Reva token, or a service token)."""

    def __init__(self, name: str, config: Cs3Config, token: str, shared: Shared) -> None:
        self.name = name
        self.config = config
        self.token = token
        self.shared = shared

    def stub(self) -> gw_grpc.GatewayAPIStub:
        shared = self.shared
        if shared.stub is None:
            if self.config.tls:
                shared.channel = grpc.aio.secure_channel(
                    self.config.gateway, grpc.ssl_channel_credentials()
                )
            else:
                shared.channel = grpc.aio.insecure_channel(self.config.gateway)
            shared.stub = gw_grpc.GatewayAPIStub(shared.channel)
        return shared.stub

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if not self.token:
            raise Unauthorized(f"The storage {self.name} needs the user's credential")
        return (("x-access-token", self.token),)

    def down(self, detail: str = "") -> Unavailable:
        return Unavailable(f"The storage {self.name} is unavailable{detail}")

    async def call(self, method: str, request: Any) -> Any:
        rpc = getattr(self.stub(), method)
        try:
            return await rpc(
                request, metadata=grpc_metadata(self.metadata()), timeout=self.config.timeout
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
            raise self.down(f" ({exc.code().name})") from None

    def error(self, status: Any, *, what: str) -> WopiError:
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
        return self.down(f" ({code.Code.Name(value)})")

    async def checked(self, method: str, request: Any, *, what: str) -> Any:
        response = await self.call(method, request)
        if response.status.code != code.CODE_OK:
            raise self.error(response.status, what=what)
        return response

    async def probe(self) -> None:
        """The gateway answers a Stat of the root: any CS3 status, or a refusal of the missing
        credential, means it is up."""
        try:
            await self.stub().Stat(
                sp.StatRequest(ref=spr.Reference(path=self.config.root)),
                metadata=grpc_metadata((("x-access-token", self.token),) if self.token else ()),
                timeout=min(self.config.timeout, 5.0),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return  # Reva's auth interceptor answered: the gateway is up
            raise self.down(f" ({exc.code().name})") from None

    async def close(self) -> None:
        shared = self.shared
        if shared.channel is not None:
            await shared.channel.close()
            shared.channel = None
            shared.stub = None
