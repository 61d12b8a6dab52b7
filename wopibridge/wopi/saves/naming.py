"""Whose a kept copy is, and the name it gets beside its file.

A kept copy belongs to a user by **id** (quota, index, the notice at their next open) and is
named after the user's display name, which is what the people who share the folder recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from wopibridge.wopi.names import fit_name

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe(text: str, limit: int) -> str:
    """``text`` with the characters no file name may hold replaced, cut to ``limit`` bytes
    (UTF-8, whole characters): a name is limited in bytes, and ``文`` takes three."""
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    return cleaned.encode()[:limit].decode("utf-8", "ignore") or "unknown"


def conflict_name(name: str, user: str, when: datetime) -> str:
    """``report.odt`` → ``report (conflict Ada Lovelace 2026-11-25 0532 UTC).odt``."""
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H%M UTC")
    suffix = f" (conflict {safe(user, 64)} {stamp}){ext}"
    # a name the host can serve in every mode, counted in bytes (see wopibridge.wopi.names)
    return fit_name(stem, suffix) or fit_name(stem + suffix, "") or "unknown"


@dataclass(frozen=True, slots=True)
class Owner:
    """The user a kept copy is kept for: ``user_id`` keys quota and index, ``user_name``
    (falling back to the id) names the copy."""

    user_id: str
    user_name: str = ""

    @property
    def label(self) -> str:
        return self.user_name or self.user_id
