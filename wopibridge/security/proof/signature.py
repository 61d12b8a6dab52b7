"""Proof keys: the pure part of checking that a WOPI request really comes from the editor.

An editor that publishes a ``<proof-key>`` in its discovery document signs every WOPI request
with the matching private key (RSA PKCS#1 v1.5, SHA-256). The signed bytes bind the access
token, the full request URL (upper-cased) and a .NET-ticks timestamp. This module turns the
discovery attributes into RSA public keys (both the ``modulus``/``exponent`` form and the
``value`` CryptoAPI PUBLICKEYBLOB form), builds the signed bytes, applies the three
acceptance rules and judges timestamp freshness against an injectable clock. It does no I/O,
so it is tested with Microsoft's published vectors alone.

Signing helpers (:func:`sign`, :func:`capi_blob`) live here too: the conformance runner signs
its requests with them, and tests use them to play an editor.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from wopibridge.security.proof.source import ProofKeyAttrs

#: .NET ``DateTime.Ticks`` of 1970-01-01T00:00:00Z (100 ns units since 0001-01-01).
TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000
TICKS_PER_SECOND = 10_000_000
#: Requests signed longer ago than this are refused (WOPI: 20 minutes).
MAX_AGE_SECONDS = 20 * 60

# CryptoAPI PUBLICKEYBLOB constants (BLOBHEADER + RSAPUBKEY).
_PUBLICKEYBLOB = 0x06
_CUR_BLOB_VERSION = 0x02
_CALG_RSA_KEYX = 0x0000A400
_CALG_RSA_SIGN = 0x00002400
_RSA1 = b"RSA1"
_CAPI_HEADER = struct.Struct("<BBHI4sII")

Clock = Callable[[], float]


class ProofKeyError(ValueError):
    """A discovery ``<proof-key>`` attribute does not hold a usable RSA public key."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProofKeyError(f"{what} is not valid base64") from None


def key_from_modulus(modulus: str, exponent: str) -> rsa.RSAPublicKey:
    """The key of the ``modulus``/``exponent`` attributes (base64 big-endian integers)."""
    n = int.from_bytes(_b64decode(modulus, "modulus"), "big")
    e = int.from_bytes(_b64decode(exponent, "exponent"), "big")
    if n < 3 or e < 3:
        raise ProofKeyError("modulus or exponent is too small")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise ProofKeyError(f"not an RSA public key ({exc})") from None


def key_from_capi_blob(value: str) -> rsa.RSAPublicKey:
    """The key of a ``value`` attribute: a base64 CryptoAPI PUBLICKEYBLOB.

    Layout: BLOBHEADER (type 0x06, version 0x02, reserved, algorithm id), RSAPUBKEY (magic
    ``RSA1``, bit length, public exponent), then the modulus, little-endian.
    """
    blob = _b64decode(value, "value")
    if len(blob) < _CAPI_HEADER.size:
        raise ProofKeyError("value is too short for a PUBLICKEYBLOB")
    btype, version, _reserved, alg, magic, bitlen, exponent = _CAPI_HEADER.unpack_from(blob)
    if btype != _PUBLICKEYBLOB or version != _CUR_BLOB_VERSION or magic != _RSA1:
        raise ProofKeyError("value is not an RSA PUBLICKEYBLOB")
    if alg not in (_CALG_RSA_KEYX, _CALG_RSA_SIGN):
        raise ProofKeyError("value is not an RSA key blob")
    modulus = blob[_CAPI_HEADER.size :]
    if bitlen % 8 or len(modulus) != bitlen // 8:
        raise ProofKeyError("value has a modulus of the wrong length")
    try:
        return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()
    except ValueError as exc:
        raise ProofKeyError(f"not an RSA public key ({exc})") from None


def capi_blob(key: rsa.RSAPublicKey) -> str:
    """The base64 PUBLICKEYBLOB of a public key, as discovery's ``value`` attribute holds it."""
    numbers = key.public_numbers()
    size = (key.key_size + 7) // 8
    header = _CAPI_HEADER.pack(
        _PUBLICKEYBLOB, _CUR_BLOB_VERSION, 0, _CALG_RSA_KEYX, _RSA1, size * 8, numbers.e
    )
    return base64.b64encode(header + numbers.n.to_bytes(size, "little")).decode("ascii")


def modulus_exponent(key: rsa.RSAPublicKey) -> tuple[str, str]:
    """The base64 big-endian ``modulus`` and ``exponent`` attributes of a public key."""
    numbers = key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return base64.b64encode(n).decode("ascii"), base64.b64encode(e).decode("ascii")


def _one_key(value: str, modulus: str, exponent: str) -> rsa.RSAPublicKey | None:
    if modulus and exponent:
        return key_from_modulus(modulus, exponent)
    if value:
        return key_from_capi_blob(value)
    return None


def same_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


@dataclass(frozen=True)
class ProofKeys:
    """The current and (optional) old public key of one editor."""

    current: rsa.RSAPublicKey
    old: rsa.RSAPublicKey | None = None

    @classmethod
    def from_attrs(cls, attrs: ProofKeyAttrs) -> ProofKeys:
        """Load the keys of a ``<proof-key>`` element.

        ``modulus``/``exponent`` is preferred when present; when both forms are given they
        must hold the same key, since a mismatch means a broken discovery document.
        """
        current = _one_key(attrs.value, attrs.modulus, attrs.exponent)
        if current is None:
            raise ProofKeyError("the proof-key element has no current key")
        both = bool(attrs.value and attrs.modulus and attrs.exponent)
        if both and not same_key(current, key_from_capi_blob(attrs.value)):
            raise ProofKeyError("value and modulus/exponent hold different keys")
        old = _one_key(attrs.oldvalue, attrs.oldmodulus, attrs.oldexponent)
        return cls(current=current, old=old)

    def fingerprint(self) -> tuple[int, int | None]:
        """Compares two key sets cheaply (did a refetch bring new keys?)."""
        old = self.old.public_numbers().n if self.old is not None else None
        return self.current.public_numbers().n, old


def signed_bytes(access_token: str, url: str, timestamp: int) -> bytes:
    """The bytes an editor signs: token, upper-cased URL and timestamp, each length-prefixed."""
    token = access_token.encode("utf-8")
    target = url.upper().encode("utf-8")
    return b"".join(
        (
            struct.pack(">i", len(token)),
            token,
            struct.pack(">i", len(target)),
            target,
            struct.pack(">i", 8),
            struct.pack(">q", timestamp),
        )
    )


def verify_signature(key: rsa.RSAPublicKey, data: bytes, signature: str) -> bool:
    """True when ``signature`` (base64) is ``data`` signed with the key's private half."""
    if not signature:
        return False
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_proof(keys: ProofKeys, data: bytes, proof: str, proof_old: str) -> str | None:
    """Apply WOPI's acceptance rules; return which one matched, ``None`` when none did.

    Accepted: ``X-WOPI-Proof`` with the current key; ``X-WOPI-ProofOld`` with the current key
    (the editor rotated, we have not refetched yet); ``X-WOPI-Proof`` with the old key (we
    refetched, the editor's machine still signs with the previous key). ``X-WOPI-ProofOld``
    with the old key is *not* accepted.
    """
    if verify_signature(keys.current, data, proof):
        return "proof/current"
    if proof_old and verify_signature(keys.current, data, proof_old):
        return "proof-old/current"
    if keys.old is not None and verify_signature(keys.old, data, proof):
        return "proof/old"
    return None


def ticks_from_unix(seconds: float) -> int:
    return TICKS_AT_UNIX_EPOCH + round(seconds * TICKS_PER_SECOND)


def unix_from_ticks(ticks: int) -> float:
    return (ticks - TICKS_AT_UNIX_EPOCH) / TICKS_PER_SECOND


def parse_timestamp(text: str) -> int | None:
    """``X-WOPI-TimeStamp`` as an int, ``None`` when it is not a plain decimal number."""
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value < 2**63 else None


def is_fresh(timestamp: int, clock: Clock = time.time, max_age: float = MAX_AGE_SECONDS) -> bool:
    """True unless the timestamp is more than ``max_age`` old (or as far in the future)."""
    age = clock() - unix_from_ticks(timestamp)
    return -max_age <= age <= max_age


def sign(key: rsa.RSAPrivateKey, access_token: str, url: str, timestamp: int) -> str:
    """The base64 proof an editor holding ``key`` would send for this request."""
    signature = key.sign(
        signed_bytes(access_token, url, timestamp), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")
