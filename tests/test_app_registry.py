"""Office and bridged apps live in one registry: openinapp finds either without an appurl."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.wopi import IOP_SECRET
from wopibridge.app import create_app


async def test_openinapp_without_appurl_reaches_bridged_app(
    aiohttp_client, make_settings, data_dir: Path
) -> None:
    settings = make_settings(
        apps={"etherpad": {"url": "http://127.0.0.1:9", "apikey": "k" * 20}},
    )
    client = await aiohttp_client(create_app(settings))
    (data_dir / "notes.txt").write_text("hello")
    resp = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "notes.txt",
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u@idp",
            "appname": "Etherpad",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert resp.status == 200, await resp.text()
    url = urlsplit((await resp.json())["app-url"])
    assert url.path == "/wopi/bridge/open"
    query = parse_qs(url.query)
    assert query["app"] == ["etherpad"]
    assert "/wopi/files/local." in query["WOPISrc"][0]


async def test_unknown_app_type_stops_start(make_settings) -> None:
    import pytest

    from wopibridge.config import ConfigError

    with pytest.raises(ConfigError, match=r"apps\.frobnicator"):
        create_app(make_settings(apps={"frobnicator": {"url": "http://x"}}))
