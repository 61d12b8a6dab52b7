"""A short mutual exclusion on one file of an XRootD server, shared by every client of it.

XRootD has no compare-and-set on extended attributes (a set always overwrites) and ``mkdir``
of an existing folder succeeds, but opening a file with ``kXR_new`` is refused when the name
exists: that exclusive create is the server's one atomic test-and-set, so a guard is a small
empty file created that way beside the file it protects and removed when done. Every
wopibridge instance of every site that reaches the server through the same path takes the
same guard, so a lock's read-compare-write, and a save's last check before its ``mv``, happen
one at a time.

The guard is held for a few requests (milliseconds), never across an upload. One left by an
instance that died holding it is broken once it is :data:`STALE_SECONDS` old by the server's
clock: it is first moved to a name of its own (one ``mv`` succeeds, the others find nothing)
and then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator

from wopibridge.errors import Unavailable, WopiError
from wopibridge.storage.xrootd.client import XrdClient

#: the prefix of every name wopibridge keeps beside files (names.check_name reserves it)
RESERVED_PREFIX = ".~wb-"
#: a guard older than this was left by an instance that died holding it
STALE_SECONDS = 60.0
#: how long a request waits for a guard another request holds
WAIT_SECONDS = 10.0


def guard_name(key: str) -> str:
    """The guard's file name for ``key`` (a file id, or a name being given an id)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{RESERVED_PREFIX}guard-{digest}"


@contextlib.asynccontextmanager
async def guarded(client: XrdClient, folder: str, key: str) -> AsyncIterator[None]:
    """Hold the guard of ``key`` in the server folder ``folder`` (an absolute path)."""
    path = f"{folder.rstrip('/')}/{guard_name(key)}"
    await _acquire(client, path)
    try:
        yield
    finally:
        with contextlib.suppress(WopiError):
            await client.fs("rm", path)


async def _acquire(client: XrdClient, path: str) -> None:
    flags = client.flags
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.005
    while True:
        handle = client.new_file()
        answer = await handle.open(path, flags.OpenFlags.NEW, flags.AccessMode.UR)
        if answer.ok:
            await handle.close()
            return
        if not answer.exists:
            raise client.error(answer, what="lock")
        if await _broke_stale(client, path):
            continue
        if time.monotonic() > deadline:
            raise Unavailable(f"The file is busy on the storage {client.name}; try again")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _broke_stale(client: XrdClient, path: str) -> bool:
    """Remove the guard at ``path`` if it is stale; whether the way may be free now."""
    answer = await client.fs("stat", path)
    if not answer.ok:
        return answer.missing
    if time.time() - float(answer.response.modtime) < STALE_SECONDS:
        return False
    tomb = f"{path}.stale-{secrets.token_hex(6)}"
    moved = await client.fs("mv", path, tomb)
    if moved.ok:
        await client.fs("rm", tomb)
    return True
