"""The discovery cache over HTTP: refresh interval, on-demand refresh, unreachable editors,
and the proof-key source protocol, against the fixture documents served by a test server."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest

from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.errors import Unavailable
from wopibridge.security.proof.source import ProofKeySource

from .conftest import fixture_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as http:
        yield http


async def test_fetch_once_then_serve_from_cache_until_the_interval(discovery_server, session):
    clock = Clock()
    cache = DiscoveryCache(session, {"Collabora": discovery_server.url("collabora")}, clock=clock)
    cache.refresh_interval = 100
    cache.add("collabora", discovery_server.url("collabora"), 100)
    doc = await cache.get("collabora")
    assert doc.find("odt", "edit") is not None
    await cache.get("COLLABORA")
    assert discovery_server.hits["collabora"] == 1
    clock.now += 101
    await cache.get("collabora")
    assert discovery_server.hits["collabora"] == 2
    assert cache.status() == {"collabora": "ok"}
    # on demand: a forced refresh fetches at once, whatever the interval
    await cache.get("collabora", force=True)
    assert discovery_server.hits["collabora"] == 3


async def test_unreachable_at_start_is_not_fatal_and_recovers(discovery_server, session):
    clock = Clock()
    discovery_server.failing.add("onlyoffice")
    cache = DiscoveryCache(
        session, {"onlyoffice": discovery_server.url("onlyoffice")}, retry_interval=30, clock=clock
    )
    await cache.refresh_all()
    assert cache.status()["onlyoffice"] == "HTTP 503"  # the log names the URL, not the answer
    with pytest.raises(Unavailable) as err:
        await cache.get("onlyoffice")
    assert err.value.status == 503
    assert "The onlyoffice editor is not available right now" in err.value.message
    hits = discovery_server.hits["onlyoffice"]
    # within the retry interval nobody hammers the editor
    with pytest.raises(Unavailable):
        await cache.get("onlyoffice")
    assert discovery_server.hits["onlyoffice"] == hits
    discovery_server.failing.clear()
    clock.now += 31
    assert (await cache.get("onlyoffice")).find("docx", "edit") is not None
    assert cache.status() == {"onlyoffice": "ok"}


async def test_connection_refused_is_described(session):
    cache = DiscoveryCache(session, {"msoffice": "http://127.0.0.1:9/hosting/discovery"})
    await cache.refresh_all()
    assert cache.status()["msoffice"] == "cannot connect"


async def test_a_failed_refresh_keeps_the_last_good_document(discovery_server, session):
    clock = Clock()
    cache = DiscoveryCache(
        session, {"msoffice": discovery_server.url("msoffice")}, refresh_interval=10, clock=clock
    )
    first = await cache.get("msoffice")
    discovery_server.docs["msoffice"] = b"<html>maintenance</html>"
    clock.now += 11  # stale, but the first attempt was less than retry_interval ago
    assert await cache.get("msoffice") is first
    assert discovery_server.hits["msoffice"] == 1
    clock.now += 20
    assert await cache.get("msoffice") is first
    assert cache.status()["msoffice"].startswith("ok (stale: discovery root element is <html>")


async def test_proof_keys_protocol_and_rate_limited_refetch(discovery_server, session):
    clock = Clock()
    cache = DiscoveryCache(
        session,
        {"collabora": discovery_server.url("proofkey"), "plain": discovery_server.url("collabora")},
        proof_refetch_interval=60,
        clock=clock,
    )
    source: ProofKeySource = cache
    keys = await source.proof_keys("Collabora")
    assert keys is not None and keys.exponent == "AQAB" and keys.oldmodulus
    assert await source.proof_keys("plain") is None  # publishes no key
    assert await source.proof_keys("unknown") is None
    # keys rotate: a failed signature asks for a refetch, at most once a minute
    rotated = fixture_bytes("msoffice-oos.xml")
    discovery_server.docs["proofkey"] = rotated
    hits = discovery_server.hits["proofkey"]
    new = await source.proof_keys("collabora", refresh=True)
    assert new is not None and new.modulus != keys.modulus
    assert discovery_server.hits["proofkey"] == hits + 1
    await source.proof_keys("collabora", refresh=True)
    assert discovery_server.hits["proofkey"] == hits + 1
    clock.now += 61
    await source.proof_keys("collabora", refresh=True)
    assert discovery_server.hits["proofkey"] == hits + 2


async def test_background_refresh_recovers_an_editor(discovery_server, session):
    discovery_server.failing.add("collabora")
    cache = DiscoveryCache(
        session, {"collabora": discovery_server.url("collabora")}, retry_interval=0.05
    )
    await cache.refresh_all()
    assert cache.peek("collabora") is None
    runner = asyncio.create_task(cache.run())
    try:
        discovery_server.failing.clear()
        for _ in range(100):
            if cache.peek("collabora") is not None:
                break
            await asyncio.sleep(0.02)
        assert cache.status() == {"collabora": "ok"}
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
