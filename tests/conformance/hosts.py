"""Small WOPI hosts for testing the conformance runner itself.

``small_host`` is a deliberately tiny, *correct* host for one ``.wopitest`` file held in
memory: CheckFileInfo, GetFile, PutFile, the lock operations and PutUserInfo, with proof
verification against the keys it is given. It advertises no PutRelativeFile, rename or
delete, so those groups are skipped for it (wopibridge itself runs them).

``Faults`` switches on one wrong behaviour at a time, so the tests can show that the runner
notices: a host that ignores lock mismatches, one that keeps a stale version after a write,
one that does not check proofs, one that names the wrong lock in a conflict, one
whose CheckFileInfo breaks the schema.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from wopibridge.security.proof.http import HttpProofKeySource
from wopibridge.security.proof.signature import (
    ProofKeys,
    is_fresh,
    parse_timestamp,
    signed_bytes,
    verify_proof,
)

TOKEN = "small-host-token"
LOCK_TTL = 30 * 60


@dataclass(frozen=True)
class Faults:
    ignore_lock_mismatch: bool = False
    stale_version: bool = False
    skip_proof_check: bool = False
    wrong_lock_on_conflict: bool = False
    version_as_number: bool = False
    #: CheckFileInfo properties added as they are (e.g. a malformed LastModifiedTime).
    extra_info: tuple[tuple[str, str], ...] = ()


@dataclass
class FileState:
    name: str = "conformance.wopitest"
    content: bytes = b""
    version: int = 1
    lock: str = ""
    lock_expires: float = 0.0
    user_info: str = ""
    writes: list[int] = field(default_factory=list)

    def current_lock(self) -> str:
        if self.lock and self.lock_expires < time.monotonic():
            self.lock = ""
        return self.lock


HOST_FILE: web.AppKey[FileState] = web.AppKey("host_file", FileState)
HOST_FAULTS: web.AppKey[Faults] = web.AppKey("host_faults", Faults)
HOST_KEYS: web.AppKey[ProofKeys] = web.AppKey("host_keys", ProofKeys)
HOST_SOURCE: web.AppKey[HttpProofKeySource] = web.AppKey("host_source", HttpProofKeySource)


def _conflict(state: FileState, faults: Faults) -> web.Response:
    current = state.current_lock()
    if faults.wrong_lock_on_conflict:
        current = "not-the-lock"
    return web.Response(status=409, headers={"X-WOPI-Lock": current})


async def _host_keys(app: web.Application) -> ProofKeys | None:
    if HOST_SOURCE in app:
        attrs = await app[HOST_SOURCE].proof_keys("wopitest")
        return ProofKeys.from_attrs(attrs) if attrs is not None else None
    return app.get(HOST_KEYS)


async def _check_proof(request: web.Request) -> web.Response | None:
    keys = await _host_keys(request.app)
    if request.app[HOST_FAULTS].skip_proof_check or keys is None:
        return None
    proof = request.headers.get("X-WOPI-Proof", "")
    stamp = parse_timestamp(request.headers.get("X-WOPI-TimeStamp", ""))
    if not proof or stamp is None or not is_fresh(stamp):
        return web.Response(status=500, text="proof missing or stale")
    url = f"{request.scheme}://{request.host}{request.raw_path}"
    data = signed_bytes(request.query.get("access_token", ""), url, stamp)
    if verify_proof(keys, data, proof, request.headers.get("X-WOPI-ProofOld", "")) is None:
        return web.Response(status=500, text="proof does not verify")
    return None


def _version(state: FileState) -> str:
    return f"v{state.version}"


@web.middleware
async def _auth(request: web.Request, handler):  # type: ignore[no-untyped-def]
    token = request.query.get("access_token", "")
    if token != TOKEN:
        return web.Response(status=401, text="invalid token")
    if request.match_info.get("file_id") != "f1":
        return web.Response(status=404, text="unknown file")
    failed = await _check_proof(request)
    if failed is not None:
        return failed
    return await handler(request)


async def check_file_info(request: web.Request) -> web.Response:
    state = request.app[HOST_FILE]
    faults = request.app[HOST_FAULTS]
    info = {
        "BaseFileName": state.name,
        "OwnerId": "owner",
        "UserId": "user-1",
        "UserFriendlyName": "Test User",
        "Size": len(state.content),
        "Version": state.version if faults.version_as_number else _version(state),
        "SupportsLocks": True,
        "SupportsGetLock": True,
        "SupportsExtendedLockLength": True,
        "SupportsUpdate": True,
        "SupportsUserInfo": True,
        "UserCanWrite": True,
        "UserCanNotWriteRelative": True,
        "UserInfo": state.user_info,
    }
    info.update(dict(faults.extra_info))
    return web.json_response(info)


async def get_file(request: web.Request) -> web.Response:
    state = request.app[HOST_FILE]
    return web.Response(
        body=state.content,
        headers={"X-WOPI-ItemVersion": _version(state)},
        content_type="application/octet-stream",
    )


async def put_file(request: web.Request) -> web.Response:
    state = request.app[HOST_FILE]
    faults = request.app[HOST_FAULTS]
    lock = request.headers.get("X-WOPI-Lock", "")
    current = state.current_lock()
    if not faults.ignore_lock_mismatch:
        if current and lock != current:
            return _conflict(state, faults)
        if not current and state.content:
            return _conflict(state, faults)
    state.content = await request.read()
    if not faults.stale_version:
        state.version += 1
    return web.Response(headers={"X-WOPI-ItemVersion": _version(state)})


async def post_file(request: web.Request) -> web.Response:
    state = request.app[HOST_FILE]
    faults = request.app[HOST_FAULTS]
    override = request.headers.get("X-WOPI-Override", "")
    lock = request.headers.get("X-WOPI-Lock", "")
    old_lock = request.headers.get("X-WOPI-OldLock")
    current = state.current_lock()
    ok = web.Response(headers={"X-WOPI-ItemVersion": _version(state)})
    ignore = faults.ignore_lock_mismatch
    if override == "LOCK" and old_lock is not None:
        if current != old_lock and not ignore:
            return _conflict(state, faults)
        state.lock, state.lock_expires = lock, time.monotonic() + LOCK_TTL
        return ok
    if override == "LOCK":
        if current and current != lock and not ignore:
            return _conflict(state, faults)
        state.lock, state.lock_expires = lock, time.monotonic() + LOCK_TTL
        return ok
    if override in ("UNLOCK", "REFRESH_LOCK"):
        if current != lock and not ignore:
            return _conflict(state, faults)
        if override == "UNLOCK":
            state.lock = ""
        else:
            state.lock_expires = time.monotonic() + LOCK_TTL
        return ok
    if override == "GET_LOCK":
        return web.Response(headers={"X-WOPI-Lock": current})
    if override == "PUT_USER_INFO":
        state.user_info = (await request.read()).decode("utf-8", errors="replace")[:1024]
        return web.Response()
    return web.Response(status=501, text="not implemented")


def small_host(
    faults: Faults | None = None,
    keys: ProofKeys | None = None,
    discovery_url: str | None = None,
) -> web.Application:
    """The host; it trusts ``keys``, or the keys published at ``discovery_url``."""
    app = web.Application(middlewares=[_auth])
    app[HOST_FILE] = FileState()
    app[HOST_FAULTS] = faults or Faults()
    if keys is not None:
        app[HOST_KEYS] = keys
    if discovery_url is not None:

        async def discovery_ctx(app: web.Application):  # type: ignore[no-untyped-def]
            async with aiohttp.ClientSession() as session:
                apps = {"wopitest": {"discovery_url": discovery_url}}
                app[HOST_SOURCE] = HttpProofKeySource(session, apps)
                yield

        app.cleanup_ctx.append(discovery_ctx)
    app.router.add_get("/wopi/files/{file_id}", check_file_info)
    app.router.add_get("/wopi/files/{file_id}/contents", get_file)
    app.router.add_post("/wopi/files/{file_id}/contents", put_file)
    app.router.add_post("/wopi/files/{file_id}", post_file)
    return app
