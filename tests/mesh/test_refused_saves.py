"""Saves the storage refuses or cuts off mid-upload, through the real app and PutFile.

Whatever the storage does with the upload (a WebDAV LOCK held by a desktop client, a server
that answers 423 after ``100 Continue``, closes or resets the connection half way, or stops
answering), every save gets the documented answer, the file on the storage is unchanged, the
body was read to its end and the kept copy (beside the file or in the recovery folder) hashes to
exactly the body sent. Nothing is logged with a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import random
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.mesh.conftest import DAV_PASSWORD, DAV_USER, DavServer, start_gateway
from tests.mesh.rawdav import RawDav
from tests.mesh.test_app_mesh import Client, make_app, openinapp, wopi_path
from tests.mesh.test_webdav import LOCK_BODY

MIB = 1024 * 1024
SIZES = [1, 100, 12_000, 65_537, 300_000, 1_048_580, 4 * MIB, 8 * MIB]
WOPI_LOCK = "wopi-lock-1"
ORIGINAL = b"original content"


def bodies(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(SIZES[i % len(SIZES)]) for i in range(count)]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kept_digests(recovery: Path, folder: Path | None) -> Counter[str]:
    """The SHA-256 of every kept copy: in the recovery folder and beside the file."""
    found: Counter[str] = Counter()
    files = [p for p in recovery.iterdir()] if recovery.exists() else []
    if folder is not None:
        files += [p for p in folder.iterdir() if "(conflict " in p.name]
    for path in files:
        if path.name.startswith(".~wb-"):
            raise AssertionError(f"a temporary file is left: {path}")
        if path.is_file() and not path.name.endswith((".sqlite3", "-wal", "-shm")):
            found[digest(path.read_bytes())] += 1
    return found


def assert_clean_log(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def open_locked(
    client: TestClient, endpoint: str, fileid: str, **kw: str
) -> tuple[str, dict]:
    answer = await openinapp(client, fileid=fileid, endpoint=endpoint, **kw)
    path = wopi_path(answer)
    token = {"access_token": answer["form-parameters"]["access_token"]}
    lock = await client.post(
        path, params=token, headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": WOPI_LOCK}
    )
    assert lock.status == 200, await lock.text()
    return path, token


async def put(client: TestClient, path: str, token: dict, body: bytes) -> aiohttp.ClientResponse:
    return await client.post(
        f"{path}/contents",
        params=token,
        data=io.BytesIO(body),
        headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": WOPI_LOCK},
    )


@pytest.mark.slow
@pytest.mark.parametrize("hide_locks", [False, True], ids=["lockdiscovery", "late-423"])
async def test_webdav_lock_refuses_every_save_and_keeps_each_body(
    tmp_path: Path,
    aiohttp_client: Client,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    hide_locks: bool,
) -> None:
    """27 saves per server, 1 byte to 8 MiB, on a file a desktop client locked in wsgidav.

    With ``late-423`` the server does not report locks in PROPFIND, so the PUT goes out and
    wsgidav (cheroot) answers ``100 Continue`` and then 423 before it read the body."""
    caplog.set_level(logging.WARNING)
    share = tmp_path / "share"
    share.mkdir()
    (share / "report.odt").write_bytes(ORIGINAL)
    server = DavServer(share, hide_locks=hide_locks)
    server.start()
    try:
        # WOPI locks kept off the server (locks = false), so a desktop client can lock it
        app = make_app(tmp_path, {"dav": server.table(timeout=20, locks=False)})
        client = await aiohttp_client(app)
        path, token = await open_locked(client, "dav", "report.odt")
        basic = base64.b64encode(f"{DAV_USER}:{DAV_PASSWORD}".encode()).decode()
        async with http.request(
            "LOCK",
            f"{server.url}/report.odt",
            data=LOCK_BODY,
            headers={
                "Timeout": "Second-3600",
                "Content-Type": "application/xml",
                "Authorization": f"Basic {basic}",
            },
        ) as r:
            assert r.status == 200, await r.text()

        sent = bodies(27, seed=16 + hide_locks)
        for body in sent:
            answer = await put(client, path, token, body)
            assert answer.status == 423, (len(body), answer.status, await answer.text())
            assert (share / "report.odt").read_bytes() == ORIGINAL
        kept = kept_digests(tmp_path / "state" / "recovery", share)
        assert kept == Counter(digest(b) for b in sent)
        assert_clean_log(caplog)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "status"), [("close", 503), ("reset", 503), ("early423", 423)])
async def test_webdav_server_cutting_the_upload_short(
    tmp_path: Path,
    aiohttp_client: Client,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    status: int,
) -> None:
    """A server that reads half the body, then closes, resets, or answers 423 (and then
    reports the lock): 503 only when it gave no answer, the body kept byte for byte."""
    caplog.set_level(logging.WARNING)
    raw = RawDav(mode)
    await raw.start()
    try:
        table = {"type": "webdav", "url": raw.url, "retries": 1, "timeout": 10}
        client = await aiohttp_client(make_app(tmp_path, {"rude": table}))
        path, token = await open_locked(client, "rude", "doc.odt")
        sent = bodies(10, seed=len(mode))
        for body in sent:
            raw.reveal_lock = False
            raw.half = len(body) // 2
            before = raw.puts
            answer = await put(client, path, token, body)
            assert answer.status == status, (len(body), answer.status, await answer.text())
            assert raw.puts > before  # the upload did start
        kept = kept_digests(tmp_path / "state" / "recovery", None)
        assert kept == Counter(digest(b) for b in sent)
        assert_clean_log(caplog)
    finally:
        await raw.stop()


@pytest.mark.parametrize("mode", ["stall", "silent"])
async def test_webdav_server_that_stops_answering_is_503_and_the_body_kept(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """``stall`` reads half the body and then nothing; ``silent`` never sends the ``100
    Continue`` the PUT waits for, nor anything else. Both are given up after the storage's
    timeout, not waited for forever."""
    caplog.set_level(logging.WARNING)
    raw = RawDav(mode)
    await raw.start()
    try:
        table = {"type": "webdav", "url": raw.url, "retries": 1, "timeout": 2}
        client = await aiohttp_client(make_app(tmp_path, {"rude": table}))
        path, token = await open_locked(client, "rude", "doc.odt")
        body = bodies(6, seed=3)[5]
        raw.half = len(body) // 2
        started = time.monotonic()
        answer = await put(client, path, token, body)
        assert answer.status == 503, await answer.text()
        assert time.monotonic() - started < 15
        assert "rude" in await answer.text()
        # the conflict copy could not be made on the hung server either: recovery
        kept = kept_digests(tmp_path / "state" / "recovery", None)
        assert kept == Counter([digest(body)])
        assert_clean_log(caplog)
    finally:
        await raw.stop()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "status"), [("close", 503), ("reset", 503), ("early423", 423)])
async def test_cs3_upload_cut_short(
    tmp_path: Path,
    aiohttp_client: Client,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    status: int,
) -> None:
    """The CS3 data server cuts the upload short; on ``early423`` a desktop client took the
    gateway lock meanwhile, which the answer reports."""
    import cs3.storage.provider.v1beta1.resources_pb2 as spr

    from tests.mesh.conftest import CS3_TOKEN

    caplog.set_level(logging.WARNING)
    raw = RawDav(mode)
    await raw.start()
    running = await start_gateway(tmp_path / "cs3")
    try:
        gateway = running.gateway
        (gateway.root / "doc.odt").write_bytes(ORIGINAL)
        client = await aiohttp_client(
            make_app(tmp_path, {"reva": {"type": "cs3", "gateway": running.address}})
        )
        path, token = await open_locked(client, "reva", "doc.odt", token_header=CS3_TOKEN)
        opaque = gateway._id_of("doc.odt")
        ours = gateway.held[opaque]
        foreign = spr.Lock(lock_id="desktop", app_name="desktop", type=ours.type)
        raw.on_refuse = lambda: gateway.held.__setitem__(opaque, foreign)
        gateway.data_url = f"http://127.0.0.1:{raw.port}"
        sent = bodies(8, seed=7 + len(mode))
        for body in sent:
            gateway.held[opaque] = ours
            raw.half = len(body) // 2
            before = raw.puts
            answer = await put(client, path, token, body)
            assert answer.status == status, (len(body), answer.status, await answer.text())
            assert raw.puts > before
            assert (gateway.root / "doc.odt").read_bytes() == ORIGINAL
        kept = kept_digests(tmp_path / "state" / "recovery", None)
        assert kept == Counter(digest(b) for b in sent)
        assert_clean_log(caplog)
    finally:
        await running.stop()
        await raw.stop()


async def test_cs3_data_server_that_stops_reading_is_503_and_the_body_kept(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.mesh.conftest import CS3_TOKEN

    caplog.set_level(logging.WARNING)
    raw = RawDav("stall")
    await raw.start()
    running = await start_gateway(tmp_path / "cs3")
    try:
        (running.gateway.root / "doc.odt").write_bytes(ORIGINAL)
        table = {"type": "cs3", "gateway": running.address, "timeout": 2}
        client = await aiohttp_client(make_app(tmp_path, {"reva": table}))
        path, token = await open_locked(client, "reva", "doc.odt", token_header=CS3_TOKEN)
        running.gateway.data_url = f"http://127.0.0.1:{raw.port}"
        body = bodies(8, seed=5)[6]  # 4 MiB: more than the socket buffers take
        raw.half = len(body) // 2
        started = time.monotonic()
        answer = await put(client, path, token, body)
        assert answer.status == 503, await answer.text()
        assert time.monotonic() - started < 15
        assert (running.gateway.root / "doc.odt").read_bytes() == ORIGINAL
        assert kept_digests(tmp_path / "state" / "recovery", None) == Counter([digest(body)])
        assert_clean_log(caplog)
    finally:
        await running.stop()
        await raw.stop()
