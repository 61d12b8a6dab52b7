"""Whose a kept copy is, and the name it gets beside its file.

A kept copy belongs to a user by **id** (quota, index, the notice at their next open) and is
named after the user's display name, which is what the people who share the folder recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe(text: str, limit: int) -> str:
    """``text`` with the characters no file name may hold replaced, cut to ``limit``."""
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    return cleaned[:limit] or "unknown"


def conflict_name(name: str, user: str, when: datetime) -> str:
    """``report.odt`` → ``report (conflict Ada Lovelace 2026-11-25 0532 UTC).odt``."""
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H%M UTC")
    suffix = f" (conflict {safe(user, 64)} {stamp}){ext}"
    return stem[: max(1, 250 - len(suffix.encode()))] + suffix


@dataclass(frozen=True, slots=True)
class Owner:
    """The user a kept copy is kept for: ``user_id`` keys quota and index, ``user_name``
    (falling back to the id) names the copy."""

    user_id: str
    user_name: str = ""

    @property
    def label(self) -> str:
        return self.user_name or self.user_id
