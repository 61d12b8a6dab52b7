"""Document ids, bridge lock ids and conflict-copy names.

Every user of the same file in the same app must land in the same note or pad, on every
instance, so the document id is computed, not stored: a keyed hash of the app and the file's
identity at its storage. The key is derived from the token secret, so ids cannot be guessed
from a file's identity (an Etherpad pad is public to whoever knows its id) and are the same on
every instance sharing the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime

_DOCID = re.compile(r"^[A-Za-z0-9_-]{32}$")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
LOCK_PREFIX = "wopibridge-bridge:"


def derive_key(token_secret: str) -> bytes:
    """The document-id key: never the token secret itself."""
    return hmac.new(token_secret.encode(), b"wopibridge bridge document ids", "sha256").digest()


def document_id(key: bytes, app: str, identity: str) -> str:
    """32 URL-safe characters (192 bits) naming the document of ``identity`` in ``app``."""
    digest = hmac.new(key, f"{app}\0{identity}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def valid_document_id(docid: str) -> bool:
    return bool(_DOCID.match(docid))


def lock_id(docid: str) -> str:
    """The WOPI lock the bridge holds for a document (the same on every instance)."""
    return LOCK_PREFIX + docid


def conflict_name(name: str, user: str, when: datetime | None = None) -> str:
    """``<name> (conflict <user> <UTC time>).<ext>``: where a save that cannot go to the file
    goes instead, so nothing is lost."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H%M%S UTC")
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    who = _UNSAFE.sub("_", user).strip()[:64] or "unknown"
    return f"{stem} (conflict {who} {stamp}){ext}"
