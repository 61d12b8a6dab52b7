"""What a validator sees of one response, and the state a test case saves between requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

#: State keys every test case starts with (the validator's names).
ORIGINAL_ACCESS_TOKEN = "OriginalAccessToken"
ORIGINAL_WOPISRC = "OriginalWopiSrc"
ORIGINAL_WOPI_ENDPOINT = "OriginalWopiEndpoint"
STATE_TOKEN = "$State:"

State = dict[str, str | None]


@dataclass
class Response:
    """A received response, or the transport error that prevented one (``status`` 0)."""

    status: int
    headers: CIMultiDictProxy[str] = field(default_factory=lambda: CIMultiDictProxy(CIMultiDict()))
    body: bytes = b""
    error: str = ""

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8-sig", errors="replace")

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; raises ``ValueError`` when it is not one."""
        if not self.body:
            raise ValueError("the response has no body")
        value = json.loads(self.text)
        if not isinstance(value, dict):
            raise ValueError("the response body is not a JSON object")
        return value


def select_token(document: dict[str, Any], path: str) -> Any:
    """A value by dotted path (``Name`` or ``A.B``), ``None`` when absent (JSONPath-lite)."""
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current
