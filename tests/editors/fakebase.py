"""What every fake WOPI editor shares: a proof-key signer, the answer of a call, and the call.

The editors themselves cannot run here; the classes in :mod:`.fake_collabora`,
:mod:`.fake_onlyoffice` and :mod:`.fakes` are **fakes** that send what each real client sends,
read from its source (each docstring names the function it follows).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

EPOCH_TICKS = 621355968000000000


def ticks_now() -> int:
    """``X-WOPI-TimeStamp``: .NET ticks (100 ns since 0001-01-01)."""
    return EPOCH_TICKS + int(time.time() * 10_000_000)


class ProofSigner:
    """A proof key pair, as an editor holds it; :meth:`discovery_element` is its public half.

    ``old`` is the previous key (``X-WOPI-ProofOld``); without one, the current key signs both
    headers, as a site that never rotated its key has it."""

    def __init__(self, old: ProofSigner | None = None) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.old = old

    def _attrs(self) -> tuple[str, str, str]:
        numbers = self.key.public_key().public_numbers()
        modulus = numbers.n.to_bytes(256, "big")
        exponent = numbers.e.to_bytes(3, "big")
        blob = (
            bytes([0x06, 0x02, 0, 0])
            + struct.pack("<I", 0x0000A400)
            + b"RSA1"
            + struct.pack("<II", 2048, numbers.e)
            + modulus[::-1]
        )
        b64 = base64.b64encode
        return b64(blob).decode(), b64(modulus).decode(), b64(exponent).decode()

    def discovery_element(self) -> str:
        value, mod, exp = self._attrs()
        old_value, old_mod, old_exp = (self.old or self)._attrs()
        return (
            f'<proof-key value="{value}" modulus="{mod}" exponent="{exp}" '
            f'oldvalue="{old_value}" oldmodulus="{old_mod}" oldexponent="{old_exp}"/>'
        )

    def sign(self, token: str, url: str, ticks: int) -> str:
        token_bytes, url_bytes = token.encode(), url.upper().encode()
        data = (
            struct.pack(">I", len(token_bytes))
            + token_bytes
            + struct.pack(">I", len(url_bytes))
            + url_bytes
            + struct.pack(">I", 8)
            + struct.pack(">q", ticks)
        )
        signature = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def headers(self, token: str, url: str) -> dict[str, str]:
        ticks = ticks_now()
        proof = self.sign(token, url, ticks)
        proof_old = self.old.sign(token, url, ticks) if self.old is not None else proof
        return {"X-WOPI-Proof": proof, "X-WOPI-ProofOld": proof_old, "X-WOPI-TimeStamp": str(ticks)}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def wopisrc_of(app_url: str) -> str:
    query = parse_qs(urlsplit(app_url).query)
    return (query.get("WOPISrc") or query["wopisrc"])[0]


class WopiEditorFake:
    """What every fake editor does: call WOPISrc with the token, signed when it holds a key."""

    bearer = False
    extra: dict[str, str] = {}

    def __init__(
        self,
        http: aiohttp.ClientSession,
        app_url: str,
        token: str,
        signer: ProofSigner | None,
    ) -> None:
        self.http = http
        self.wopisrc = wopisrc_of(app_url)
        self.token = token
        self.signer = signer

    def extra_headers(self) -> dict[str, str]:
        return dict(self.extra)

    def sign(self, token: str, target: str) -> dict[str, str]:
        return self.signer.headers(token, target) if self.signer is not None else {}

    async def call(
        self,
        method: str,
        suffix: str = "",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        *,
        url: str | None = None,
    ) -> Answer:
        target = url or f"{self.wopisrc}{suffix}?access_token={self.token}"
        token = parse_qs(urlsplit(target).query)["access_token"][0]
        sent = {**self.extra_headers(), **self.sign(token, target), **(headers or {})}
        if self.bearer:
            sent["Authorization"] = f"Bearer {token}"
        body: bytes | io.BytesIO | None = data
        if data is not None and len(data) > 1024 * 1024:  # streamed, with its Content-Length
            body = io.BytesIO(data)
        async with self.http.request(method, target, headers=sent, data=body) as response:
            return Answer(response.status, dict(response.headers), await response.read())

    async def check_file_info(self) -> dict[str, Any]:
        answer = await self.call("GET")
        assert answer.status == 200, answer
        return answer.json()

    async def get_file(self, **headers: str) -> bytes:
        answer = await self.call("GET", "/contents", headers)
        assert answer.status == 200, answer
        return answer.body

    async def override(self, override: str, **headers: str) -> Answer:
        return await self.call("POST", "", {"X-WOPI-Override": override, **headers})

    async def put_file(self, data: bytes, **headers: str) -> Answer:
        return await self.call("POST", "/contents", {"X-WOPI-Override": "PUT", **headers}, data)
