"""Sealing storage credentials inside access tokens, unreadable by the editor.

An access token is signed, not encrypted: the editor can read its claims. A user's storage
credential (the Reva token from ``openinapp``'s ``TokenHeader``) must travel with it, so it is
sealed with AES-256-GCM under a key derived from the token secret with HKDF-SHA256 (a separate
``info`` label, so the signing key and the sealing key never coincide). The WOPI file id is bound
as associated data: a sealed credential copied into a token for another file does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wopibridge.errors import Unauthorized

_INFO = b"wopibridge storage credential v1"
_NONCE = 12
CREDENTIAL_CLAIM = "sc"
"""The key of the sealed credential in an access token's ``extra`` claims."""


class CredentialBox:
    """Seals and opens short secrets with a key derived from the token secret."""

    def __init__(self, token_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            token_secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str, *, context: str) -> str:
        """The plaintext, or ``Unauthorized`` when the value was tampered with or misplaced."""
        try:
            raw = base64.urlsafe_b64decode((sealed + "=" * (-len(sealed) % 4)).encode("ascii"))
            if len(raw) <= _NONCE:
                raise ValueError("too short")
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
            return plain.decode()
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            raise Unauthorized("Invalid access token") from None
