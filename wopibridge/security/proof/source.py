"""Where proof keys come from: the ``<proof-key>`` element of an app's discovery document.

The discovery cache implements :class:`ProofKeySource`; the proof-key check only depends on
this protocol, so it stays testable without any network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProofKeyAttrs:
    """The raw attributes of a discovery ``<proof-key>`` element (absent ones are ``""``)."""

    value: str = ""
    modulus: str = ""
    exponent: str = ""
    oldvalue: str = ""
    oldmodulus: str = ""
    oldexponent: str = ""


class ProofKeySource(Protocol):
    async def proof_keys(self, app: str, *, refresh: bool = False) -> ProofKeyAttrs | None:
        """The keys of the app named in an access token (case-insensitive), ``None`` when the
        app is not configured or publishes none, :class:`~wopibridge.errors.Unavailable` when
        they cannot be known (the app's discovery was never reached): never ``None`` for that,
        or the check could not refuse what needs a proof. ``refresh`` asks for a refetch
        (rate-limited by the source) after a signature failed, so key rotation needs no
        restart."""
