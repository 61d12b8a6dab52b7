"""Fake WOPI editors: Collabora Online, OnlyOffice and Microsoft Office for the web.

None of these editors can run here, so each class below is a **fake** that replays the
requests its editor sends, in the order and with the headers ``EDITORS.md`` documents (read
from CollaboraOnline/online ``wsd/wopi/WopiStorage.cpp``, ONLYOFFICE/server ``wopiClient.js``
and Microsoft's WOPI documentation). They sign every request with a proof key whose public half
the test serves in the editor's discovery document, as the real editors do.
"""

from __future__ import annotations

import base64
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


class ProofSigner:
    """A proof key pair, as an editor holds it; :meth:`discovery_element` is its public half."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def discovery_element(self) -> str:
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
        value, mod, exp = b64(blob).decode(), b64(modulus).decode(), b64(exponent).decode()
        return (
            f'<proof-key value="{value}" modulus="{mod}" exponent="{exp}" '
            f'oldvalue="{value}" oldmodulus="{mod}" oldexponent="{exp}"/>'
        )

    def headers(self, token: str, url: str) -> dict[str, str]:
        ticks = EPOCH_TICKS + int(time.time() * 10_000_000)
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
        proof = base64.b64encode(signature).decode()
        return {"X-WOPI-Proof": proof, "X-WOPI-ProofOld": proof, "X-WOPI-TimeStamp": str(ticks)}


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
    """What every fake editor does: call WOPISrc with the token, signed."""

    bearer = False
    extra: dict[str, str] = {}

    def __init__(
        self, http: aiohttp.ClientSession, app_url: str, token: str, signer: ProofSigner
    ) -> None:
        self.http = http
        self.wopisrc = wopisrc_of(app_url)
        self.token = token
        self.signer = signer

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
        sent = {**self.extra, **self.signer.headers(token, target), **(headers or {})}
        if self.bearer:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, target, headers=sent, data=data) as response:
            return Answer(response.status, dict(response.headers), await response.read())

    async def check_file_info(self) -> dict[str, Any]:
        answer = await self.call("GET")
        assert answer.status == 200, answer
        return answer.json()

    async def get_file(self) -> bytes:
        answer = await self.call("GET", "/contents")
        assert answer.status == 200, answer
        return answer.body

    async def override(self, override: str, **headers: str) -> Answer:
        return await self.call("POST", "", {"X-WOPI-Override": override, **headers})

    async def put_file(self, data: bytes, **headers: str) -> Answer:
        return await self.call("POST", "/contents", {"X-WOPI-Override": "PUT", **headers}, data)


class FakeCollabora(WopiEditorFake):
    """A fake Collabora Online: token in the query **and** ``Authorization: Bearer``,
    ``X-COOL-WOPI-ServerId`` on every request, LOCK sent again to refresh, X-COOL PutFile
    headers with the LastModifiedTime it last saw as ``X-COOL-WOPI-Timestamp``."""

    bearer = True
    extra = {"X-COOL-WOPI-ServerId": "4a1b2c3d"}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lock_id = "cool-lock-" + base64.b16encode(self.token[-6:].encode()).decode()
        self.last_modified = ""

    async def open(self) -> dict[str, Any]:
        info = await self.check_file_info()
        self.last_modified = info["LastModifiedTime"]
        await self.get_file()
        if info.get("SupportsLocks") and info.get("UserCanWrite"):
            answer = await self.override("LOCK", **{"X-WOPI-Lock": self.lock_id})
            assert answer.status == 200, answer
        return info

    async def refresh(self) -> Answer:
        return await self.override("LOCK", **{"X-WOPI-Lock": self.lock_id})

    async def save(
        self,
        data: bytes,
        *,
        overwrite: bool = False,
        exit_save: bool = False,
        autosave: bool = True,
    ) -> Answer:
        headers = {
            "X-WOPI-Lock": self.lock_id,
            "X-COOL-WOPI-IsModifiedByUser": "true",
            "X-COOL-WOPI-IsAutosave": "true" if autosave else "false",
            "X-COOL-WOPI-IsExitSave": "true" if exit_save else "false",
        }
        if not overwrite:
            headers["X-COOL-WOPI-Timestamp"] = self.last_modified
        answer = await self.put_file(data, **headers)
        if answer.status == 200:
            self.last_modified = answer.json()["LastModifiedTime"]
        return answer

    async def close(self) -> Answer:
        return await self.override("UNLOCK", **{"X-WOPI-Lock": self.lock_id})


class FakeOnlyOffice(WopiEditorFake):
    """A fake OnlyOffice Document Server: lock id = docId (the last WOPISrc segment),
    RefreshLock every 10 minutes, PutFile with ``X-WOPI-Lock``, ``X-WOPI-Editors`` and the
    X-LOOL header family, PutRelativeFile for Save As and conversions."""

    extra = {"X-WOPI-SessionContext": "oo-session"}

    @property
    def lock_id(self) -> str:
        return self.wopisrc.rstrip("/").rsplit("/", 1)[-1]

    async def open(self) -> dict[str, Any]:
        info = await self.check_file_info()
        self.info = info
        await self.get_file()
        if info.get("SupportsLocks") and (info.get("UserCanWrite") or info.get("SupportsUpdate")):
            answer = await self.override("LOCK", **{"X-WOPI-Lock": self.lock_id})
            assert answer.status == 200, answer
        return info

    async def refresh(self) -> Answer:
        return await self.override("REFRESH_LOCK", **{"X-WOPI-Lock": self.lock_id})

    async def save(self, data: bytes, *, exit_save: bool = False) -> Answer:
        return await self.put_file(
            data,
            **{
                "X-WOPI-Lock": self.lock_id,
                "X-WOPI-Editors": "ada@idp",
                "X-LOOL-WOPI-IsModifiedByUser": "true",
                "X-LOOL-WOPI-IsAutosave": "false",
                "X-LOOL-WOPI-IsExitSave": "true" if exit_save else "false",
            },
        )

    async def close(self) -> Answer:
        return await self.override("UNLOCK", **{"X-WOPI-Lock": self.lock_id})


class FakeMicrosoft(WopiEditorFake):
    """A fake Microsoft Office for the web, replaying WOPI validator-style flows: JSON-looking
    lock ids, UnlockAndRelock, GetLock, RefreshLock."""

    lock_id = '{"S":"ms-lock-1","F":0,"E":2,"M":"Word"}'
    new_lock_id = '{"S":"ms-lock-2","F":0,"E":2,"M":"Word"}'
