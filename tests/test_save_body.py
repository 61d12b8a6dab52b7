"""The one reader of a save's body: whatever its upload does, the body is read to its end once
and its copy holds every byte exactly once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wopibridge.errors import PayloadTooLarge
from wopibridge.storage.tempfiles import TempFile
from wopibridge.wopi.saves.body import SaveBody

PARTS = [os.urandom(300_000) for _ in range(10)]


async def source(parts: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if fail_after is not None and i == fail_after:
            raise PayloadTooLarge("too large")
        await asyncio.sleep(0)
        yield part


async def test_an_upload_that_stops_early_leaves_the_rest_to_the_copy(tmp_path: Path) -> None:
    file = TempFile.create_sync(tmp_path)
    body = SaveBody(source(PARTS), file)
    taken = []
    async for chunk in body.stream():
        taken.append(chunk)
        if len(taken) == 3:
            break  # the storage answered and stopped reading
    await body.drain()
    assert body.complete and body.size == sum(map(len, PARTS))
    assert file.path.read_bytes() == b"".join(PARTS)
    assert taken == PARTS[:3]
    body.discard()
    assert not file.path.exists()


async def test_an_upload_cancelled_while_waiting_does_not_hold_the_body(tmp_path: Path) -> None:
    file = TempFile.create_sync(tmp_path)
    body = SaveBody(source(PARTS), file)

    async def upload() -> None:
        async for _ in body.stream():
            await asyncio.sleep(3600)  # a sender blocked on a server that reads nothing

    task = asyncio.create_task(upload())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(body.drain(), 10)
    assert file.path.read_bytes() == b"".join(PARTS)
    body.discard()


async def test_a_broken_body_reaches_the_upload_and_the_caller(tmp_path: Path) -> None:
    body = SaveBody(source(PARTS, fail_after=2), TempFile.create_sync(tmp_path))
    with pytest.raises(ConnectionAbortedError):
        async for _ in body.stream():
            pass
    with pytest.raises(PayloadTooLarge):
        await body.drain()
    assert not body.complete
    body.discard()
    assert not list(tmp_path.iterdir())


async def test_the_body_has_one_reader(tmp_path: Path) -> None:
    body = SaveBody(source(PARTS), None)
    await body.drain()
    assert body.size == sum(map(len, PARTS))
    with pytest.raises(RuntimeError):
        async for _ in body.stream():
            pass
