"""Health, readiness, metrics and the access log, over HTTP."""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.procs import RedisServer
from tests.support.server import running_server
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET, open_file
from wopibridge.app import create_app


async def test_health_and_ready(client) -> None:
    assert (await (await client.get("/health")).json()) == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


async def test_ready_names_the_failing_lock_store(aiohttp_client, make_settings, tmp_path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    client = await aiohttp_client(create_app(make_settings(redis.url)))
    ready = await client.get("/ready")
    assert ready.status == 200
    node = {"topology": "redis", "node": f"127.0.0.1:{redis.port}"}
    assert (await ready.json())["redis"] == node
    redis.kill()
    resp = await client.get("/ready")
    assert resp.status == 503
    body = await resp.json()
    # the local storage's file ids are mapped in the same Redis: it cannot serve either
    assert list(body["failing"]) == ["locks", "storage:local"]
    assert "file id map" in body["failing"]["storage:local"]
    assert (await client.get("/health")).status == 200
    redis.start()
    assert (await client.get("/ready")).status == 200
    # the lost connection and the recovery were counted; the primary stayed the same
    metrics = await (await client.get("/metrics")).text()
    assert 'wopibridge_redis_reconnects_total{topology="redis"} 1' in metrics
    assert 'wopibridge_redis_failovers_total{topology="redis"} 0' in metrics
    redis.stop()


async def test_wopi_answers_503_when_lock_store_is_down(
    aiohttp_client, make_settings, tmp_path, data_dir: Path
) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    client = await aiohttp_client(create_app(make_settings(redis.url)))
    (data_dir / "a.docx").write_bytes(b"doc")
    opened = await open_file(client, "a.docx")
    redis.kill()
    resp = await opened.lock("L1")
    assert resp.status == 503
    assert "Traceback" not in await resp.text()
    put = await opened.put_file(b"new", lock="L1")
    assert put.status == 503
    assert (data_dir / "a.docx").read_bytes() == b"doc"


async def test_ready_names_missing_storage(client, data_dir: Path) -> None:
    moved = data_dir.with_name("elsewhere")
    data_dir.rename(moved)  # the mount went away
    try:
        resp = await client.get("/ready")
        assert resp.status == 503
        assert list((await resp.json())["failing"]) == ["storage:local"]
    finally:
        moved.rename(data_dir)
    assert (await client.get("/ready")).status == 200


async def test_access_log_has_no_tokens(client, data_dir: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    (data_dir / "a.docx").write_bytes(b"doc")
    opened = await open_file(client, "a.docx")
    await opened.check_file_info()
    await client.get(opened.path, headers={"Authorization": f"Bearer {opened.token}"})
    await opened.put_file(b"x", lock="nope")
    # aiohttp's own access log (off in `wopibridge serve`) is not ours to check here
    records = [r for r in caplog.records if r.name.startswith("wopibridge")]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    access = [r.__dict__ for r in records if r.name == "wopibridge.access"]
    assert any(r["op"] == "CheckFileInfo" and r["file_id"] == opened.file_id for r in access)
    for secret in (opened.token, IOP_SECRET, TOKEN_SECRET, opened.token.split(".")[2]):
        assert secret not in text


def test_server_log_has_no_secrets(tmp_path: Path) -> None:
    with running_server(
        tmp_path / "srv",
        server={"state_dir": str(tmp_path / "st")},
        security={"token_secret": "", "iop_secret": ""},
    ) as server:
        urllib.request.urlopen(f"{server.url}/health").read()
    log = server.log()
    token_secret = (tmp_path / "st" / "token_secret").read_text().strip()
    iop_secret = (tmp_path / "st" / "iop_secret").read_text().strip()
    assert oct((tmp_path / "st" / "token_secret").stat().st_mode & 0o777) == "0o600"
    assert "token_secret" in log and str(tmp_path / "st") in log
    assert token_secret not in log and iop_secret not in log


def test_malformed_requests_log_one_line_without_their_bytes(tmp_path: Path) -> None:
    """A request aiohttp cannot parse is answered 400 and logged as one warning line: no
    traceback, none of the request line (it may begin an access token)."""
    marker = "eyJhbGciOiJIUzI1NiJ9.SECRETPART"
    with running_server(tmp_path / "srv") as server:
        for request_line in (
            f"GET /wopi/files/x?access_token={marker}{'A' * 20000} HTTP/1.1",
            f"GET /wopi/files/x?access_token={marker} HTTP/1.1\r\nBad Header{marker}",
        ):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
                conn.sendall(f"{request_line}\r\nHost: x\r\n\r\n".encode())
                assert b" 400 Bad Request" in conn.recv(4096).split(b"\r\n")[0]
        # a token-sized request line is still served
        long_query = f"{server.url}/wopi/files/x?access_token={'A' * 12000}"
        try:
            urllib.request.urlopen(long_query)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    log = server.log()
    assert log.count("malformed request from 127.0.0.1 refused") == 2
    assert "LineTooLong, HTTP 400" in log
    assert "Traceback" not in log and marker not in log
