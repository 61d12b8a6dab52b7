"""File descriptors used by threads live until those threads are done with them.

A save's body is written by a thread (``pwritev``) while the request's task waits. When that
task is cancelled and discards the file, the thread still runs; had the descriptor been closed
at once, the next ``open`` in the process would get its number and the thread would write the
body into that other file: a document being saved, a file being sent. And a read whose
request is cancelled while its thread opens the file must not leave the descriptor behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from wopibridge.storage import tempfiles
from wopibridge.storage.local import LocalStorage
from wopibridge.storage.local import reading as local
from wopibridge.storage.tempfiles import TempFile


@pytest.fixture
def slow_writes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """``pwritev`` in the temporary-file module waits 0.3 s; the event says one started."""
    started = threading.Event()
    real = os.pwritev

    def slow(fd: int, views: list[bytes | memoryview], offset: int) -> int:
        started.set()
        time.sleep(0.3)
        return real(fd, views, offset)

    monkeypatch.setattr(tempfiles.os, "pwritev", slow)
    return started


async def test_a_cancelled_write_never_lands_in_another_file(
    tmp_path: Path, slow_writes: threading.Event
) -> None:
    temp = TempFile.create_sync(tmp_path)
    writing = asyncio.ensure_future(temp.write([b"the body of somebody's save" * 100]))
    assert await asyncio.to_thread(slow_writes.wait, 5)
    writing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writing
    temp.discard()  # what a cancelled save does
    assert temp.closed and not temp.path.exists()
    other = tmp_path / "document.odt"
    other.write_bytes(b"")
    fd = os.open(other, os.O_RDWR)  # gets the lowest free number
    try:
        await asyncio.sleep(0.6)  # the write thread finishes meanwhile
    finally:
        os.close(fd)
    assert other.read_bytes() == b""
    assert temp._fd is None  # the thread closed the descriptor when it was done


async def test_a_write_queued_after_close_does_nothing(tmp_path: Path) -> None:
    temp = TempFile.create_sync(tmp_path)
    temp.close()
    with pytest.raises(OSError, match="closed"):
        await temp.write([b"late"])


async def test_writes_and_sync_still_land(tmp_path: Path) -> None:
    temp = TempFile.create_sync(tmp_path)
    await temp.write([b"one ", b"two "])
    await temp.write([b"three"])
    await temp.sync(0o640)
    assert temp.path.read_bytes() == b"one two three"
    assert temp.path.stat().st_mode & 0o777 == 0o640
    temp.discard()
    assert not temp.path.exists()


async def test_a_read_cancelled_while_opening_leaves_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetFile's open runs in a thread; a request cancelled meanwhile (a shutdown) must not
    leave the descriptor open behind it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_bytes(b"a")
    storage = LocalStorage("local", tmp_path / "data", tmp_path / "state")
    stat = await storage.resolve("a.txt")
    started = threading.Event()
    real = os.fstat

    def slow_fstat(fd: int) -> os.stat_result:
        started.set()
        time.sleep(0.3)
        return real(fd)

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(local.os, "fstat", slow_fstat)
    reading = asyncio.ensure_future(storage.open_read(stat.file_id))
    assert await asyncio.to_thread(started.wait, 5)
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    monkeypatch.undo()
    await asyncio.sleep(0.6)
    assert len(os.listdir("/proc/self/fd")) == before
    await storage.close()
