"""Etherpad through the bridge, end to end: a real Etherpad 1.8.14, the bridge's HTTP routes,
the local storage and the lock store."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support.procs import free_port
from wopibridge.bridge.docid import lock_id
from wopibridge.bridge.keys import BRIDGE
from wopibridge.bridge.state import DocState
from wopibridge.config import SETTINGS
from wopibridge.instruments import INSTRUMENTS
from wopibridge.locks.keys import LOCKS
from wopibridge.storage.base import FileStat

from .etherpad_server import EtherpadServer
from .harness import IOP_SECRET, Host, wait_for

FAST = {"save_interval": 0.5, "unlock_delay": 0.5, "poll_interval": 0.1}


def etherpad_table(pad: EtherpadServer, **extra: Any) -> dict[str, Any]:
    return {"etherpad": {"url": pad.url, "apikey": pad.apikey, **FAST, **extra}}


async def pad_api(pad: EtherpadServer, method: str, **params: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{pad.url}/api/1.2.15/{method}", data={"apikey": pad.apikey, **params}
        ) as response,
    ):
        reply = await response.json()
    assert reply["code"] == 0, reply
    return reply["data"] or {}


def pad_of(url: str) -> str:
    return url.split("/p/")[1].split("?")[0]


async def test_edit_saved_after_interval_and_on_close(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("notes.txt", b"first line\n")
    status, url = await host.open(stat, "etherpad")
    assert status == 303 and url.startswith(f"{etherpad.url}/p/") and "userName=Ann" in url
    pad = pad_of(url)
    assert (await pad_api(etherpad, "getText", padID=pad))["text"] == "first line\n"
    assert await host.lock_of(stat) == lock_id(pad)

    await pad_api(etherpad, "setText", padID=pad, text="first line\nsecond line\n")
    took = await wait_for(lambda: host.read("notes.txt") == b"first line\nsecond line\n")
    assert took < 5
    assert await host.lock_of(stat) == lock_id(pad)  # still open: still locked
    metrics = host.app[INSTRUMENTS].registry
    await wait_for(lambda: metrics.get_sample_value("wopibridge_open_edit_sessions") == 1)

    await pad_api(etherpad, "setText", padID=pad, text="last words")
    assert await host.webhook(pad, stat, close=True) == 202
    await wait_for(lambda: host.read("notes.txt") == b"last words\n", timeout=3)
    await wait_for(_unlocked(host, stat), timeout=5)
    assert await host.open_docs() == []
    assert metrics.get_sample_value("wopibridge_bridge_saves_total", {"outcome": "saved"}) == 2
    await wait_for(lambda: metrics.get_sample_value("wopibridge_open_edit_sessions") == 0)


def _unlocked(host: Host, stat):
    async def check() -> bool:
        return await host.lock_of(stat) == ""

    return check


async def test_close_saves_at_once(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad, save_interval=60, unlock_delay=60))
    stat = await host.put_file("slow.txt", b"before\n")
    _, url = await host.open(stat, "etherpad")
    pad = pad_of(url)
    await pad_api(etherpad, "setText", padID=pad, text="after\n")
    assert await host.webhook(pad, stat, close=True) == 202
    took = await wait_for(lambda: host.read("slow.txt") == b"after\n", timeout=5)
    assert took < 2  # long before the 60 s save interval
    assert await host.lock_of(stat) == lock_id(pad)  # released only after unlock_delay


async def test_unchanged_content_is_never_written(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("same.txt", b"no newline at the end")
    _, url = await host.open(stat, "etherpad")
    pad = pad_of(url)
    # A new revision with the same text: the digest is unchanged, so nothing is written.
    await pad_api(etherpad, "setText", padID=pad, text="something else")
    await pad_api(etherpad, "setText", padID=pad, text="no newline at the end")
    await host.webhook(pad, stat, close=True)
    await wait_for(_unlocked(host, stat), timeout=5)
    assert (await host.storage.stat(stat.file_id)).version == stat.version


async def test_read_only_open(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("read.txt", b"read only\n")
    status, url = await host.open(stat, "etherpad", mode="view", name="Viewer")
    assert status == 303 and pad_of(url).startswith("r.")
    assert await host.lock_of(stat) == "" and await host.open_docs() == []
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{etherpad.url}/p/{pad_of(url)}/export/txt") as response,
    ):
        assert await response.text() == "read only\n"
    # While someone edits, readers see the live pad.
    _, edit_url = await host.open(stat, "etherpad")
    await pad_api(etherpad, "setText", padID=pad_of(edit_url), text="live\n")
    _, view_url = await host.open(stat, "etherpad", mode="view", user="u9")
    ro = await pad_api(etherpad, "getReadOnlyID", padID=pad_of(edit_url))
    assert pad_of(view_url) == ro["readOnlyID"]


async def test_two_users_on_one_pad(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("shared.txt", b"shared\n")
    _, url_a = await host.open(stat, "etherpad", user="ann", name="Ann")
    _, url_b = await host.open(stat, "etherpad", user="bob", name="Bob")
    pad = pad_of(url_a)
    assert pad_of(url_b) == pad and "userName=Bob" in url_b
    await pad_api(etherpad, "setText", padID=pad, text="shared\nby Ann and Bob\n")
    await host.webhook(pad, stat, close=True, user="ann")
    await wait_for(lambda: host.read("shared.txt") == b"shared\nby Ann and Bob\n")
    assert await host.lock_of(stat) == lock_id(pad)  # Bob is still in
    await host.webhook(pad, stat, close=True, user="bob")
    await wait_for(_unlocked(host, stat), timeout=5)


async def test_outside_change_goes_to_a_conflict_copy(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("c.txt", b"original\n")
    _, url = await host.open(stat, "etherpad", name="Ann")
    pad = pad_of(url)
    (host.root / "c.txt").write_bytes(b"changed outside\n")  # not through WOPI, not locked
    await pad_api(etherpad, "setText", padID=pad, text="edited in the pad\n")

    def copies() -> list[str]:
        return sorted(p.name for p in host.root.iterdir() if "(conflict Ann " in p.name)

    await wait_for(lambda: len(copies()) == 1)
    (name,) = copies()
    metrics = host.app[INSTRUMENTS].registry
    assert metrics.get_sample_value("wopibridge_conflict_copies_total", {"where": "storage"}) == 1
    saves = {"outcome": "conflict_copy"}
    assert metrics.get_sample_value("wopibridge_bridge_saves_total", saves) == 1
    assert name.startswith("c (conflict Ann ") and name.endswith(" UTC).txt")
    assert host.read(name) == b"edited in the pad\n"
    assert host.read("c.txt") == b"changed outside\n"
    # Later saves follow the copy; the original is no longer locked by the bridge.
    await pad_api(etherpad, "setText", padID=pad, text="more\n")
    await wait_for(lambda: host.read(name) == b"more\n")
    assert await host.lock_of(stat) == ""


async def test_etherpad_down_is_503_and_unlocked(make_host, tmp_path) -> None:
    table = {"etherpad": {"url": f"http://127.0.0.1:{free_port()}", "apikey": "k" * 16, **FAST}}
    host: Host = await make_host(table)
    stat = await host.put_file("down.txt", b"x")
    status, body = await host.open(stat, "etherpad")
    assert status == 503 and body == "Etherpad cannot be reached right now; please try again later"
    assert await host.lock_of(stat) == "" and await host.open_docs() == []


async def test_file_too_large(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad, max_size=10))
    stat = await host.put_file("big.txt", b"x" * 11)
    assert await host.open(stat, "etherpad") == (413, "The file is too large for etherpad")


@pytest.mark.parametrize("mode", ["edit", "view"])
async def test_bad_requests(make_host, etherpad: EtherpadServer, mode: str) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("x.docx", b"x")
    assert (await host.open(stat, "etherpad", mode=mode))[0] == 400
    assert (await host.open(stat, "nope", mode=mode)) == (404, "No bridged app is called 'nope'")
    response = await host.client.post(
        "/wopi/bridge/open?app=etherpad", data={"access_token": "bad"}
    )
    assert response.status == 401


async def test_lost_lock_goes_to_a_conflict_copy(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("l.txt", b"original\n")
    _, url = await host.open(stat, "etherpad", name="Ann")
    pad = pad_of(url)
    locks = host.app[LOCKS]
    # The bridge's lock is gone (e.g. expired) and another editor holds the file now.
    assert (await locks.unlock(stat.identity, lock_id(pad))).ok
    assert (await locks.lock(stat.identity, "another-editor")).ok
    await pad_api(etherpad, "setText", padID=pad, text="pad content\n")

    def copies() -> list[str]:
        return [p.name for p in host.root.iterdir() if "(conflict Ann " in p.name]

    await wait_for(lambda: len(copies()) == 1)
    assert host.read(copies()[0]) == b"pad content\n"
    assert host.read("l.txt") == b"original\n"
    assert await locks.get(stat.identity) == "another-editor"


async def test_opened_through_openinapp_like_reva(make_host, etherpad: EtherpadServer) -> None:
    """Reva's open request, then the browser's form POST of the token to the app-url."""
    host: Host = await make_host(etherpad_table(etherpad))
    await host.put_file("reva.txt", b"from Reva\n")
    public = host.app[SETTINGS].server.public_url
    response = await host.client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "reva.txt",
            "viewmode": "VIEW_MODE_READ_WRITE",
            "appname": "Etherpad",
            "appurl": f"{public}/wopi/bridge/open?app=etherpad",
            "userid": "ann@idp",
            "username": "Ann",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    app_url = body["app-url"]
    assert app_url.startswith(f"{public}/wopi/bridge/open?app=etherpad&WOPISrc=")
    opened = await host.client.post(
        app_url.removeprefix(public), data=body["form-parameters"], allow_redirects=False
    )
    assert opened.status == 303
    pad = pad_of(opened.headers["Location"])
    assert (await pad_api(etherpad, "getText", padID=pad))["text"] == "from Reva\n"


async def test_stopping_the_server_saves_open_documents(
    make_host, etherpad: EtherpadServer
) -> None:
    host: Host = await make_host(etherpad_table(etherpad, save_interval=60))
    stat = await host.put_file("stop.txt", b"before\n")
    _, url = await host.open(stat, "etherpad")
    await pad_api(etherpad, "setText", padID=pad_of(url), text="after\n")
    await wait_for(lambda: bool(host.app[BRIDGE].held))  # the save loop has it
    await host.client.close()  # the application's cleanup runs
    assert host.read("stop.txt") == b"after\n"


async def test_expired_lock_is_taken_again(make_host, etherpad: EtherpadServer) -> None:
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("e.txt", b"original\n")
    _, url = await host.open(stat, "etherpad")
    pad = pad_of(url)
    locks = host.app[LOCKS]
    assert (await locks.unlock(stat.identity, lock_id(pad))).ok  # as if it had expired
    await pad_api(etherpad, "setText", padID=pad, text="saved anyway\n")
    await wait_for(lambda: host.read("e.txt") == b"saved anyway\n")
    assert await locks.get(stat.identity) == lock_id(pad)
    assert [p.name for p in host.root.iterdir() if "conflict" in p.name] == []


async def test_save_whose_record_was_lost_stays_on_the_file(
    make_host, etherpad: EtherpadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record of a save is lost after the file was written (the instance died in between,
    or a Redis failover rolled the record back): the next save still goes onto the file, since
    the file holds the bridge's own write, not a change made outside it."""
    host: Host = await make_host(etherpad_table(etherpad))
    stat = await host.put_file("r.txt", b"v1\n")
    _, url = await host.open(stat, "etherpad", name="Ann")
    pad = pad_of(url)
    store, storage = host.app[BRIDGE].store, host.storage
    real_put, real_write = store.put, storage.write
    armed: list[bool] = []
    dropped: list[DocState] = []

    async def write(*args: Any, **kwargs: Any) -> FileStat:
        written = await real_write(*args, **kwargs)
        if not dropped:
            armed.append(True)
        return written

    async def put(state: DocState) -> None:
        if armed and not dropped:
            dropped.append(state)  # this record of the write never reaches the store
            return
        await real_put(state)

    monkeypatch.setattr(storage, "write", write)
    monkeypatch.setattr(store, "put", put)
    await pad_api(etherpad, "setText", padID=pad, text="v2\n")
    await wait_for(lambda: host.read("r.txt") == b"v2\n" and bool(dropped))
    record = await store.get(pad)
    assert record is not None and record.version == stat.version  # rolled back to v1's version

    await pad_api(etherpad, "setText", padID=pad, text="v3\n")
    await wait_for(lambda: host.read("r.txt") == b"v3\n")
    assert [p.name for p in host.root.iterdir() if "conflict" in p.name] == []
    assert await host.lock_of(stat) == lock_id(pad)
