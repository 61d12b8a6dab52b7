"""``server.event_loop``: asyncio's own loop by default, uvloop on request; both serve WOPI."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.support.server import ServerProcess
from tests.support.wopi import open_remote
from wopibridge.config import ConfigError, load_settings


@pytest.mark.parametrize("choice", ["uvloop", "asyncio", None])
async def test_each_loop_serves_and_says_which(tmp_path: Path, choice: str | None) -> None:
    server = ServerProcess(
        tmp_path / "srv", **({"server": {"event_loop": choice}} if choice else {})
    )
    (tmp_path / "srv" / "data").mkdir(parents=True)
    (tmp_path / "srv" / "data" / "a.docx").write_bytes(b"hello")
    server.start()
    try:
        async with aiohttp.ClientSession() as http:
            src, token = await open_remote(http, server.url, "a.docx")
            async with http.get(src, params={"access_token": token}) as answer:
                assert answer.status == 200
                assert (await answer.json())["Size"] == 5
            async with http.get(f"{src}/contents", params={"access_token": token}) as answer:
                assert await answer.read() == b"hello"
    finally:
        server.stop()
    expected = choice or "asyncio"
    listening = [line for line in server.log_path.read_text().splitlines() if "listening" in line]
    assert len(listening) == 1 and f"event loop {expected})" in listening[0], listening


def test_an_unknown_loop_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "w.toml"
    config.write_text('[server]\nevent_loop = "trio"\n')
    with pytest.raises(ConfigError, match="event_loop"):
        load_settings(config, env={})
