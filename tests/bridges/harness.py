"""A wopibridge application with the bridge, driven over HTTP, plus a polling wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.wopi import IOP_SECRET, TOKEN_SECRET
from wopibridge.app import create_app
from wopibridge.bridge.keys import BRIDGE
from wopibridge.config import Settings, load_settings
from wopibridge.locks.keys import LOCKS
from wopibridge.security.keys import TOKENS
from wopibridge.storage.base import FileStat
from wopibridge.storage.factory import STORAGES
from wopibridge.storage.local import LocalStorage


def bridge_settings(
    tmp: Path, apps: Mapping[str, Mapping[str, Any]], locks: str = "memory://"
) -> Settings:
    env = {
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp / "state"),
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp / "data"),
        "WOPIBRIDGE_LOCKS_URL": locks,
        "WOPIBRIDGE_LOCKS_PREFIX": f"bridge-test-{abs(hash(str(tmp)))}:",
        "WOPIBRIDGE_SECURITY_TOKEN_SECRET": TOKEN_SECRET,
        "WOPIBRIDGE_SECURITY_IOP_SECRET": IOP_SECRET,
    }
    for name, table in apps.items():
        for key, value in table.items():
            env[f"WOPIBRIDGE_APPS_{name.upper()}_{key.upper()}"] = str(value)
    return load_settings(env=env)


def build_app(settings: Settings) -> web.Application:
    """The real application, as ``wopibridge serve`` builds it."""
    return create_app(settings)


@dataclass
class Host:
    """One running wopibridge with the bridge, and the means to act as a user."""

    client: TestClient
    app: web.Application
    root: Path

    @property
    def storage(self) -> LocalStorage:
        return self.app[STORAGES].get("local")  # type: ignore[return-value]

    async def put_file(self, name: str, content: bytes) -> FileStat:
        (self.root / name).write_bytes(content)
        return await self.storage.resolve(name)

    def token(
        self,
        stat: FileStat,
        *,
        mode: str = "edit",
        user: str = "u1",
        name: str = "Ann",
        app: str = "",
    ) -> str:
        token, _ = self.app[TOKENS].mint(
            file_id=f"local.{stat.file_id}",
            user_id=user,
            user_name=name,
            app=app,
            mode=mode,  # type: ignore[arg-type]
        )
        return token

    async def open(self, stat: FileStat, app: str, **kw: Any) -> tuple[int, str]:
        """The browser's form POST; the status and the redirect target (or the body)."""
        token = self.token(stat, **kw)
        response = await self.client.post(
            f"/wopi/bridge/open?app={app}&WOPISrc=http%3A%2F%2Fx%2Fwopi%2Ffiles%2Flocal.{stat.file_id}",
            data={"access_token": token, "access_token_ttl": "0"},
            allow_redirects=False,
        )
        body = (
            response.headers.get("Location", "")
            if response.status == 303
            else await response.text()
        )
        return response.status, body

    async def webhook(self, docid: str, stat: FileStat, *, close: bool, **kw: Any) -> int:
        token = self.token(stat, **kw)
        response = await self.client.post(
            f"/wopi/bridge/{docid}",
            params={
                "WOPISrc": f"http://x/wopi/files/local.{stat.file_id}",
                "access_token": token,
                "close": "true" if close else "false",
            },
            headers={"X-EFSS-Bridged-App": "codimd"},
        )
        return response.status

    async def lock_of(self, stat: FileStat) -> str:
        return await self.app[LOCKS].get(stat.identity)

    async def open_docs(self) -> list[str]:
        return await self.app[BRIDGE].store.docids()

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


async def wait_for(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> float:
    """Poll ``check`` until true; the seconds it took. Fails the test on timeout."""
    start = time.monotonic()
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)
