"""``server.log_format``: with json (the default) every line a started server writes is one
JSON object, from its first line to its last, a refused start included."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.server import ServerProcess
from tests.support.wopi import IOP_SECRET

FIELDS = {"time", "level", "logger", "message"}


def records(log: str) -> list[dict[str, Any]]:
    lines = log.splitlines()
    assert lines, "the server wrote nothing"
    parsed = []
    for line in lines:
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(record, dict) and set(record) >= FIELDS, line
        parsed.append(record)
    return parsed


def test_every_line_is_json_from_start_to_stop(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "srv")
    (tmp_path / "srv" / "data").mkdir(parents=True)
    server.start()
    try:
        urllib.request.urlopen(f"{server.url}/health").read()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")  # aiohttp's own record
            conn.recv(4096)
        request = urllib.request.Request(
            f"{server.url}/wopi/iop/openinapp?fileid=nothing.docx&appname=x",
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        )
        try:
            urllib.request.urlopen(request)
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 404)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=20)
        server.proc = None
    finally:
        server.stop()
    found = records(server.log())
    loggers = {r["logger"] for r in found}
    assert {"wopibridge", "wopibridge.access", "aiohttp.server"} <= loggers
    [health] = [r for r in found if r.get("op") == "Health"]
    assert health["status"] == 200 and health["path"] == "/health" and health["level"] == "INFO"
    assert any(r["message"].startswith("listening on http://") for r in found)


def test_a_refused_start_is_json_too(tmp_path: Path) -> None:
    """A port already taken, a storage table the app refuses while starting, a bad value."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = ServerProcess(tmp_path / "busy", server={"port": port})
        busy.start(wait=False)
        assert busy.proc is not None and busy.proc.wait(timeout=20) == 1
    [refused] = [r for r in records(busy.log()) if r["level"] == "ERROR"]
    assert refused["message"].startswith(f"cannot listen on 127.0.0.1:{port}")

    bad_storage = ServerProcess(tmp_path / "storage", **{"storages.remote": {"type": "ftp"}})
    bad_storage.start(wait=False)
    assert bad_storage.proc is not None and bad_storage.proc.wait(timeout=20) == 2
    # (aiohttp skips the teardown of a failed start, so asyncio may add an unclosed-session
    # record: JSON as well)
    found = records(bad_storage.log())
    [refused] = [r for r in found if r["level"] == "ERROR" and r["logger"] == "wopibridge"]
    assert refused["key"] == "storages.remote.type"

    bad_value = ServerProcess(tmp_path / "value", server={"log_format": "xml"})
    bad_value.start(wait=False)
    assert bad_value.proc is not None and bad_value.proc.wait(timeout=20) == 2
    [refused] = records(bad_value.log())
    assert refused["key"] == "server.log_format" and refused["level"] == "ERROR"


def test_text_format_keeps_plain_lines(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "srv", server={"log_format": "text"})
    server.start()
    try:
        urllib.request.urlopen(f"{server.url}/health").read()
    finally:
        server.stop()
    lines = server.log().splitlines()
    assert any(" INFO wopibridge.access GET /health Health 200 " in line for line in lines)
    assert not any(line.startswith("{") for line in lines)
