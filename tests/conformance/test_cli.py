"""``validate`` as an operator runs it: a separate process against a host over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from wopibridge.validator.signing import RunnerKeys

from .hosts import TOKEN, Faults, small_host

REPO_ROOT = Path(__file__).resolve().parents[2]


async def validate(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wopibridge.validator",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_text_output_and_exit_status(aiohttp_server: Any) -> None:
    server = await aiohttp_server(small_host(Faults(stale_version=True)))
    wopisrc = str(server.make_url("/wopi/files/f1"))
    code, out, _ = await validate(
        wopisrc, "--token", TOKEN, "--no-proof", "--group", "FileVersion", "--group", "Locks"
    )
    assert code == 1
    assert "FAIL  FileVersion / files.PutFileReturnsDifferentVersion" in out
    assert "PASS  Locks / LockMismatchOnPutFileRequest" in out
    assert "Summary per group:" in out
    assert out.rstrip().splitlines()[-1] == "18 passed, 1 failed"
    assert TOKEN not in out


async def test_json_output_and_test_filter(aiohttp_server: Any) -> None:
    server = await aiohttp_server(small_host())
    wopisrc = str(server.make_url("/wopi/files/f1"))
    code, out, _ = await validate(
        wopisrc,
        "--token",
        TOKEN,
        "--no-proof",
        "--json",
        "--test",
        "files.GetLock*",
        "--test",
        "ProofKeys.*",
    )
    assert code == 0
    data = json.loads(out)
    assert [g["name"] for g in data["groups"]] == ["GetLock", "ProofKeys"]
    assert data["summary"] == "3 passed, 0 failed, 7 skipped"


async def test_discovery_flow(aiohttp_server: Any, tmp_path: Any, unused_tcp_port: int) -> None:
    """The documented flow: the host's discovery_url points at the runner, which serves its
    own keys there during the run; the host fetches them on the first signed request."""
    key_file = tmp_path / "runner-keys.pem"
    keys = RunnerKeys.load_or_create(key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    reloaded = RunnerKeys.load_or_create(key_file)
    assert reloaded.current.private_numbers() == keys.current.private_numbers()
    discovery = f"http://127.0.0.1:{unused_tcp_port}/hosting/discovery"
    server = await aiohttp_server(small_host(discovery_url=discovery))
    wopisrc = str(server.make_url("/wopi/files/f1"))
    code, out, err = await validate(
        wopisrc,
        "--token",
        TOKEN,
        "--keys",
        str(key_file),
        "--discovery",
        f"127.0.0.1:{unused_tcp_port}",
        "--group",
        "ProofKeys",
    )
    assert code == 0, out + err
    assert f"Serving the runner's discovery at {discovery}" in out
    assert out.rstrip().splitlines()[-1] == "7 passed, 0 failed"


async def test_usage_errors() -> None:
    code, _, err = await validate(
        "http://127.0.0.1:9/wopi/files/x", "--token", "t", "--group", "NoSuchGroup"
    )
    assert code == 2 and "no group or test matches" in err
    code, out, _ = await validate("http://x/wopi/files/x", "--token", "t", "--list")
    assert code == 0 and "  ProofKeys.TimestampOlderThan20Min" in out
