"""The pure proof-key code against Microsoft's published test vectors."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from typing import Any

import pytest

from wopibridge.security.proof import signature
from wopibridge.security.proof.source import ProofKeyAttrs

from .conftest import load_vectors, vector_attrs

VECTORS = load_vectors()["vectors"]
RULES = {
    "X-WOPI-Proof + current key": "proof/current",
    "X-WOPI-ProofOld + current key": "proof-old/current",
    "X-WOPI-Proof + old key": "proof/old",
    None: None,
}


def test_both_key_forms_give_the_same_keys(vectors: dict[str, Any]) -> None:
    key = vectors["discovery_proof_key"]
    assert signature.same_key(
        signature.key_from_capi_blob(key["value"]),
        signature.key_from_modulus(key["modulus"], key["exponent"]),
    )
    assert signature.same_key(
        signature.key_from_capi_blob(key["oldvalue"]),
        signature.key_from_modulus(key["oldmodulus"], key["oldexponent"]),
    )
    assert not signature.same_key(
        signature.key_from_capi_blob(key["value"]), signature.key_from_capi_blob(key["oldvalue"])
    )


def test_keys_load_from_either_form_alone(vectors: dict[str, Any]) -> None:
    attrs = vector_attrs(vectors)
    only_blob = ProofKeyAttrs(value=attrs.value, oldvalue=attrs.oldvalue)
    only_numbers = replace(attrs, value="", oldvalue="")
    a, b = signature.ProofKeys.from_attrs(only_blob), signature.ProofKeys.from_attrs(only_numbers)
    assert a.fingerprint() == b.fingerprint()


def test_blob_round_trip(vectors: dict[str, Any]) -> None:
    key = vectors["discovery_proof_key"]
    loaded = signature.key_from_modulus(key["modulus"], key["exponent"])
    assert signature.capi_blob(loaded) == key["value"]
    assert signature.modulus_exponent(loaded) == (key["modulus"], key["exponent"])


def test_disagreeing_forms_are_refused(vectors: dict[str, Any]) -> None:
    attrs = replace(vector_attrs(vectors), value=vector_attrs(vectors).oldvalue)
    with pytest.raises(signature.ProofKeyError):
        signature.ProofKeys.from_attrs(attrs)


@pytest.mark.parametrize(
    "value",
    ["not base64!", base64.b64encode(b"short").decode(), base64.b64encode(b"\x07" * 40).decode()],
)
def test_broken_blobs_are_refused(value: str) -> None:
    with pytest.raises(signature.ProofKeyError):
        signature.key_from_capi_blob(value)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector: dict[str, Any], vectors: dict[str, Any]) -> None:
    keys = signature.ProofKeys.from_attrs(vector_attrs(vectors))
    data = signature.signed_bytes(vector["access_token"], vector["url"], vector["timestamp"])
    assert hashlib.sha256(data).hexdigest() == vector["signed_bytes_sha256"]
    rule = signature.verify_proof(keys, data, vector["X-WOPI-Proof"], vector["X-WOPI-ProofOld"])
    assert rule == RULES[vector["validated_by"]]
    assert (rule is not None) == vector["expected_valid"]


def _tamperings(vector: dict[str, Any]) -> dict[str, tuple[str, str, int, str, str]]:
    token, url, stamp = vector["access_token"], vector["url"], vector["timestamp"]
    signature = bytearray(base64.b64decode(vector["X-WOPI-Proof"]))
    signature[10] ^= 0x01
    flipped = base64.b64encode(bytes(signature)).decode()
    p, old = vector["X-WOPI-Proof"], vector["X-WOPI-ProofOld"]
    return {
        "token": (token[:-1] + ("A" if token[-1] != "A" else "B"), url, stamp, p, old),
        "url": (token, url.replace("/wopi/files/", "/wopi/files/x"), stamp, p, old),
        "query": (token, url + "&x=1", stamp, p, old),
        "timestamp": (token, url, stamp + 1, p, old),
        "signature": (
            token,
            url,
            stamp,
            flipped,
            old if "ProofOld" not in str(vector["validated_by"]) else flipped,
        ),
        "proofold-with-old-key": (token, url, stamp, "", p),
    }


VALID = [v for v in VECTORS if v["expected_valid"]]


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_tampered_vectors_fail(vector: dict[str, Any], vectors: dict[str, Any]) -> None:
    keys = signature.ProofKeys.from_attrs(vector_attrs(vectors))
    for what, (token, url, stamp, p, old) in _tamperings(vector).items():
        if what == "proofold-with-old-key" and vector["validated_by"] != "X-WOPI-Proof + old key":
            continue
        data = signature.signed_bytes(token, url, stamp)
        assert signature.verify_proof(keys, data, p, old) is None, what


def test_url_comparison_ignores_case(vectors: dict[str, Any]) -> None:
    vector = VALID[0]
    keys = signature.ProofKeys.from_attrs(vector_attrs(vectors))
    data = signature.signed_bytes(
        vector["access_token"], vector["url"].lower(), vector["timestamp"]
    )
    assert signature.verify_proof(keys, data, vector["X-WOPI-Proof"], "") == "proof/current"


def test_freshness_with_an_injected_clock() -> None:
    stamp = VECTORS[0]["timestamp"]
    signed_at = signature.unix_from_ticks(stamp)
    assert signature.is_fresh(stamp, clock=lambda: signed_at + 19 * 60)
    assert not signature.is_fresh(stamp, clock=lambda: signed_at + 21 * 60)
    assert not signature.is_fresh(stamp, clock=lambda: signed_at - 21 * 60)
    assert not signature.is_fresh(stamp)  # the real clock: these vectors date from 2015


def test_ticks_conversion() -> None:
    assert signature.ticks_from_unix(0) == 621_355_968_000_000_000
    assert VECTORS[0]["timestamp_utc"].startswith("2015-04-25T20:16:01")
    assert round(signature.unix_from_ticks(VECTORS[0]["timestamp"])) == 1429992961


@pytest.mark.parametrize("text", ["", "abc", "-5", "1e9", "99999999999999999999", "١٢٣"])
def test_bad_timestamps(text: str) -> None:
    assert signature.parse_timestamp(text) is None
