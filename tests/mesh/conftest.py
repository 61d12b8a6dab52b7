"""Backends for the mesh tests: a real wsgidav server, the fake CS3 gateway, local storage.

Every backend is served from a local folder (``env.root``), so a test can prepare or inspect
files behind the storage's back, the way another client of the same storage would.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mesh.apachedav import ApacheDav
from tests.mesh.fakecs3 import FakeGateway, RunningGateway
from tests.support.procs import free_port, wait_for_port
from tests.support.xrootd import XrootdServer, require_client
from tests.support.xrootd import xrootd_server as running_xrootd
from wopibridge.storage.base import Storage

REPO = Path(__file__).resolve().parents[2]
DAV_USER, DAV_PASSWORD, DAV_TOKEN = "wopi", "dav-password", "ocm-shared-secret"
CS3_TOKEN, CS3_READER = "reva-user-token", "reva-reader-token"


def basic_auth() -> str:
    """The ``Authorization`` header of the test servers' user, for a plain WebDAV client."""
    return "Basic " + base64.b64encode(f"{DAV_USER}:{DAV_PASSWORD}".encode()).decode()


@dataclass
class DavServer:
    """A wsgidav process on a free loopback port serving ``root`` under ``/dav``."""

    root: Path
    fileids: bool = False
    hide_locks: bool = False
    trace_log: Path | None = None
    #: where the fake Nextcloud versions API keeps versions (``--nextcloud-versions``)
    nextcloud_versions: Path | None = None
    #: server quirks: ``no-etags``, ``ignore-preconditions``, ``etag-on-lock`` (davserver.py)
    quirks: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dav"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.mesh.davserver",
                "--port",
                str(self.port),
                "--root",
                str(self.root),
                "--user",
                DAV_USER,
                "--password",
                DAV_PASSWORD,
                "--token",
                DAV_TOKEN,
                *(["--fileids"] if self.fileids else []),
                *(["--hide-locks"] if self.hide_locks else []),
                *(["--trace-log", str(self.trace_log)] if self.trace_log else []),
                *(
                    ["--nextcloud-versions", str(self.nextcloud_versions)]
                    if self.nextcloud_versions
                    else []
                ),
                *(f"--{quirk}" for quirk in self.quirks),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def table(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "webdav",
            "url": self.url,
            "auth": "basic",
            "username": DAV_USER,
            "password": DAV_PASSWORD,
            "retries": 1,
            "timeout": 10,
            **extra,
        }


@pytest.fixture(scope="session")
def dav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    server = DavServer(tmp_path_factory.mktemp("dav"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def apache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheDav]:
    """Debian's Apache with mod_dav_fs (see :mod:`tests.mesh.apachedav`), for the session."""
    server = ApacheDav(tmp_path_factory.mktemp("apache") / "share", DAV_USER, DAV_PASSWORD)
    server.root.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["wsgidav", "apache"])
def any_dav_server(request: pytest.FixtureRequest) -> DavServer | ApacheDav:
    """Each real WebDAV server in turn: wsgidav (lock manager on) and Apache mod_dav_fs."""
    fixture = "dav_server" if request.param == "wsgidav" else "apache_server"
    server: DavServer | ApacheDav = request.getfixturevalue(fixture)
    return server


@pytest.fixture
def dav_root(dav_server: DavServer, tmp_path: Path) -> Path:
    """A fresh folder inside the share for one test."""
    folder = dav_server.root / tmp_path.name
    folder.mkdir()
    return folder


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def start_gateway(root: Path, *, locks: bool = True) -> RunningGateway:
    os.makedirs(root, exist_ok=True)
    gateway = FakeGateway(
        root=root,
        tokens={CS3_TOKEN: "einstein", CS3_READER: "marie"},
        readers={CS3_READER},
        locks=locks,
    )
    running = RunningGateway(gateway)
    await running.start()
    return running


@pytest.fixture
async def cs3_gateway(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(tmp_path / "cs3")
    try:
        yield running
    finally:
        await running.stop()


@dataclass
class Backend:
    """One storage under test, the folder behind it, and a read-only view of the same files."""

    kind: str
    storage: Storage
    root: Path
    readonly: Storage | None


@pytest.fixture(scope="session")
def xrootd_server() -> Iterator[XrootdServer]:
    """One real xrootd server for the session's tests (each works in a folder of its own)."""
    with running_xrootd() as server:
        yield server


@pytest.fixture(params=["local", "webdav", "apache", "cs3", "xrootd"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Backend]:
    kind = request.param
    if kind == "local":
        local = pytest.importorskip("wopibridge.storage.local")
        root = tmp_path / "local"
        storage = local.LocalStorage("local", root, tmp_path / "state")
        readonly = None
        yield Backend(kind, storage, storage.root, readonly)
        await storage.close()
    elif kind in ("webdav", "apache"):
        from wopibridge.storage.webdav import WebDavConfig, WebDavStorage

        fixture = "dav_server" if kind == "webdav" else "apache_server"
        server: DavServer | ApacheDav = request.getfixturevalue(fixture)
        root = server.root / f"{tmp_path.name}-{kind}"
        root.mkdir()
        table = server.table(url=f"{server.url}/{root.name}")
        storage = WebDavStorage("dav", WebDavConfig.from_table("dav", table), http)
        readonly = None  # wsgidav serves the same folder read-only under /ro; Apache does not
        if kind == "webdav":
            bad = server.table(url=f"http://127.0.0.1:{server.port}/ro/{root.name}")
            readonly = WebDavStorage("dav", WebDavConfig.from_table("dav", bad), http)
        yield Backend(kind, storage, root, readonly)
    elif kind == "xrootd":
        from wopibridge.storage import xrootd

        require_client()
        server: XrootdServer = request.getfixturevalue("xrootd_server")
        root = server.folder(f"{tmp_path.name}-{kind}")
        storage = xrootd.build("xrd", server.table(root=f"/{root.name}"))
        readonly = xrootd.build("xrd", server.table(root=server.readonly_root(f"/{root.name}")))
        yield Backend(kind, storage, root, readonly)
        await storage.close()
    else:
        from wopibridge.storage.cs3 import Cs3Config, Cs3Storage

        running = await start_gateway(tmp_path / "cs3")
        config = Cs3Config.from_table(
            "reva", {"type": "cs3", "gateway": running.address, "timeout": 5}
        )
        storage = Cs3Storage("reva", config, http).with_credential(CS3_TOKEN)
        readonly = storage.with_credential(CS3_READER)
        yield Backend(kind, storage, running.gateway.root, readonly)
        await storage.close()
        await running.stop()
