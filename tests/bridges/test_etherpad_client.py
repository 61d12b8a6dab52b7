"""The Etherpad client against a real Etherpad 1.8.14."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.procs import free_port
from wopibridge.apps.etherpad import EtherpadApp
from wopibridge.errors import PayloadTooLarge, Unavailable

from .etherpad_server import EtherpadServer


def make_app(url: str, apikey: str, **extra: object) -> EtherpadApp:
    return EtherpadApp.from_config(
        "etherpad", {"url": url, "apikey": apikey, **extra}, "http://wopi.test"
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api(http: aiohttp.ClientSession, pad: EtherpadServer, method: str, **params: str):
    async with http.post(
        f"{pad.url}/api/1.2.15/{method}", data={"apikey": pad.apikey, **params}
    ) as response:
        return await response.json()


async def test_text_round_trip_keeps_bytes(etherpad: EtherpadServer, http) -> None:
    app = make_app(etherpad.url, etherpad.apikey)
    loaded = await app.load(
        http, "rtPadA0000000000000000000000000", "a.txt", "héllo\nworld".encode()
    )
    assert await app.fetch(http, loaded, "a.txt") == "héllo\nworld".encode()
    before = await app.revision(http, loaded)
    reply = await api(http, etherpad, "setText", padID=loaded.ref, text="changed\n")
    assert reply["code"] == 0
    assert await app.revision(http, loaded) != before
    assert await app.fetch(http, loaded, "a.txt") == b"changed"
    assert await app.live_users(http, loaded) == 0


async def test_reload_resets_an_existing_pad(etherpad: EtherpadServer, http) -> None:
    app = make_app(etherpad.url, etherpad.apikey)
    await app.load(http, "rtPadB0000000000000000000000000", "b.txt", b"first\n")
    loaded = await app.load(http, "rtPadB0000000000000000000000000", "b.txt", b"second\n")
    assert await app.fetch(http, loaded, "b.txt") == b"second\n"


async def test_etherpad_export_format(etherpad: EtherpadServer, http) -> None:
    app = make_app(etherpad.url, etherpad.apikey)
    export = json.dumps({"pad:old": {"atext": {"text": "from export\n", "attribs": ""}}})
    loaded = await app.load(http, "rtPadC0000000000000000000000000", "c.etherpad", export.encode())
    saved = json.loads(await app.fetch(http, loaded, "c.etherpad"))
    assert saved[f"pad:{loaded.ref}"]["atext"]["text"] == "from export\n"


async def test_read_only_link(etherpad: EtherpadServer, http) -> None:
    app = make_app(etherpad.url, etherpad.apikey)
    url = await app.view_url(
        http, "rtPadD0000000000000000000000000", "d.txt", b"read me", None, "Ann"
    )
    assert url.startswith(f"{etherpad.url}/p/r.")
    assert "userName=Ann" in url
    readonly = url.split("/p/")[1].split("?")[0]
    async with http.get(f"{etherpad.url}/p/{readonly}/export/txt") as response:
        assert await response.text() == "read me\n"


async def test_wrong_api_key_is_unavailable(etherpad: EtherpadServer, http) -> None:
    app = make_app(etherpad.url, "not-the-key")
    with pytest.raises(Unavailable, match="API key"):
        await app.load(http, "rtPadE0000000000000000000000000", "e.txt", b"x")


async def test_unreachable_and_too_large(http) -> None:
    app = make_app(f"http://127.0.0.1:{free_port()}", "k", max_size=10)
    with pytest.raises(Unavailable, match="cannot be reached"):
        await app.load(http, "rtPadF0000000000000000000000000", "f.txt", b"x")
    with pytest.raises(PayloadTooLarge):
        await app.load(http, "rtPadF0000000000000000000000000", "f.txt", b"x" * 11)
