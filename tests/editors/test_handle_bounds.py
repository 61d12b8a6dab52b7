"""Short-token handles are bounded by what is live: one per token handed out, none per call,
no set shared by a file's users, and nothing left once the tokens have expired.

A real ``redis-server`` holds the handles; the editors are the fakes of ``fakes.py``. Every
count below is read from Redis itself (``SCAN``), not from wopibridge.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.procs import RedisServer
from wopibridge.security.handles import MemoryHandleStore
from wopibridge.security.keys import TOKENS

from .conftest import IOP, app_tables, start
from .fakes import FakeCollabora
from .test_short_tokens import post_open

PATTERN = "wopibridge:{handles}:*"


async def handle_keys(url: str) -> dict[str, int]:
    """Every key of the token store, with its time to live."""
    client = aioredis.Redis.from_url(url)
    try:
        found = [key.decode() async for key in client.scan_iter(match=PATTERN, count=1000)]
        return {key: await client.ttl(key) for key in found}
    finally:
        await client.aclose()


async def openinapp(
    http: aiohttp.ClientSession, base: str, name: str, user: str
) -> tuple[str, str]:
    """openinapp without ``appurl``: the configured app's discovery gives the editor URL."""
    query = {
        "fileid": name,
        "viewmode": "VIEW_MODE_READ_WRITE",
        "userid": user,
        "username": user,
        "appname": "collabora",
    }
    async with http.get(
        f"{base}/wopi/iop/openinapp", params=query, headers={"Authorization": f"Bearer {IOP}"}
    ) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
    return str(body["app-url"]), str(body["form-parameters"]["access_token"])


TTL = 4


@pytest.fixture
async def site(tmp_path, aiohttp_server, signed_editors):
    """One wopibridge with short tokens of ``TTL`` seconds in a real redis-server."""
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    try:
        body = (
            f'short_tokens = true\ntoken_ttl = {TTL}\n\n[locks]\nurl = "{redis_server.url}"\n'
            + app_tables(signed_editors)
        )
        base, _ = await start(aiohttp_server, tmp_path / "site", body)
        async with aiohttp.ClientSession() as http:
            yield base, tmp_path / "site" / "data", redis_server.url, http
    finally:
        redis_server.stop()


async def test_template_source_keeps_one_handle_per_token(site, signer):
    base, _, url, http = site
    # a new Collabora document: its CheckFileInfo names a TemplateSource each time
    opened = await post_open(http, base, mode="new", name="New.odt", app="collabora")
    editor = FakeCollabora(
        http, opened["app_url"], opened["form_parameters"]["access_token"], signer
    )
    sources = {(await editor.check_file_info())["TemplateSource"] for _ in range(300)}
    assert len(sources) == 1, "one template handle per edit token, not one per call"
    stored = await handle_keys(url)
    assert len(stored) == 2, stored  # the edit token's handle and its template's
    async with http.get(sources.pop()) as answer:
        assert answer.status == 200  # and it works


async def test_openinapp_shared_file_and_expiry_leave_nothing_behind(site, signer):
    base, data, url, http = site
    # openinapp without appurl: one handle per open, for ten users of one file
    (data / "shared.odt").write_bytes(b"s")
    opens = [await openinapp(http, base, "shared.odt", f"user{i}") for i in range(10)]
    stored = await handle_keys(url)
    assert len(stored) == 10, stored
    assert all(":handle:" in key for key in stored), "no set shared by the users"
    assert all(0 < ttl <= TTL for ttl in stored.values()), stored
    # delete revokes every one of them, with one mark that expires too
    first = FakeCollabora(http, opens[0][0], opens[0][1], signer)
    assert (await first.override("DELETE")).status == 200
    for app_url, token in opens:
        answer = await FakeCollabora(http, app_url, token, signer).call("GET")
        assert answer.status == 401
    stored = await handle_keys(url)
    marks = [key for key in stored if ":revoked:" in key]
    assert len(marks) == 1 and 0 < stored[marks[0]] <= TTL, stored
    # a file of the same name made again gets a new id, and its opens work
    (data / "shared.odt").write_bytes(b"t")
    app_url, token = await openinapp(http, base, "shared.odt", "user0")
    assert (await FakeCollabora(http, app_url, token, signer).get_file()) == b"t"
    # once the tokens have expired, nothing is left
    await asyncio.sleep(TTL + 0.5)
    assert await handle_keys(url) == {}


async def test_memory_handles_stay_two_per_new_document(
    tmp_path, aiohttp_server, signed_editors, signer
):
    """In process (``memory://``): a thousand CheckFileInfo calls of a new document keep two
    handles, and deleting it adds one revocation mark."""
    base, app = await start(
        aiohttp_server, tmp_path / "one", "short_tokens = true\n" + app_tables(signed_editors)
    )
    store = app[TOKENS].handles
    assert isinstance(store, MemoryHandleStore)
    async with aiohttp.ClientSession() as http:
        opened = await post_open(http, base, mode="new", name="Memo.odt", app="collabora")
        editor = FakeCollabora(
            http, opened["app_url"], opened["form_parameters"]["access_token"], signer
        )
        for _ in range(1000):
            await editor.check_file_info()
        assert len(store) == 2
        assert (await editor.override("DELETE")).status == 200
        assert len(store) == 3
        assert (await editor.call("GET")).status == 401


async def test_memory_store_drops_what_expired():
    now = [1000.0]
    store = MemoryHandleStore(clock=lambda: now[0])
    for number in range(1000):
        await store.put(f"wbh{number}", "jwt", 60)
    await store.revoke_file("local.a", 60)
    now[0] += 61
    for number in range(30):  # the store doubles past its sweep mark: the expired go
        await store.put(f"wbh-new{number}", "jwt", 60)
    assert len(store) == 30
    assert await store.revoked_at("local.a") == 0
