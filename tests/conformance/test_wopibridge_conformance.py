"""wopibridge itself under the validator: every test of the groups it claims must pass.

wopibridge runs in-process on a real port with local storage; the runner serves its
discovery document and wopibridge is configured to require proofs from it (the operator's
flow from the README). The file under test is opened through ``/wopi/iop/openinapp`` exactly
as Reva would, which yields the WOPISrc and the access token.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.support.procs import free_port
from wopibridge.app import create_app
from wopibridge.config import load_settings
from wopibridge.validator import report
from wopibridge.validator.plan import load_plan
from wopibridge.validator.runner import Runner, RunResult, Target
from wopibridge.validator.signing import RunnerKeys, serve_discovery

#: The groups wopibridge claims (README, "Conformance"); all of their tests must pass.
CLAIMED = [
    "CheckFileInfoSchema",
    "BaseWopiViewing",
    "Locks",
    "GetLock",
    "ExtendedLockLength",
    "EditFlows",
    "FileVersion",
    "PutUserInfo",
    "PutRelativeFile",
    "RenameFileIfCreateChildFileIsNotSupported",
    "ProofKeys",
]
IOP_SECRET = "iop-secret-for-the-conformance-test"
TOKEN_SECRET = "token-secret-for-the-conformance-test"


async def open_file(
    base: str, relative_path: str, iop_secret: str = IOP_SECRET, endpoint: str = "local"
) -> tuple[str, str]:
    """openinapp as Reva calls it: returns (WOPISrc, access token)."""
    query = {
        "fileid": relative_path,
        "endpoint": endpoint,
        "viewmode": "VIEW_MODE_READ_WRITE",
        "appname": "WopiTest",
        "appurl": "http://wopitest.invalid/edit",
        "appviewurl": "http://wopitest.invalid/view",
        "userid": "tester@idp.test",
        "username": "Conformance Tester",
        "usertype": "regular",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{base}/wopi/iop/openinapp",
            params=query,
            headers={"Authorization": f"Bearer {iop_secret}", "TokenHeader": "reva-token"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        answer = await response.json()
    wopisrc = parse_qs(urlsplit(answer["app-url"]).query)["WOPISrc"][0]
    return wopisrc, answer["form-parameters"]["access_token"]


async def run_validator(
    tmp_path: Path,
    aiohttp_server: Any,
    groups: list[str],
    lock_url: str = "memory://",
    storage: tuple[str, dict[str, Any], Path] | None = None,
    app_type: str = "wopi",
    file_info: list[dict[str, Any]] | None = None,
) -> RunResult:
    """The validator against wopibridge; ``storage`` (name, table, its folder on this
    machine) serves the file under test instead of the default local storage. The runner is
    configured as an app of ``app_type``; ``file_info`` gets its CheckFileInfo after the
    run."""
    root = tmp_path / "data"
    root.mkdir()
    endpoint, storages, folder = storage or ("local", {}, root)
    (folder / "conformance.wopitest").write_bytes(b"")
    keys = RunnerKeys.generate()
    port, discovery_port = free_port(), free_port()
    async with serve_discovery(keys, "127.0.0.1", discovery_port) as discovery_url:
        settings = load_settings(
            env={},
            overrides={
                "server": {
                    "host": "127.0.0.1",
                    "port": port,
                    "public_url": f"http://127.0.0.1:{port}",
                    "state_dir": str(tmp_path / "state"),
                },
                "storage": {"root": str(root)},
                "storages": {endpoint: storages} if storages else {},
                "locks": {"url": lock_url, "prefix": f"conformance{port}:"},
                "security": {"token_secret": TOKEN_SECRET, "iop_secret": IOP_SECRET},
                "apps": {
                    "wopitest": {
                        "type": app_type,
                        "discovery_url": discovery_url,
                        "proof_keys": "require",
                    }
                },
            },
        )
        server = await aiohttp_server(create_app(settings), port=port)
        base = str(server.make_url("")).rstrip("/")
        wopisrc, token = await open_file(base, "conformance.wopitest", endpoint=endpoint)
        target = Target(wopisrc, token, 0, keys)
        async with aiohttp.ClientSession() as session:
            result = await Runner(load_plan(), target, session).run(groups)
            if file_info is not None:
                url = f"{wopisrc}?access_token={token}"
                async with session.get(url, headers=keys.headers(token, url)) as answer:
                    assert answer.status == 200, await answer.text()
                    file_info.append(await answer.json())
            return result


async def test_wopibridge_passes_every_claimed_group(
    tmp_path: Path, aiohttp_server: Any, lock_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole plan, on both lock stores (``lock_url`` starts a redis-server for Redis):
    every test of the claimed groups passes, every other group is skipped by its
    prerequisites (wopibridge does not advertise what it does not implement)."""
    everything = [g.name for g in load_plan().groups]
    result = await run_validator(tmp_path, aiohttp_server, everything, lock_url)
    text = io.StringIO()
    report.write_text(result, text)
    with capsys.disabled():  # one line per lock store; the whole report only when it fails
        store = lock_url.split("://")[0]
        print(f"\nWOPI validator, locks at {store}://: {report.totals_line(result)}")
    claimed = [g for g in result.groups if g.name in CLAIMED]
    assert [g.name for g in claimed] == CLAIMED, text.getvalue()
    not_passed = [
        (g.name, c.name, c.errors) for g in claimed for c in g.cases if c.status != "passed"
    ]
    assert not_passed == [], text.getvalue()
    others = [g for g in result.groups if g.name not in CLAIMED]
    assert len(others) == 22
    assert all(g.skipped_reason and g.count("skipped") == len(g.cases) for g in others)
    assert report.totals_line(result) == "61 passed, 0 failed, 163 skipped"


async def test_microsoft_checkfileinfo_with_its_version_url_passes(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    """Configured as Microsoft, the runner gets ``FileVersionUrl`` (the versions page), and
    CheckFileInfo still passes its schema (``format: uri``) and the host-URL checks."""
    info: list[dict[str, Any]] = []
    result = await run_validator(
        tmp_path, aiohttp_server, ["CheckFileInfoSchema"], app_type="msoffice", file_info=info
    )
    text = io.StringIO()
    report.write_text(result, text)
    cases = [c for g in result.groups for c in g.cases]
    assert cases and all(c.status == "passed" for c in cases), text.getvalue()
    url = info[0]["FileVersionUrl"]
    assert urlsplit(url).path == "/wopi/history" and "link=" in url


async def test_operator_flow_with_processes(tmp_path: Path) -> None:
    """The README flow with real processes: ``wopibridge serve`` configured to require proofs
    from the runner's discovery, then ``wopibridge validate --discovery`` against it."""
    from tests.support.server import REPO as REPO_ROOT
    from tests.support.server import running_server
    from tests.support.wopi import IOP_SECRET as SERVER_IOP_SECRET

    data = tmp_path / "server" / "data"
    data.mkdir(parents=True)
    (data / "scratch.wopitest").write_bytes(b"")
    discovery_port = free_port()
    apps = {
        "type": "wopi",
        "discovery_url": f"http://127.0.0.1:{discovery_port}/hosting/discovery",
        "proof_keys": "require",
    }
    with running_server(tmp_path / "server", **{"apps.wopitest": apps}) as server:
        wopisrc, token = await open_file(server.url, "scratch.wopitest", SERVER_IOP_SECRET)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wopibridge",
            "validate",
            wopisrc,
            "--token",
            token,
            "--discovery",
            f"127.0.0.1:{discovery_port}",
            "--group",
            "ProofKeys",
            "--group",
            "Locks",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode() + err.decode()
    assert json.loads(out)["summary"] == "20 passed, 0 failed"
