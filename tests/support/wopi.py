"""A small WOPI client for tests: open a file through openinapp, then call operations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestClient

IOP_SECRET = "iop-secret-for-tests-0123456789"
TOKEN_SECRET = "token-secret-for-tests-0123456789"


@dataclass
class OpenedFile:
    client: TestClient[Any, Any]
    file_id: str
    token: str
    ttl_ms: int

    @property
    def path(self) -> str:
        return f"/wopi/files/{self.file_id}"

    async def op(
        self,
        override: str,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        token: str | None = None,
    ) -> ClientResponse:
        all_headers = {"X-WOPI-Override": override, **(headers or {})}
        return await self.client.post(
            self.path,
            params={"access_token": token or self.token},
            headers=all_headers,
            data=data,
        )

    async def check_file_info(self) -> dict[str, Any]:
        resp = await self.client.get(self.path, params={"access_token": self.token})
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())

    async def get_file(self, headers: dict[str, str] | None = None) -> ClientResponse:
        return await self.client.get(
            self.path + "/contents", params={"access_token": self.token}, headers=headers
        )

    async def put_file(
        self, data: bytes, lock: str | None = None, headers: dict[str, str] | None = None
    ) -> ClientResponse:
        all_headers = {"X-WOPI-Override": "PUT", **(headers or {})}
        if lock is not None:
            all_headers["X-WOPI-Lock"] = lock
        return await self.client.post(
            self.path + "/contents",
            params={"access_token": self.token},
            headers=all_headers,
            data=data,
        )

    async def lock(self, lock_id: str, old: str | None = None) -> ClientResponse:
        headers = {"X-WOPI-Lock": lock_id}
        if old is not None:
            headers["X-WOPI-OldLock"] = old
        return await self.op("LOCK", headers)


async def open_file(
    client: TestClient[Any, Any],
    fileid: str,
    viewmode: str = "VIEW_MODE_READ_WRITE",
    **params: str,
) -> OpenedFile:
    query = {
        "fileid": fileid,
        "viewmode": viewmode,
        "userid": "ann@idp.example",
        "username": "Ann Example",
        "appname": "Collabora",
        "appurl": "https://editor.example/cool.html?",
        **params,
    }
    resp = await client.get(
        "/wopi/iop/openinapp",
        params=query,
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    wopi_src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
    return OpenedFile(
        client=client,
        file_id=wopi_src.rsplit("/", 1)[1],
        token=body["form-parameters"]["access_token"],
        ttl_ms=int(body["form-parameters"]["access_token_ttl"]),
    )


async def open_remote(
    session: ClientSession, base: str, fileid: str, iop_secret: str = IOP_SECRET
) -> tuple[str, str]:
    """Open ``fileid`` for editing on a server at ``base`` (a started process): its WOPISrc
    and the access token, as an editor gets them from the web UI."""
    async with session.get(
        f"{base}/wopi/iop/openinapp",
        params={
            "fileid": fileid,
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u@idp",
            "username": "U",
            "appurl": "https://editor/x?",
        },
        headers={"Authorization": f"Bearer {iop_secret}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    wopi_src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
    return wopi_src, body["form-parameters"]["access_token"]
