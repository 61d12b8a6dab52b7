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


async def test_nothing_tested_is_not_a_pass(aiohttp_server: Any) -> None:
    """A gate must not pass on nothing: an unreachable host, a malformed WOPISrc, a refused
    token and a run where every test was skipped all exit 2 with one line saying why."""
    server = await aiohttp_server(small_host())
    good = str(server.make_url("/wopi/files/f1"))
    cases = [
        (("http://127.0.0.1:9/wopi/files/f1", "--token", TOKEN), "cannot reach"),
        (("not a url", "--token", TOKEN), "must be an http:// or https:// URL"),
        (("http://127.0.0.1:notaport/wopi/files/f1", "--token", TOKEN), "invalid port"),
        ((str(server.make_url("/somewhere")), "--token", TOKEN), "must be a file's URL"),
        ((good, "--token", "wrong-token", "--no-proof"), "refused the access token"),
        ((str(server.make_url("/wopi/files/nope")), "--token", TOKEN, "--no-proof"), "404"),
        ((good, "--token", TOKEN, "--no-proof", "--group", "ProofKeys"), "every test was skipped"),
    ]
    for args, reason in cases:
        code, out, err = await validate(*args)
        assert code == 2, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("validate: "), err
        assert reason in lines[0], (args, err)
        assert TOKEN not in err and "Traceback" not in err


async def test_schema_checks_formats_as_microsoft_does(aiohttp_server: Any) -> None:
    """Microsoft's validator fails a LastModifiedTime of "yesterday" and a HostViewUrl of
    "not a uri" (JSON-schema ``format``); so does ours, while well-formed values pass."""
    bad = Faults(extra_info=(("LastModifiedTime", "yesterday"), ("HostViewUrl", "not a uri")))
    server = await aiohttp_server(small_host(bad))
    wopisrc = str(server.make_url("/wopi/files/f1"))
    code, out, err = await validate(
        wopisrc, "--token", TOKEN, "--no-proof", "--test", "FullCheckFileInfoSchema", "--json"
    )
    # The schema is also the prerequisite of every group, as in Microsoft's plan: nothing runs.
    assert code == 2 and "nothing was tested" in err
    reason = json.loads(out)["groups"][0]["skipped_reason"]
    assert reason.startswith("prerequisite WopiValidatorPrereq failed")
    assert "LastModifiedTime: 'yesterday' is not a 'date-time'" in reason, reason
    assert "HostViewUrl: 'not a uri' is not a 'uri'" in reason, reason

    good = Faults(
        extra_info=(
            ("LastModifiedTime", "2026-11-30T20:31:36.123Z"),
            ("HostViewUrl", "https://ui.example.org/view?file=1"),
        )
    )
    server = await aiohttp_server(small_host(good))
    wopisrc = str(server.make_url("/wopi/files/f1"))
    code, out, err = await validate(
        wopisrc, "--token", TOKEN, "--no-proof", "--test", "FullCheckFileInfoSchema"
    )
    assert code == 0, out + err


async def test_list_into_a_closed_pipe() -> None:
    """``wopibridge validate --list | head`` ends quietly when head stops reading."""
    process = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m wopibridge validate --list | head -n 2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert out.decode().splitlines() == ["CheckFileInfoSchema", "  FullCheckFileInfoSchema"]
    assert err.decode() == ""
