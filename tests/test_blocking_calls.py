"""No request waits on the event loop for the local folder's file system.

The folder a fleet shares is an NFS or CephFS mount, where one ``stat`` can take seconds. The
local storage's calls about files (stat, ``lstat`` of a path's folders, the id on the file) are
made through its :class:`~wopibridge.storage.local.tree.FileSystem`, here replaced by one as
slow as a stalled mount; the requests that need it wait, the others (``/health``) do not.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.wopi import open_file
from wopibridge.app import create_app
from wopibridge.config import Settings
from wopibridge.storage.factory import STORAGES
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.local.tree import FileSystem
from wopibridge.storage.offload import Offload

DELAY = 1.0


class SlowFileSystem(FileSystem):
    """Every call sleeps first, in the calling thread, as a stalled mount would."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def _wait(self) -> None:
        self.calls += 1
        time.sleep(self.delay)

    def stat(self, path: Path | str) -> Any:
        self._wait()
        return super().stat(path)

    def lstat(self, path: Path | str) -> Any:
        self._wait()
        return super().lstat(path)

    def read_id(self, path: Path) -> str | None:
        self._wait()
        return super().read_id(path)


def local_storage(client: TestClient[Any, Any]) -> LocalStorage:
    storage: Any = client.app[STORAGES].get("local")
    storage = getattr(storage, "inner", storage)  # under the timing wrapper
    assert isinstance(storage, LocalStorage)
    return storage


@pytest.fixture
async def client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], data_dir: Path
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(make_settings()))  # type: ignore[no-any-return]


async def test_a_slow_stat_does_not_hold_health(
    client: TestClient[Any, Any], data_dir: Path
) -> None:
    (data_dir / "doc.docx").write_bytes(b"content")
    opened = await open_file(client, "doc.docx")
    slow = local_storage(client).fs = SlowFileSystem(DELAY)

    started = time.monotonic()
    info = asyncio.create_task(opened.check_file_info())
    while slow.calls == 0:  # the CheckFileInfo is inside its stat now
        assert time.monotonic() - started < 5, "CheckFileInfo never reached the file system"
        await asyncio.sleep(0.01)
    asked = time.monotonic()
    resp = await client.get("/health")
    answered = time.monotonic() - asked
    assert resp.status == 200
    assert not info.done()
    assert answered < DELAY / 2, f"/health waited {answered:.2f} s behind a stat"
    assert (await info)["Size"] == 7
    # the slow path was the one taken (a stat made elsewhere would have been quick)
    assert time.monotonic() - started >= DELAY


async def test_no_slow_callback_over_a_request_mix(
    client: TestClient[Any, Any], data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio's debug mode names every callback that holds the loop longer than
    ``slow_callback_duration``; with every file system call slowed past it, none may."""
    (data_dir / "a.docx").write_bytes(b"a")
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "b.docx").write_bytes(b"b")
    opened = await open_file(client, "a.docx")
    storage = local_storage(client)
    storage.fs = SlowFileSystem(0.2)
    storage._seen.clear()  # the map and the id check are asked again, not only the stat
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.1
    loop.set_debug(True)
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            assert (await opened.check_file_info())["Size"] == 1
            assert (await opened.lock("L1")).status == 200
            assert (await opened.put_file(b"new bytes", lock="L1")).status == 200
            resp = await opened.get_file()
            assert await resp.read() == b"new bytes"
            assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200
            other = await open_file(client, "sub/b.docx")  # resolved by path
            assert (await other.check_file_info())["BaseFileName"] == "b.docx"
    finally:
        loop.set_debug(False)
    slow = [r.getMessage() for r in caplog.records if "took" in r.getMessage()]
    assert not slow, slow
    assert isinstance(storage.fs, SlowFileSystem) and storage.fs.calls > 5


async def test_the_offload_is_bounded_and_hands_back_results_and_errors() -> None:
    offload = Offload("test", threads=2)
    release = threading.Event()
    try:
        assert await offload.run(lambda: 41 + 1) == 42
        with pytest.raises(ZeroDivisionError):
            await offload.run(lambda: 1 / 0)
        # quick calls, many at once: all run, on one thread (more would only contend for the GIL)
        results = await asyncio.gather(*(offload.run(lambda i=i: i) for i in range(50)))
        assert results == list(range(50))
        assert len(offload._threads) == 1
        # a call stuck on a hung mount: the calls behind it get a thread of their own
        first = offload.run(lambda: release.wait(10))
        assert await asyncio.wait_for(offload.run(lambda: "behind"), 2) == "behind"
        assert len(offload._threads) == 2
        # every thread stuck: no thread past the bound; the call waits, and runs once freed
        second = offload.run(lambda: release.wait(10))
        waiting = offload.run(lambda: "waited")
        await asyncio.sleep(0.2)
        assert len(offload._threads) == 2 and not waiting.done()
        release.set()
        assert await asyncio.wait_for(asyncio.gather(first, second, waiting), 5) == [
            True,
            True,
            "waited",
        ]
        # a caller that stops waiting does not lose the thread for the others
        stuck = offload.run(lambda: time.sleep(0.2))
        stuck.cancel()
        assert await offload.run(lambda: "after") == "after"
    finally:
        release.set()
        await offload.close()
    assert not offload._threads
