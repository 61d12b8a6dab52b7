"""The event loop ``wopibridge serve`` runs on: asyncio's own by default, uvloop on request.

uvloop (libuv, in C) runs the same aiohttp server with less of the interpreter on every
request: the loop's turn, its timers and callbacks, and the socket transports are C instead of
Python. Measured with ``bench/instructions.py`` (callgrind, CheckFileInfo at the defaults,
instructions per request in user space) it took 13% off a small request (607 k to 529 k); by
CPU time per request, about 10%. uvloop has no ``loop.sendfile``, with which aiohttp's
``FileResponse`` hands a file to the kernel; without it aiohttp reads the file in a thread and
writes it through the transport, and a GetFile of 100 MiB took about 30% longer. GetFile
therefore does the kernel's sendfile itself on uvloop (:mod:`wopibridge.wopi.sendfile`).
asyncio's loop stays the default, the standard library's own;
a platform without uvloop falls back to it with a line in the log.
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
