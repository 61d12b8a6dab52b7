"""Proof keys read from real discovery documents (fixtures copied with their licences)."""

from __future__ import annotations

import pytest

from wopibridge.security.proof.http import parse_proof_key
from wopibridge.security.proof.signature import ProofKeys, same_key

from .conftest import FIXTURES, load_vectors, vector_attrs

DISCOVERY = FIXTURES / "discovery"


def test_microsoft_discovery_holds_the_vector_keys() -> None:
    attrs = parse_proof_key((DISCOVERY / "msoffice-oos.xml").read_bytes())
    assert attrs is not None
    parsed = ProofKeys.from_attrs(attrs)
    expected = ProofKeys.from_attrs(vector_attrs(load_vectors()))
    assert parsed.fingerprint() == expected.fingerprint()


def test_collabora_style_proof_key() -> None:
    attrs = parse_proof_key((DISCOVERY / "collabora-proof-key.xml").read_bytes())
    assert attrs is not None and attrs.value and attrs.oldvalue
    keys = ProofKeys.from_attrs(attrs)  # refuses a value that disagrees with modulus/exponent
    assert keys.old is not None and not same_key(keys.current, keys.old)


@pytest.mark.parametrize("name", ["collabora-runtime.xml", "collabora-template.xml"])
def test_discovery_without_proof_key(name: str) -> None:
    assert parse_proof_key((DISCOVERY / name).read_bytes()) is None


def test_onlyoffice_value_equals_oldvalue() -> None:
    attrs = parse_proof_key((DISCOVERY / "onlyoffice-runtime.xml").read_bytes())
    assert attrs is not None
    keys = ProofKeys.from_attrs(attrs)
    assert keys.old is not None and same_key(keys.current, keys.old)


def test_malformed_discovery() -> None:
    with pytest.raises(ValueError, match="not well-formed"):
        parse_proof_key(b"<wopi-discovery><proof-key")
