"""Where a WebDAV storage keeps WOPI locks when the owner's server will not: said once at
start or on the first refusal, shown in ``/ready`` and on the status page, and the WOPI locks
still work (in the site's store)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from tests.mesh.conftest import DavServer, basic_auth
from tests.mesh.rawdav import RawDav
from tests.mesh.test_app_mesh import Client, make_app, openinapp, wopi_path
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.locks.ownerlocks import OwnerLockStore
from wopibridge.storage.webdav import WebDavConfig, WebDavStorage
from wopibridge.storage.webdav.locks import WebDavOwnerLocks
from wopibridge.storage.webdav.lockstate import DavLockState

REFUSED = "site lock store only (the server answered 405 to LOCK)"


async def _lock_twice(client, fileid: str, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    answer = await openinapp(client, fileid=fileid, endpoint=endpoint)
    path, token = wopi_path(answer), answer["form-parameters"]["access_token"]
    for lock_id in ("first", "first"):
        response = await client.post(
            path,
            params={"access_token": token},
            headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": lock_id},
        )
        assert response.status == 200, await response.text()
    other = await client.post(
        path,
        params={"access_token": token},
        headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "second"},
    )
    assert (other.status, other.headers["X-WOPI-Lock"]) == (409, "first")


async def test_a_server_refusing_lock_falls_back_and_says_so_once(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    raw = RawDav()
    await raw.start()
    try:
        table = {"type": "webdav", "url": raw.url, "retries": 1, "timeout": 5}
        client = await aiohttp_client(make_app(tmp_path, {"rude": table}))
        await _lock_twice(client, "doc.odt", "rude")
        ready = await (await client.get("/ready")).json()
        assert ready["owner_locks"] == {"rude": REFUSED}
        status_page = await (await client.get("/")).text()
        assert REFUSED in status_page
        said = [r for r in caplog.records if "WOPI locks are kept in the site" in r.getMessage()]
        assert len(said) == 1
    finally:
        await raw.stop()


async def test_locks_false_keeps_wopi_locks_off_the_server(
    tmp_path: Path, aiohttp_client: Client, dav_server: DavServer, dav_root: Path
) -> None:
    """``locks = false`` (here from the environment, as every key can be): no WebDAV lock is
    taken, ``/ready`` says why."""
    (dav_root / "doc.odt").write_bytes(b"v1")
    table = dav_server.table(url=f"{dav_server.url}/{dav_root.name}", locks="false")
    client = await aiohttp_client(make_app(tmp_path, {"dav": table}))
    await _lock_twice(client, "doc.odt", "dav")
    ready = await (await client.get("/ready")).json()
    assert ready["owner_locks"] == {"dav": "site lock store only (locks = false)"}
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{dav_server.url}/{dav_root.name}/doc.odt",
            data=b"desktop",
            headers={"Authorization": basic_auth()},
        ) as response,
    ):
        assert response.status in (201, 204)  # nothing locked at the server


async def test_owner_lock_store_keeps_the_site_lock_when_the_storage_has_none(
    http: aiohttp.ClientSession,
) -> None:
    """:class:`OwnerLockStore` over a storage that finds out at its first LOCK that it has
    no locks: the site's lock is granted and kept, not given back as refused."""
    raw = RawDav()
    await raw.start()
    try:
        storage = WebDavStorage("rude", WebDavConfig.from_table("rude", {"url": raw.url}), http)
        stat = await storage.resolve("doc.odt")
        state = DavLockState(MemoryLockStore(), "https://site.test")
        site_locks = MemoryLockStore()
        store = OwnerLockStore(site_locks, WebDavOwnerLocks(storage, state), state.tokens, "s")
        assert (await store.lock(stat.identity, "L")).ok
        assert not state.active and state.refused
        assert await site_locks.get(stat.identity) == "L"
        assert (await store.lock(stat.identity, "M")).current == "L"
        assert (await store.unlock(stat.identity, "L")).ok
    finally:
        await raw.stop()
