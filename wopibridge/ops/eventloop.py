"""The event loop ``wopibridge serve`` runs on: uvloop by default, asyncio's own on request.

uvloop (libuv, in C) runs the same aiohttp server with less of the interpreter on every
request: the loop's own turn, its timers and callbacks, and the socket transports are C instead
of Python. Measured with ``bench/instructions.py`` (callgrind, CheckFileInfo at the defaults,
instructions per request in user space), it took 13% off the whole request (607 k to 529 k on
asyncio's loop and on uvloop); ``docs/performance.md`` has the current figures.

``server.event_loop = "asyncio"`` keeps the standard loop (a platform without uvloop gets it
too, with a line in the log). The tests run most servers in-process on asyncio's loop and the
started ``wopibridge`` processes on uvloop, so both are exercised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("wopibridge.server")

T = TypeVar("T")
LOOPS = ("uvloop", "asyncio")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop ``choice`` names; ``None`` is asyncio's default."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: running on asyncio's own event loop")
            return None
        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """``asyncio.run(main)``, on the loop ``choice`` names."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop running now (the "listening on" line says it)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
