"""The runner's own proof keys: signing requests, the proof-key mutators, a discovery server.

The runner plays the editor: it signs every request with a current and an old RSA key, and
serves ``/hosting/discovery`` publishing both, so the host under test can be pointed at it
(``[apps.<name>] discovery_url``) and trust exactly these keys. Keys are generated per run, or
kept in a file (``--keys``) so a host that cached them does not have to refetch.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wopibridge.security.proof.signature import capi_blob, modulus_exponent, sign, ticks_from_unix
from wopibridge.validator.plan import ProofMutation

#: What the validator sends for a deliberately broken proof (base64 of "INVALID").
INVALID_PROOF = base64.b64encode(b"INVALID").decode("ascii")
DISCOVERY_PATH = "/hosting/discovery"


@dataclass(frozen=True)
class RunnerKeys:
    current: rsa.RSAPrivateKey
    old: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> RunnerKeys:
        return cls(
            current=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            old=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> RunnerKeys:
        """Two PEM keys (current, then old) in one file, created with mode 0600 if absent."""
        if path.exists():
            blocks = path.read_bytes().split(b"-----END PRIVATE KEY-----")
            pems = [b + b"-----END PRIVATE KEY-----\n" for b in blocks if b.strip()]
            if len(pems) != 2:
                raise ValueError(f"{path} must hold two PEM private keys")
            loaded = [serialization.load_pem_private_key(p.strip() + b"\n", None) for p in pems]
            if not all(isinstance(k, rsa.RSAPrivateKey) for k in loaded):
                raise ValueError(f"{path} must hold RSA keys")
            return cls(current=loaded[0], old=loaded[1])  # type: ignore[arg-type]
        keys = cls.generate()
        data = b"".join(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            for k in (keys.current, keys.old)
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return keys

    def headers(self, token: str, url: str, timestamp: int | None = None) -> dict[str, str]:
        """``X-WOPI-Proof``/``ProofOld``/``TimeStamp`` an editor with these keys would send."""
        stamp = ticks_from_unix(time.time()) if timestamp is None else timestamp
        return {
            "X-WOPI-Proof": sign(self.current, token, url, stamp),
            "X-WOPI-ProofOld": sign(self.old, token, url, stamp),
            "X-WOPI-TimeStamp": str(stamp),
        }

    def discovery_xml(self) -> str:
        """A minimal discovery document: one app for ``.wopitest`` and the ``<proof-key>``."""
        value, old_value = capi_blob(self.current.public_key()), capi_blob(self.old.public_key())
        modulus, exponent = modulus_exponent(self.current.public_key())
        old_modulus, old_exponent = modulus_exponent(self.old.public_key())
        attrs = " ".join(
            f"{name}={quoteattr(text)}"
            for name, text in (
                ("oldvalue", old_value),
                ("oldmodulus", old_modulus),
                ("oldexponent", old_exponent),
                ("value", value),
                ("modulus", modulus),
                ("exponent", exponent),
            )
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            "<wopi-discovery>\n"
            '  <net-zone name="internal-http">\n'
            '    <app name="WopiTest" favIconUrl="http://wopitest.invalid/favicon.ico">\n'
            '      <action name="view" ext="wopitest" default="true" '
            'urlsrc="http://wopitest.invalid/view?"/>\n'
            '      <action name="edit" ext="wopitest" requires="locks,update" '
            'urlsrc="http://wopitest.invalid/edit?"/>\n'
            "    </app>\n"
            "  </net-zone>\n"
            f"  <proof-key {attrs}/>\n"
            "</wopi-discovery>\n"
        )


def parse_mutation_timestamp(text: str) -> int:
    """``Timestamp="2015-08-17T00:00:00Z"`` of a ProofKey mutator, as .NET ticks (UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ticks_from_unix(moment.timestamp())


def proof_headers(
    keys: RunnerKeys, token: str, url: str, mutation: ProofMutation | None
) -> dict[str, str]:
    """Signed headers for a request, then the plan's mutation applied (validator semantics).

    ``Synced`` honours ``MutateCurrent``/``MutateOld``; ``Behind`` sends the old key's proof
    as ``X-WOPI-Proof`` (the editor's machine has not rotated yet); ``Ahead`` sends the new
    proof as ``X-WOPI-ProofOld`` with an invalid current one (the host has not refetched).
    """
    stamp = None
    if mutation is not None and mutation.timestamp:
        stamp = parse_mutation_timestamp(mutation.timestamp)
    headers = keys.headers(token, url, stamp)
    if mutation is None:
        return headers
    relation = mutation.key_relation.lower()
    if relation == "behind":
        headers["X-WOPI-Proof"] = headers["X-WOPI-ProofOld"]
        headers["X-WOPI-ProofOld"] = INVALID_PROOF
    elif relation == "ahead":
        headers["X-WOPI-ProofOld"] = headers["X-WOPI-Proof"]
        headers["X-WOPI-Proof"] = INVALID_PROOF
    else:
        if mutation.mutate_current:
            headers["X-WOPI-Proof"] = INVALID_PROOF
        if mutation.mutate_old:
            headers["X-WOPI-ProofOld"] = INVALID_PROOF
    return headers


def discovery_app(keys: RunnerKeys) -> web.Application:
    document = keys.discovery_xml()

    async def discovery(request: web.Request) -> web.Response:
        return web.Response(text=document, content_type="text/xml")

    app = web.Application()
    app.router.add_get(DISCOVERY_PATH, discovery)
    return app


@asynccontextmanager
async def serve_discovery(keys: RunnerKeys, host: str, port: int) -> AsyncIterator[str]:
    """Serve the runner's discovery document; yields its URL."""
    runner = web.AppRunner(discovery_app(keys), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if port == 0 else port
        yield f"http://{host}:{bound}{DISCOVERY_PATH}"
    finally:
        await runner.cleanup()
