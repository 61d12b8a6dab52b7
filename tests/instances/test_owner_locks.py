"""Sites that share nothing agree through the owner's WebDAV server: a WOPI lock is a WebDAV lock.

On each of two real WebDAV servers started here (wsgidav with its lock manager, and Debian's
Apache 2.4 with ``mod_dav_fs`` and ``DavLockDB``), site B runs two ``wopibridge serve``
instances on one redis-server, site A one instance on its own redis-server, and a plain WebDAV
client (aiohttp with Basic auth) plays the desktop client and the server's administrator.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mesh.apachedav import ApacheDav
from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer, basic_auth
from tests.support.fleet import Fleet, one_winner_across_sites, open_on, wopi
from tests.support.procs import RedisServer, wait_for_port

SITE_A, SITE_B = "https://a.example.test", "https://b.example.test"
OWNER = "owner-site"
DESKTOP_LOCK = (
    '<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
    "</d:lockscope><d:locktype><d:write/></d:locktype><d:owner>Desktop Dora</d:owner>"
    "</d:lockinfo>"
)
DISCOVERY = '<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/></d:prop></d:propfind>'


@dataclass
class World:
    kind: str
    root: Path
    dav_url: str
    site_b: Fleet
    site_a: Fleet

    def url(self, name: str) -> str:
        return f"{self.dav_url}/{name}"


def _start(fleet: Fleet) -> None:
    for server in fleet.servers:
        server.start(wait=False)
    for server in fleet.servers:
        wait_for_port(server.port, timeout=30)


@pytest.fixture(scope="module", params=["wsgidav", "apache"])
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
) -> Iterator[World]:
    kind = request.param
    base = tmp_path_factory.mktemp(f"owner-{kind}")
    root = base / "share"
    root.mkdir()
    server: DavServer | ApacheDav
    server = DavServer(root) if kind == "wsgidav" else ApacheDav(root, DAV_USER, DAV_PASSWORD)
    server.start()
    redis_a = RedisServer(base)
    redis_a.start()
    table = server.table(site=OWNER)
    site_b = Fleet(
        base / "b",
        redis_server.url,
        size=2,
        server={"public_url": SITE_B},
        **{"storages.dav": table},
    )
    site_a = Fleet(
        base / "a", redis_a.url, size=1, server={"public_url": SITE_A}, **{"storages.dav": table}
    )
    try:
        _start(site_b)
        _start(site_a)
        yield World(kind, root, server.url, site_b, site_a)
        logs = site_b.logs() + site_a.logs()
        assert "Traceback" not in logs, logs
    finally:
        if isinstance(server, ApacheDav):
            print(server.error_log()[-4000:])  # shown with a failure
        site_b.stop()
        site_a.stop()
        redis_a.stop()
        server.stop()


async def plain(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": basic_auth(), **kwargs.pop("headers", {})}
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


async def discovered(http: aiohttp.ClientSession, url: str) -> str:
    status, _, body = await plain(http, "PROPFIND", url, data=DISCOVERY, headers={"Depth": "0"})
    assert status == 207, body
    return body.decode()


def _timeouts(xml: str) -> list[str]:
    return re.findall(r"<(?:\w+:)?timeout>([^<]*)</", xml, re.I)


def _tokens(xml: str) -> list[str]:
    return re.findall(r"(opaquelocktoken:[^<\s]+)", xml)


async def _open(
    http: aiohttp.ClientSession, fleet: Fleet, index: int, name: str
) -> tuple[str, str, dict[str, Any]]:
    return await open_on(http, fleet, index, name, endpoint="dav")


async def test_b_holds_the_lock_at_the_owner(world: World) -> None:
    """The plain PUT is refused while B edits; A can neither lock nor save over it; B's other
    instance saves, refreshes and relocks; Unlock anywhere at B frees it within a second."""
    name = "plan.docx"
    (world.root / name).write_bytes(b"v1")
    b, a = world.site_b, world.site_a
    async with aiohttp.ClientSession() as http:
        src, token, _ = await _open(http, b, 0, name)
        a_src, a_token, _ = await _open(http, a, 0, name)  # A's user opens it for editing too
        status, _, _ = await wopi(http, b.url_on(src, 0), token, "LOCK", {"X-WOPI-Lock": "L1"})
        assert status == 200

        status, _, _ = await plain(http, "PUT", world.url(name), data=b"desktop")
        assert status == 423
        assert (world.root / name).read_bytes() == b"v1"
        xml = await discovered(http, world.url(name))
        [timeout] = _timeouts(xml)
        assert timeout.lower().startswith("second-") and 0 < int(timeout[7:]) <= 3600, timeout
        assert "L1" in xml and SITE_B.split("//")[1] in xml  # the owner names site and lock

        # site A, with its own Redis: read-only at open, no lock, no save over B's session
        _, _, answer = await _open(http, a, 0, name)
        assert "at https://b.example.test" in answer.get("forced-viewmode-reason", ""), answer
        for lock in ("A1", "L1"):
            status, headers, _ = await wopi(
                http, a.url_on(a_src, 0), a_token, "LOCK", {"X-WOPI-Lock": lock}
            )
            assert (status, headers.get("X-WOPI-Lock")) == (409, "L1"), "B's lock, named"
        status, _, _ = await wopi(
            http, a.url_on(a_src, 0), a_token, "PUT", {"X-WOPI-Lock": "L1"}, b"from A", True
        )
        assert status in (409, 423)
        assert (world.root / name).read_bytes() == b"v1"

        # B's other instance saves with B's lock; refresh and relock through either
        status, _, body = await wopi(
            http, b.url_on(src, 1), token, "PUT", {"X-WOPI-Lock": "L1"}, b"v2", True
        )
        assert status == 200, body
        assert (world.root / name).read_bytes() == b"v2"
        assert (await wopi(http, b.url_on(src, 1), token, "REFRESH_LOCK", {"X-WOPI-Lock": "L1"}))[
            0
        ] == 200
        status, _, _ = await wopi(
            http, b.url_on(src, 0), token, "LOCK", {"X-WOPI-Lock": "L2", "X-WOPI-OldLock": "L1"}
        )
        assert status == 200
        assert (await wopi(http, b.url_on(src, 1), token, "REFRESH_LOCK", {"X-WOPI-Lock": "L2"}))[
            0
        ] == 200
        assert _tokens(await discovered(http, world.url(name)))
        assert (await plain(http, "PUT", world.url(name), data=b"desktop"))[0] == 423
        status, _, body = await wopi(
            http, b.url_on(src, 0), token, "PUT", {"X-WOPI-Lock": "L2"}, b"v3", True
        )
        assert status == 200, body

        status, _, _ = await wopi(http, b.url_on(src, 1), token, "UNLOCK", {"X-WOPI-Lock": "L2"})
        assert status == 200
        started = time.monotonic()
        while _tokens(await discovered(http, world.url(name))):
            assert time.monotonic() - started < 1.0, "the WebDAV lock outlived Unlock"
            await asyncio.sleep(0.05)
        status, _, _ = await plain(http, "PUT", world.url(name), data=b"desktop")
        assert status in (200, 201, 204)
        assert (world.root / name).read_bytes() == b"desktop"


async def test_lock_broken_at_the_server_keeps_the_save(world: World) -> None:
    """An administrator breaks the WebDAV lock mid-session: the next save is refused as a lost
    lock (409, ``X-WOPI-Lock`` empty) and its body is kept as a conflict copy, never written."""
    name = "broken.docx"
    (world.root / name).write_bytes(b"v1")
    b = world.site_b
    async with aiohttp.ClientSession() as http:
        src, token, _ = await _open(http, b, 0, name)
        assert (await wopi(http, b.url_on(src, 0), token, "LOCK", {"X-WOPI-Lock": "K"}))[0] == 200
        [lock_token] = _tokens(await discovered(http, world.url(name)))
        status, _, _ = await plain(
            http, "UNLOCK", world.url(name), headers={"Lock-Token": f"<{lock_token}>"}
        )
        assert status in (200, 204)
        status, headers, body = await wopi(
            http, b.url_on(src, 1), token, "PUT", {"X-WOPI-Lock": "K"}, b"the editor's work", True
        )
        assert status == 409, body
        assert headers.get("X-WOPI-Lock") == ""
        assert (world.root / name).read_bytes() == b"v1"
        kept = [p for p in world.root.iterdir() if "(conflict " in p.name and "broken" in p.name]
        assert [p.read_bytes() for p in kept] == [b"the editor's work"]
        # the editor's next RefreshLock takes the owner's lock again; saves land again
        status, _, _ = await wopi(
            http, b.url_on(src, 0), token, "REFRESH_LOCK", {"X-WOPI-Lock": "K"}
        )
        assert status == 200
        status, _, body = await wopi(
            http, b.url_on(src, 1), token, "PUT", {"X-WOPI-Lock": "K"}, b"v2", True
        )
        assert status == 200, body
        assert (await wopi(http, b.url_on(src, 0), token, "UNLOCK", {"X-WOPI-Lock": "K"}))[0] == 200


async def test_a_desktop_lock_opens_read_only_and_refuses_lock(world: World) -> None:
    name = "desk.docx"
    (world.root / name).write_bytes(b"v1")
    b = world.site_b
    async with aiohttp.ClientSession() as http:
        src, token, _ = await _open(http, b, 0, name)  # opened for editing before the lock
        status, headers, body = await plain(
            http,
            "LOCK",
            world.url(name),
            data=DESKTOP_LOCK,
            headers={"Timeout": "Second-600", "Depth": "0", "Content-Type": "application/xml"},
        )
        assert status == 200, body
        desktop_token = headers["Lock-Token"]
        _, _, answer = await _open(http, b, 1, name)
        assert "Desktop Dora" in answer.get("forced-viewmode-reason", ""), answer
        status, headers, _ = await wopi(http, b.url_on(src, 1), token, "LOCK", {"X-WOPI-Lock": "W"})
        assert status == 409
        assert headers.get("X-WOPI-Lock") == ""
        assert headers.get("X-WOPI-LockFailureReason")
        await plain(http, "UNLOCK", world.url(name), headers={"Lock-Token": desktop_token})


async def test_two_sites_thirty_clients_each_one_winner_per_round(world: World) -> None:
    name = "race.docx"
    (world.root / name).write_bytes(b"v1")
    b, a = world.site_b, world.site_a
    async with aiohttp.ClientSession() as http:
        b_src, b_token, _ = await _open(http, b, 0, name)
        a_src, a_token, _ = await _open(http, a, 0, name)
        sites = [(b, b_src, b_token), (a, a_src, a_token)]
        await one_winner_across_sites(http, sites, rounds=20, clients=60)
        assert not _tokens(await discovered(http, world.url(name)))


async def test_ready_names_the_owner_locks(world: World) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{world.site_a[0].url}/ready") as r:
        body = json.loads(await r.text())
    assert body["owner_locks"] == {"dav": "WebDAV LOCK at the owner"}
