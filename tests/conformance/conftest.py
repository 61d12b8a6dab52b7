"""Shared fixtures of the conformance tests: Microsoft's proof-key vectors and test plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wopibridge.security.proof.source import ProofKeyAttrs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VECTORS_FILE = FIXTURES / "proofkeys" / "ms-test-vectors.json"
VALIDATOR_FIXTURES = FIXTURES / "wopi-validator"


def load_vectors() -> dict[str, Any]:
    return dict(json.loads(VECTORS_FILE.read_text(encoding="utf-8")))


def vector_attrs(data: dict[str, Any]) -> ProofKeyAttrs:
    key = data["discovery_proof_key"]
    names = ("value", "modulus", "exponent", "oldvalue", "oldmodulus", "oldexponent")
    return ProofKeyAttrs(**{name: key[name] for name in names})


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()
