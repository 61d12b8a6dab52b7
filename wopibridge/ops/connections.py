"""Connections are a bounded resource: a cap under the open-file limit, and quiet logs when
the limit is hit anyway.

Every connection holds a file descriptor. When the process runs out of them, ``accept()``
fails, the listening socket stays readable, and asyncio logs a traceback for each failed
accept: the instance stops answering and the log fills the disk. So each worker caps its
connections below the open-file limit it finds at start (keeping some descriptors for its
storages, Redis, logs and temporary files), closes the longest-idle connection to make room
for a new one, and logs ``accept()`` failures as one counted line a second.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

log = logging.getLogger("wopibridge.server")

#: Descriptors kept back from the connection cap: Redis and storage pools, temporary files
#: of saves in flight, logs, the SQLite indexes.
MIN_RESERVE = 64
#: The listen backlog. asyncio accepts up to this many connections in one go, and takes a
#: few turns of the loop to count them and to close the ones the cap evicts: the cap leaves
#: room for :data:`BATCHES_IN_FLIGHT` such batches.
BACKLOG = 64
BATCHES_IN_FLIGHT = 4


def open_file_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` of this process (``RLIM_INFINITY`` read as a large number)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, limit: int | None = None) -> int:
    """``server.max_connections``, lowered to leave an eighth of the open-file limit (at least
    :data:`MIN_RESERVE`) to everything else the process opens, and one accept batch
    batches of connections not counted yet."""
    limit = open_file_limit() if limit is None else limit
    reserve = max(MIN_RESERVE, limit // 8) + BACKLOG * BATCHES_IN_FLIGHT
    return max(1, min(configured, limit - reserve))


class RateLog:
    """One counted log line per ``interval`` for an event that may come in floods."""

    def __init__(self, message: str, interval: float = 1.0, level: int = logging.WARNING) -> None:
        self.message = message
        self.interval = interval
        self.level = level
        self.count = 0
        self.total = 0
        self._next = 0.0

    def record(self, detail: str = "") -> None:
        self.count += 1
        self.total += 1
        now = time.monotonic()
        if now >= self._next:
            log.log(
                self.level,
                "%s: %d in the last %.0f s (%d since start)%s",
                self.message,
                self.count,
                self.interval,
                self.total,
                f"; {detail}" if detail else "",
            )
            self.count = 0
            self._next = now + self.interval


def quiet_accept_failures(loop: asyncio.AbstractEventLoop) -> RateLog:
    """Make ``loop`` log its ``accept()`` failures (out of descriptors or memory) as one counted
    line a second instead of a traceback each; every other error goes to the previous handler.
    asyncio itself pauses accepting for a second after such a failure."""
    failures = RateLog("accept() failed, the process is out of open files or memory")
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        exc = context.get("exception")
        if message.startswith("socket.accept() out of system resource"):
            failures.record(str(getattr(exc, "strerror", "") or type(exc).__name__))
            return
        if "_start_serving" in repr(context.get("handle")) and isinstance(exc, OSError):
            # asyncio's retry of a failed accept, due after the socket closed (a stop)
            log.info("accepting again after a failed accept: the socket is closed (%s)", exc)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return failures
