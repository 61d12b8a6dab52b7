"""Waiting for something that happens after the answer (lock files are written off the
request path), with a deadline that is part of what the test asserts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Poll ``check`` until it holds; fail if it does not within ``within`` seconds.
    Returns how long it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started
