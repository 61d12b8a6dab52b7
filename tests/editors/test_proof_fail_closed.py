"""Proof keys fail closed: while an editor's keys cannot be known, nothing that needs a proof
is served, and the refusals stop about a second after the editor's discovery comes back.

The editors are the fakes of ``fakes.py`` and their discovery documents come from the test
discovery server, switched to failing (HTTP 503) before wopibridge starts: the secure-view
token comes from openinapp with Reva's ``appviewurl``, which needs no discovery, exactly how a
user gets one while the editor is down.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from .conftest import IOP, signed, start
from .fakes import FakeCollabora, FakeOnlyOffice, ProofSigner


@pytest.fixture
async def started(tmp_path, discovery_server, aiohttp_server, signer):
    """A wopibridge whose two editors' discovery fails from the start: ``collabora`` checks
    proofs in the default ``verify`` mode, ``onlyoffice`` with ``require``."""
    for name in ("collabora", "onlyoffice"):
        discovery_server.docs[name] = signed(discovery_server.docs[name], signer)
        discovery_server.failing.add(name)
    body = f"""
[apps.collabora]
discovery_url = "{discovery_server.url("collabora")}"

[apps.onlyoffice]
discovery_url = "{discovery_server.url("onlyoffice")}"
proof_keys = "require"
"""
    base, _ = await start(aiohttp_server, tmp_path, body)
    async with aiohttp.ClientSession() as http:
        yield base, tmp_path / "data", http


async def openinapp(http: aiohttp.ClientSession, base: str, name: str, app: str, mode: str):
    query = {
        "fileid": name,
        "viewmode": mode,
        "userid": "ann@idp",
        "username": "Ann",
        "appname": app,
        "appurl": "https://editor.example/edit?",
        "appviewurl": "https://editor.example/view?",
    }
    async with http.get(
        f"{base}/wopi/iop/openinapp", params=query, headers={"Authorization": f"Bearer {IOP}"}
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    return body["app-url"], body["form-parameters"]["access_token"]


async def unsigned_get(http: aiohttp.ClientSession, app_url: str, token: str) -> int:
    editor = FakeCollabora(http, app_url, token, ProofSigner())
    async with http.get(f"{editor.wopisrc}/contents", params={"access_token": token}) as answer:
        await answer.read()
        return answer.status


async def test_secure_view_is_not_served_while_discovery_is_down(started, discovery_server, signer):
    base, root, http = started
    (root / "pay.odt").write_bytes(b"salaries")
    app_url, token = await openinapp(http, base, "pay.odt", "Collabora", "VIEW_MODE_VIEW_ONLY")
    editor = FakeCollabora(http, app_url, token, signer)
    hits = discovery_server.hits.get("collabora", 0)
    started_at = time.monotonic()
    # the browser, without a proof: never the bytes
    for _ in range(20):
        assert await unsigned_get(http, app_url, token) == 401
    # even the editor's signed request: its signature cannot be checked, so it is not served
    for _ in range(20):
        answer = await editor.call("GET", "/contents")
        assert answer.status == 503, answer
        assert b"salaries" not in answer.body
        assert b"127.0.0.1" not in answer.body  # the refusal names the editor, not its host
    # 40 refusals cost at most one discovery fetch per second, not one each
    elapsed = time.monotonic() - started_at
    assert discovery_server.hits["collabora"] - hits <= elapsed + 2
    # discovery comes back: the editor is served within about a second, the browser never
    discovery_server.failing.discard("collabora")
    back = time.monotonic()
    while (answer := await editor.call("GET", "/contents")).status != 200:
        assert answer.status == 503
        assert time.monotonic() - back < 3, "still refused 3 s after discovery came back"
        await asyncio.sleep(0.1)
    assert answer.body == b"salaries"
    assert await unsigned_get(http, app_url, token) == 401


async def test_required_proof_is_not_waived_while_discovery_is_down(
    started, discovery_server, signer
):
    base, root, http = started
    (root / "memo.docx").write_bytes(b"memo")
    app_url, token = await openinapp(http, base, "memo.docx", "OnlyOffice", "VIEW_MODE_READ_ONLY")
    editor = FakeOnlyOffice(http, app_url, token, signer)
    for suffix in ("", "/contents"):
        answer = await editor.call("GET", suffix)
        assert answer.status == 503, answer
        assert b"memo" not in answer.body
    forger = FakeOnlyOffice(http, app_url, token, ProofSigner())
    assert (await forger.call("GET", "/contents")).status == 503
    discovery_server.failing.discard("onlyoffice")
    await asyncio.sleep(1.1)
    assert await editor.get_file() == b"memo"
    assert (await forger.call("GET", "/contents")).status == 500
