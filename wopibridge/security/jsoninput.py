"""JSON from outside, parsed with a cap on size and nesting depth.

Python's ``json`` recurses once per nesting level, so ``[[[[…]]]]`` a few thousand levels
deep raises ``RecursionError``, which nothing expects and which ends as a 500 with a
traceback. Every JSON body a caller sends (``/wopi/open``) and every JSON document read from a
user's file (``.etherpad`` exports) goes through :func:`parse_json`, which measures the depth
on the raw bytes first and refuses what is too deep or too large with a 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from wopibridge.errors import BadRequest

MAX_DEPTH = 32
MAX_BODY = 64 * 1024

# A JSON string (escapes included) or one bracket; strings are skipped so that brackets
# inside them are not counted.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (not validated as JSON)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH, what: str = "The request body") -> Any:
    """``raw`` decoded; ``BadRequest`` when it is not UTF-8 JSON or nests deeper than allowed."""
    if nesting_depth(raw) > max_depth:
        raise BadRequest(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} is not valid JSON") from None


async def read_json(
    request: web.Request, *, max_bytes: int = MAX_BODY, max_depth: int = MAX_DEPTH
) -> Any:
    """A request's JSON body, read to its end but never past ``max_bytes``."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest(f"The request body is larger than {max_bytes} bytes")
    raw = bytearray()
    async for chunk in request.content.iter_any():
        raw += chunk
        if len(raw) > max_bytes:
            raise BadRequest(f"The request body is larger than {max_bytes} bytes")
    return parse_json(bytes(raw), max_depth=max_depth)
