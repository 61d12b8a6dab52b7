"""Answers name the failing component, never its address, a path or an exception's text: with
Redis gone, every WOPI and open call answers 503 with a sentence an editor may show, and the
log keeps the detail."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import RedisServer
from tests.support.wopi import IOP_SECRET, open_file
from wopibridge.app import create_app
from wopibridge.config import Settings


@pytest.mark.parametrize("short_tokens", [False, True])
async def test_redis_down_answers_name_the_lock_store_not_its_address(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
    short_tokens: bool,
) -> None:
    (data_dir / "report.docx").write_bytes(b"v1")
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    settings = make_settings(redis.url, security={"short_tokens": short_tokens})
    client = await aiohttp_client(create_app(settings))
    opened = await open_file(client, "report.docx")
    redis.kill()
    inside = ("127.0.0.1", str(redis.port), "Error ", "Connection refused", str(tmp_path))
    calls = {
        "CheckFileInfo": lambda: client.get(opened.path, params={"access_token": opened.token}),
        "GetFile": lambda: opened.get_file(),
        "Lock": lambda: opened.lock("L1"),
        "PutFile": lambda: opened.put_file(b"v2", lock="L1"),
        "openinapp": lambda: client.get(
            "/wopi/iop/openinapp",
            params={
                "fileid": "report.docx",
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "u",
                "username": "U",
                "appurl": "https://editor/x?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        ),
        "ready": lambda: client.get("/ready"),
    }
    with caplog.at_level(logging.WARNING):
        for name, call in calls.items():
            resp = await call()
            body = await resp.text()
            if name == "ready":  # an operator's page: it names the Redis node on purpose
                body = str((await resp.json())["failing"])
            # GetFile and an open may still be served: they need no lock, and the file's id
            # is on the file
            may_work = name in ("GetFile", "openinapp")
            assert resp.status == 503 or (may_work and resp.status == 200), (name, body)
            for secret in inside if resp.status >= 500 else ():
                assert secret not in body, (name, body)
            if resp.status == 503 and name != "ready":
                assert "unavailable" in body.lower() or "did not answer" in body, (name, body)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"127.0.0.1:{redis.port}" in logged or "Connection refused" in logged, logged
