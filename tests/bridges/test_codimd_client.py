"""The CodiMD client against the fake CodiMD (see fake_codimd.py for what it implements)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from wopibridge.apps.codimd import CodiMDApp, read_bundle, write_bundle
from wopibridge.errors import PayloadTooLarge, Unavailable

from .fake_codimd import FakeCodiMD

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 40


async def start(aiohttp_server, fake: FakeCodiMD) -> TestServer:
    server = await aiohttp_server(fake.app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    return server


def client(fake: FakeCodiMD, **extra: object) -> CodiMDApp:
    table = {"url": fake.base_url, **extra}
    return CodiMDApp.from_config("codimd", table, "http://wopi.test")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_stock_hedgedoc_new_note(aiohttp_server, http) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    app = client(fake)
    loaded = await app.load(http, "D" * 32, "notes.md", b"# Title\n")
    assert loaded.ref in fake.notes and loaded.ref != "D" * 32
    assert app.edit_url(loaded, "Ann") == f"{fake.base_url}/{loaded.ref}?both"
    before = await app.revision(http, loaded)
    fake.edit(loaded.ref, "# Title\n\nmore\n")
    assert await app.revision(http, loaded) != before
    assert await app.fetch(http, loaded, "notes.md") == b"# Title\n\nmore\n"


async def test_cern_api_uses_the_document_id(aiohttp_server, http) -> None:
    fake = FakeCodiMD(api_key="k" * 20)
    await start(aiohttp_server, fake)
    loaded = await client(fake, apikey="k" * 20).load(http, "E" * 32, "n.md", b"x")
    assert loaded.ref == "E" * 32
    assert fake.notes["E" * 32].content == "x"
    with pytest.raises(Unavailable, match="API key"):
        await client(fake, apikey="wrong-key").load(http, "E" * 32, "n.md", b"x")


async def test_read_only_note(aiohttp_server, http) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    url = await client(fake).view_url(http, "F" * 32, "r.md", b"read", None, "Ann")
    note = url.removeprefix(fake.base_url + "/").removesuffix("/publish")
    assert url.endswith("/publish") and fake.notes[note].locked
    assert "POST /new?mode=locked" in fake.calls


async def test_zmd_round_trip_with_an_image(aiohttp_server, http) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    app = client(fake)
    bundle = write_bundle("# Fig\n\n![plot](figure.png)\n", {"figure.png": PNG})
    loaded = await app.load(http, "G" * 32, "paper.zmd", bundle)
    markdown = fake.notes[loaded.ref].content
    assert f"({fake.base_url}/uploads/upload_" in markdown
    assert list(fake.uploads.values()) == [PNG]
    fake.edit(loaded.ref, markdown + "\nA new paragraph.\n")
    saved = await app.fetch(http, loaded, "paper.zmd")
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    text, files = read_bundle(saved)
    (name,) = files
    assert files[name] == PNG and name.startswith("upload_") and name.endswith(".png")
    assert text == f"# Fig\n\n![plot]({name})\n\nA new paragraph.\n"


async def test_too_large_for_codimd(aiohttp_server, http) -> None:
    fake = FakeCodiMD(max_body=100)
    await start(aiohttp_server, fake)
    with pytest.raises(PayloadTooLarge, match="too large for CodiMD"):
        await client(fake).load(http, "H" * 32, "big.md", b"x" * 500)
