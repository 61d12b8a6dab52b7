"""A temporary file is written behind its writer: the next chunks are read while the last ones
go to disk, with a bounded number of batches waiting, and a failed write is never lost."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from wopibridge.storage.tempfiles import WRITE_AHEAD, TempFile, read_chunks

BATCH = b"x" * 4096


class SlowDisk(TempFile):
    """Each write takes ``DELAY`` seconds in its thread, as a busy disk would."""

    DELAY = 0.05
    fail_at: int | None = None

    def _write_at(self, fd: int, chunks: list[bytes]) -> None:
        time.sleep(self.DELAY)
        if self.fail_at is not None and self.size >= self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._write_at(fd, chunks)


async def test_writes_overlap_the_caller_and_stay_bounded(tmp_path: Path) -> None:
    temp = SlowDisk.create_sync(tmp_path)
    batches = 12
    started = time.monotonic()
    returned = []
    for i in range(batches):
        await temp.write([bytes([65 + i]) * 4096])
        returned.append(time.monotonic() - started)
        assert temp._behind is not None and temp._behind.qsize() <= WRITE_AHEAD
    # the first writes returned before the disk took them
    assert returned[0] < SlowDisk.DELAY / 2
    assert temp.size < batches * 4096
    await temp.sync()
    assert temp.size == batches * 4096
    data = temp.path.read_bytes()
    assert data == b"".join(bytes([65 + i]) * 4096 for i in range(batches))
    temp.discard()


async def test_a_failed_write_is_raised_by_sync(tmp_path: Path) -> None:
    temp = SlowDisk.create_sync(tmp_path)
    temp.fail_at = 2 * 4096
    with pytest.raises(OSError) as failed:
        for _ in range(2 * WRITE_AHEAD + 6):
            await temp.write([BATCH])
        await temp.sync()
    assert failed.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        await temp.sync()
    temp.discard()
    assert not temp.path.exists()


async def test_discard_drops_the_writes_not_started(tmp_path: Path) -> None:
    temp = SlowDisk.create_sync(tmp_path)
    for _ in range(WRITE_AHEAD + 1):
        await temp.write([BATCH])
    temp.discard()
    assert temp.closed and not temp.path.exists()
    time.sleep(SlowDisk.DELAY * 2)  # the write running in its thread ends on its own


async def test_a_staged_file_is_read_one_chunk_ahead(tmp_path: Path) -> None:
    """The chunks a staged save is sent from: all of them, in order, and a reader that stops
    early leaves no read behind that anyone must wait for."""
    path = tmp_path / "staged"
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    assert b"".join([chunk async for chunk in read_chunks(path, 4096)]) == data
    chunks = read_chunks(path, 4096)
    first = await chunks.__anext__()
    await chunks.aclose()
    assert first == data[:4096]


async def test_batches_behind_a_failed_write_are_handed_back_unwritten(tmp_path: Path) -> None:
    """A copy moved elsewhere after a full disk (the save body's fall-back) gets every byte:
    what landed, then the failed batch and every one queued behind it, in order."""
    temp = SlowDisk.create_sync(tmp_path)
    temp.fail_at = 2 * 4096
    sent: list[bytes] = []
    with pytest.raises(OSError):
        for i in range(2 * WRITE_AHEAD + 6):
            batch = bytes([65 + i]) * 4096
            await temp.write([batch])
            sent.append(batch)
    unwritten = await temp.take_unwritten()
    landed = temp.path.read_bytes()[: temp.size]
    assert landed + b"".join(b"".join(batch) for batch in unwritten) == b"".join(sent)
    assert await temp.take_unwritten() == []
    temp.discard()
