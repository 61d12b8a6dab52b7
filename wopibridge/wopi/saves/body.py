"""The one reader of a save's body.

A PutFile body comes from the editor once and cannot be asked for again, yet it may be needed
twice: by the storage upload and, when the storage refuses it, by the copy that keeps the
user's work. :class:`SaveBody` is the only code that reads the request stream. It reads it to
its end whatever the storage does: a storage that answers early (a WebDAV server that sends
``423`` after ``100 Continue``), closes, resets or times out only stops being fed; the rest of
the body still lands in the copy and the editor's request is consumed completely.

- :meth:`SaveBody.drain` reads the (rest of the) body into the copy, if there is one.
- :meth:`SaveBody.stream` starts a pump task that reads the body, appends each batch to the
  copy, and hands each chunk to the upload through a small queue. The upload is just another
  reader of that queue: when it stops (cancelled, failed, done), the pump stops feeding it and
  goes on recording. No two consumers ever share one async iterator.

The copy is a :class:`~wopibridge.storage.tempfiles.TempFile`; each batch is a fresh list handed
to one write at an explicit offset, so no buffer outlives a cancelled write to be written again.
A copy that cannot be written (its folder is full) moves to the ``fallback`` file, when there is
one (the recovery folder, for a body staged beside its file on a full data disk): what was
written so far is copied over and the body goes on into it. When there is no fallback or it
fails too, the copy is given up and reported in :attr:`SaveBody.file_error`; the body is still
read and the upload still fed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

from wopibridge.storage.tempfiles import WRITE_BATCH, TempFile

log = logging.getLogger("wopibridge.body")

_END = object()
_BROKEN = object()
#: Chunks the pump may read ahead of the upload.
_QUEUE_DEPTH = 8
_COPY_BLOCK = 1024 * 1024

Fallback = Callable[[], Awaitable[TempFile | None]]


async def _move_content(old: TempFile, new: TempFile) -> None:
    """Copy what ``old`` holds so far into ``new`` (at most the upload limit, block by block)."""
    offset = 0
    while offset < old.size:
        block = await old.in_thread(functools.partial(_read_block, offset=offset))
        if not block:
            break
        await new.write([block])
        offset += len(block)


def _read_block(fd: int, *, offset: int) -> bytes:
    return os.pread(fd, _COPY_BLOCK, offset)


class SaveBody:
    def __init__(
        self,
        source: AsyncIterable[bytes],
        file: TempFile | None,
        *,
        fallback: Fallback | None = None,
    ) -> None:
        self._source = source.__aiter__()
        self.file = file
        self._fallback = fallback
        #: whether the copy moved to the fallback file (its first folder was full)
        self.fell_back = False
        self.size = 0
        self.complete = False
        #: why the body itself failed (too large, the editor disconnected), if it did
        self.error: Exception | None = None
        #: why the copy could not be written, if it could not
        self.file_error: OSError | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=_QUEUE_DEPTH)
        self._feeding = False
        self._task: asyncio.Task[None] | None = None
        self._read = False

    # -- the reader ----------------------------------------------------------------------

    async def _record(self, batch: list[bytes]) -> None:
        if self.file is None:
            return
        try:
            await self.file.write(batch)
        except OSError as exc:
            if not await self._fall_back(batch):
                self.file_error = exc
                self.file.discard()
                self.file = None

    async def _fall_back(self, batch: list[bytes]) -> bool:
        """Move the copy to the fallback file; ``False`` when there is none or it fails too."""
        if self._fallback is None or self.file is None:
            return False
        fallback, self._fallback = self._fallback, None
        new = await fallback()
        if new is None:
            return False
        try:
            await _move_content(self.file, new)
            await new.write(batch)
        except OSError:
            new.discard()
            return False
        self.file.discard()
        self.file = new
        self.fell_back = True
        return True

    async def _run(self) -> None:
        """Read the source to its end (or its failure): the only loop over the body."""
        self._read = True
        batch: list[bytes] = []
        pending = 0
        try:
            async for chunk in self._source:
                if not chunk:
                    continue
                self.size += len(chunk)
                if self.file is not None:
                    batch.append(chunk)
                    pending += len(chunk)
                    if pending >= WRITE_BATCH:
                        await self._record(batch)
                        batch, pending = [], 0
                if self._feeding:
                    await self._queue.put(chunk)
            if batch:
                await self._record(batch)
            self.complete = True
            if self._feeding:
                await self._queue.put(_END)
        except Exception as exc:
            self.error = exc
            if self._feeding:
                await self._queue.put(_BROKEN)

    def _stop_feeding(self) -> None:
        """The upload reads no more: empty the queue so a pump blocked on it moves on."""
        self._feeding = False
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- the two ways to use it ------------------------------------------------------------

    async def stream(self) -> AsyncIterator[bytes]:
        """The body for one upload, chunk by chunk, as the pump reads it."""
        if self._read:
            raise RuntimeError("the body was already read")
        self._feeding = True
        self._task = asyncio.create_task(self._run())
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if item is _BROKEN:
                    raise ConnectionAbortedError("the request body broke off")
                assert isinstance(item, bytes)
                yield item
        finally:
            self._stop_feeding()

    async def drain(self) -> None:
        """Read the body to its end (after an upload took what it took, or instead of one);
        raise the body's own failure, if it had one."""
        self._stop_feeding()
        if self._task is not None:
            await asyncio.shield(self._task)
        elif not self._read:
            await self._run()
        if self.error is not None:
            raise self.error

    def discard(self) -> None:
        """Give up the copy (the save landed, or the body was broken); stop a running pump."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.file is not None:
            self.file.discard()
            self.file = None

    async def aclose(self) -> None:
        self.discard()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
