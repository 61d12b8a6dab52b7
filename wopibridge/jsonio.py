"""JSON out: one encoder for every response body and log line.

orjson, not the standard library: ``json.dumps`` builds a new C encoder object on every call,
which is most of its cost on the small documents this server writes many times a second. A
CheckFileInfo answer of 40 keys took 7.3 us against 0.56 us, an access-log line 3.0 us
against 0.27 us (``bench/observability_bench.py`` shows what that is worth per request).

orjson refuses a few things the standard encoder takes: an integer beyond 64 bits, a lone
surrogate (a path decoded with ``surrogateescape``), a non-string key. Those are rare, and go
to the standard library instead, so that nothing this server means to write is ever dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

_FALLBACK = json.JSONEncoder(ensure_ascii=False, default=str).encode


def dumps(data: Any) -> bytes:
    """``data`` as UTF-8 JSON on one line; values JSON does not know are written as ``str()``."""
    try:
        return orjson.dumps(data, default=str)
    except (orjson.JSONEncodeError, TypeError):
        return _FALLBACK(data).encode("utf-8", "backslashreplace")


def json_response(
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | CIMultiDict[str] | None = None,
) -> web.Response:
    """``web.json_response``, encoded by :func:`dumps`."""
    return web.Response(
        body=dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
