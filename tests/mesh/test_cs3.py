"""CS3 specifics beyond the contract: gateway locks and their fallback, credentials, outages.

Runs over real gRPC on loopback against the fake gateway of :mod:`tests.mesh.fakecs3`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.mesh.conftest import CS3_TOKEN, start_gateway
from tests.mesh.fakecs3 import RunningGateway
from tests.support.procs import free_port
from wopibridge.errors import Locked, Unauthorized, Unavailable
from wopibridge.storage.cs3 import Cs3Config, Cs3Storage, encode_resource_id, parse_reva_id


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


def cs3_storage(http: aiohttp.ClientSession, address: str, **table: object) -> Cs3Storage:
    config = Cs3Config.from_table("cernbox", {"gateway": address, "timeout": 3, **table})
    return Cs3Storage("cernbox", config, http)


@pytest.fixture
async def user_storage(
    cs3_gateway: RunningGateway, http: aiohttp.ClientSession
) -> AsyncIterator[Cs3Storage]:
    storage = cs3_storage(http, cs3_gateway.address)
    yield storage.with_credential(CS3_TOKEN)
    await storage.close()


def memory_store():  # type: ignore[no-untyped-def]
    memory = pytest.importorskip("wopibridge.locks.memory")
    return memory.MemoryLockStore()


async def test_locks_live_on_the_gateway(
    cs3_gateway: RunningGateway, user_storage: Cs3Storage
) -> None:
    (cs3_gateway.gateway.root / "doc.docx").write_bytes(b"v1")
    fallback = memory_store()
    stat = await user_storage.resolve("doc.docx")
    locks = user_storage.lock_store(fallback)

    assert (await locks.lock(stat.identity, "lock-A")).ok
    assert await fallback.get(stat.identity) == "", "not in wopibridge's own store"
    assert "SetLock" in cs3_gateway.gateway.calls
    conflict = await locks.lock(stat.identity, "lock-B")
    assert (conflict.ok, conflict.current) == (False, "lock-A")
    assert (await locks.lock(stat.identity, "lock-A")).ok, "same id refreshes"
    assert await locks.get(stat.identity) == "lock-A"

    # Our own lock travels with our writes; the gateway refuses writes without it.
    written = await user_storage.write(stat.file_id, chunks_of(b"v2"))
    assert written.size == 2

    relocked = await locks.unlock_and_relock(stat.identity, "lock-A", "lock-C")
    assert (relocked.ok, relocked.current) == (True, "lock-C")
    wrong = await locks.unlock(stat.identity, "lock-A")
    assert (wrong.ok, wrong.current) == (False, "lock-C")
    assert (await locks.refresh(stat.identity, "lock-C")).ok
    assert (await locks.unlock(stat.identity, "lock-C")).ok
    assert await locks.get(stat.identity) == ""


async def test_foreign_gateway_lock_blocks_writes(
    cs3_gateway: RunningGateway, user_storage: Cs3Storage
) -> None:
    import cs3.storage.provider.v1beta1.resources_pb2 as spr

    (cs3_gateway.gateway.root / "theirs.docx").write_bytes(b"theirs")
    stat = await user_storage.resolve("theirs.docx")
    rid = parse_reva_id(stat.identity.rsplit(":", 1)[-1])
    assert rid is not None
    cs3_gateway.gateway.held[rid.opaque_id] = spr.Lock(lock_id="desktop", app_name="sync")
    with pytest.raises(Locked):
        await user_storage.write(stat.file_id, chunks_of(b"ours"))
    with pytest.raises(Locked):
        await user_storage.delete(stat.file_id)
    assert (cs3_gateway.gateway.root / "theirs.docx").read_bytes() == b"theirs"
    locks = user_storage.lock_store(memory_store())
    conflict = await locks.lock(stat.identity, "wopi-lock")
    assert (conflict.ok, conflict.current) == (False, "desktop")


async def test_unimplemented_locks_fall_back(tmp_path, http: aiohttp.ClientSession) -> None:  # type: ignore[no-untyped-def]
    running = await start_gateway(tmp_path / "nolocks", locks=False)
    storage = cs3_storage(http, running.address)
    try:
        user = storage.with_credential(CS3_TOKEN)
        (running.gateway.root / "doc.docx").write_bytes(b"x")
        stat = await user.resolve("doc.docx")
        fallback = memory_store()
        locks = user.lock_store(fallback)
        assert (await locks.lock(stat.identity, "L1")).ok
        assert await fallback.get(stat.identity) == "L1"
        conflict = await locks.lock(stat.identity, "L2")
        assert (conflict.ok, conflict.current) == (False, "L1")
        # Remembered: later calls go straight to the fallback.
        calls = running.gateway.calls.count("SetLock")
        assert (await locks.unlock(stat.identity, "L1")).ok
        assert running.gateway.calls.count("SetLock") == calls
        assert "Unlock" not in running.gateway.calls
        await user.write(stat.file_id, chunks_of(b"written without gateway locks"))
    finally:
        await storage.close()
        await running.stop()


async def test_credentials(cs3_gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    (cs3_gateway.gateway.root / "doc.docx").write_bytes(b"x")
    storage = cs3_storage(http, cs3_gateway.address)
    try:
        with pytest.raises(Unauthorized):
            await storage.resolve("doc.docx")
        with pytest.raises(Unauthorized):
            await storage.with_credential("expired-token").resolve("doc.docx")
        stat = await storage.with_credential(CS3_TOKEN).resolve("doc.docx")
        # Reva's own id form, as openinapp passes it (endpoint + fileid).
        rid = stat.identity.rsplit(":", 1)[-1]
        again = await storage.with_credential(CS3_TOKEN).resolve(rid)
        assert again.file_id == stat.file_id
        service = cs3_storage(http, cs3_gateway.address, token=CS3_TOKEN)
        assert (await service.resolve("doc.docx")).file_id == stat.file_id
        await service.close()
    finally:
        await storage.close()


async def test_ids_survive_saves_and_moves(
    cs3_gateway: RunningGateway, user_storage: Cs3Storage
) -> None:
    (cs3_gateway.gateway.root / "a.docx").write_bytes(b"x")
    stat = await user_storage.resolve("a.docx")
    saved = await user_storage.write(stat.file_id, chunks_of(b"yy"))
    moved = await user_storage.rename(stat.file_id, "b.docx")
    assert stat.file_id == saved.file_id == moved.file_id
    assert stat.identity == moved.identity
    assert encode_resource_id(parse_reva_id(stat.identity.rsplit(":", 1)[-1])) == stat.file_id  # type: ignore[arg-type]


async def test_gateway_down_is_unavailable_and_named(
    tmp_path,
    http: aiohttp.ClientSession,  # type: ignore[no-untyped-def]
) -> None:
    storage = cs3_storage(http, f"127.0.0.1:{free_port()}", timeout=1)
    try:
        with pytest.raises(Unavailable, match="cernbox"):
            await storage.with_credential(CS3_TOKEN).resolve("doc.docx")
        with pytest.raises(Unavailable, match="cernbox"):
            await storage.check()
    finally:
        await storage.close()
    running = await start_gateway(tmp_path / "gw")
    storage = cs3_storage(http, running.address, timeout=1)
    try:
        user = storage.with_credential(CS3_TOKEN)
        (running.gateway.root / "doc.docx").write_bytes(b"before")
        stat = await user.resolve("doc.docx")
        await storage.check()
        await running.stop_grpc()
        with pytest.raises(Unavailable, match="cernbox"):
            await user.write(stat.file_id, chunks_of(b"after"))
        assert (running.gateway.root / "doc.docx").read_bytes() == b"before"
    finally:
        await storage.close()
        await running.stop()


def test_configuration_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"storages.reva.gateway"):
        Cs3Config.from_table("reva", {"gateway": "no-port"})
    with pytest.raises(ValueError, match=r"storages.reva.root"):
        Cs3Config.from_table("reva", {"gateway": "h:1", "root": "relative"})
    with pytest.raises(ValueError, match=r"storages.reva.bogus"):
        Cs3Config.from_table("reva", {"gateway": "h:1", "bogus": 1})
