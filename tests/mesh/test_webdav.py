"""WebDAV specifics beyond the contract: authentication, server locks, retries, outages, ids."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.mesh.conftest import DAV_PASSWORD, DAV_TOKEN, DAV_USER, DavServer
from tests.support.procs import free_port
from wopibridge.errors import Locked, Unauthorized, Unavailable
from wopibridge.storage.webdav import WebDavConfig, WebDavStorage, decode_id, encode_id

LOCK_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:">'
    "<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
    "<d:owner>desktop client</d:owner></d:lockinfo>"
)


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


def storage(http: aiohttp.ClientSession, url: str, **table: object) -> WebDavStorage:
    return WebDavStorage(
        "nextcloud", WebDavConfig.from_table("nextcloud", {"url": url, **table}), http
    )


@pytest.mark.parametrize(
    "table",
    [
        {"auth": "basic", "username": DAV_USER, "password": DAV_PASSWORD},
        {"auth": "bearer", "token": DAV_TOKEN},
        {"auth": "ocm", "shared_secret": DAV_TOKEN},
    ],
    ids=["basic", "bearer", "ocm-shared-secret"],
)
async def test_authentication_modes(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession, table: dict[str, str]
) -> None:
    (dav_root / "doc.txt").write_bytes(b"auth")
    dav = storage(http, f"{dav_server.url}/{dav_root.name}", **table)
    stat = await dav.resolve("doc.txt")
    assert stat.size == 4


async def test_wrong_credentials_are_refused(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession
) -> None:
    (dav_root / "doc.txt").write_bytes(b"auth")
    dav = storage(
        http, f"{dav_server.url}/{dav_root.name}", auth="basic", username=DAV_USER, password="no"
    )
    with pytest.raises(Unauthorized):
        await dav.resolve("doc.txt")


async def test_user_credential_view(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession
) -> None:
    (dav_root / "doc.txt").write_bytes(b"mine")
    dav = storage(http, f"{dav_server.url}/{dav_root.name}", auth="user")
    with pytest.raises(Unauthorized):
        await dav.resolve("doc.txt")
    assert (await dav.with_credential(DAV_TOKEN).resolve("doc.txt")).size == 4
    with pytest.raises(Unauthorized):
        await dav.with_credential("somebody-else").resolve("doc.txt")


async def test_server_lock_answers_locked(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession
) -> None:
    """A desktop client's WebDAV LOCK makes the server refuse our write with 423."""
    (dav_root / "locked.docx").write_bytes(b"theirs")
    url = f"{dav_server.url}/{dav_root.name}"
    dav = storage(http, url, auth="basic", username=DAV_USER, password=DAV_PASSWORD)
    stat = await dav.resolve("locked.docx")
    headers = {"Timeout": "Second-60", "Content-Type": "application/xml"}
    headers["Authorization"] = dav.config.auth_header(None) or ""
    async with http.request("LOCK", f"{url}/locked.docx", data=LOCK_BODY, headers=headers) as r:
        assert r.status == 200, await r.text()
        token = r.headers["Lock-Token"]
    with pytest.raises(Locked):
        await dav.write(stat.file_id, chunks_of(b"ours"), expected_version=stat.version)
    with pytest.raises(Locked):
        await dav.delete(stat.file_id)
    assert (dav_root / "locked.docx").read_bytes() == b"theirs"
    async with http.request(
        "UNLOCK",
        f"{url}/locked.docx",
        headers={"Lock-Token": token, "Authorization": headers["Authorization"]},
    ) as r:
        assert r.status == 204
    await dav.write(stat.file_id, chunks_of(b"ours"), expected_version=stat.version)
    assert (dav_root / "locked.docx").read_bytes() == b"ours"


async def test_storage_down_is_unavailable_and_named(http: aiohttp.ClientSession) -> None:
    dav = storage(http, f"http://127.0.0.1:{free_port()}/dav", retries=1, timeout=2)
    with pytest.raises(Unavailable, match="nextcloud"):
        await dav.resolve("doc.txt")
    with pytest.raises(Unavailable, match="nextcloud"):
        await dav.check()


async def test_storage_going_down_mid_session(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    server = DavServer(tmp_path)
    server.start()
    try:
        (tmp_path / "doc.txt").write_bytes(b"before")
        dav = storage(
            http,
            server.url,
            auth="basic",
            username=DAV_USER,
            password=DAV_PASSWORD,
            retries=1,
            timeout=2,
        )
        stat = await dav.resolve("doc.txt")
        await dav.check()
    finally:
        server.stop()
    with pytest.raises(Unavailable, match="nextcloud"):
        await dav.write(stat.file_id, chunks_of(b"after"), expected_version=stat.version)
    assert (tmp_path / "doc.txt").read_bytes() == b"before"


async def test_idempotent_calls_are_retried(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession
) -> None:
    """A proxy in front of the real server fails the first two requests with 503."""
    (dav_root / "doc.txt").write_bytes(b"retry")
    seen: list[int] = []

    async def proxy(request: web.Request) -> web.StreamResponse:
        seen.append(len(seen))
        if len(seen) <= 2:
            return web.Response(status=503, text="busy")
        target = f"http://127.0.0.1:{dav_server.port}{request.path_qs}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with http.request(
            request.method, target, headers=headers, data=await request.read()
        ) as upstream:
            return web.Response(
                status=upstream.status,
                body=await upstream.read(),
                content_type=upstream.content_type,
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with TestServer(app, host="127.0.0.1") as server:
        url = f"http://127.0.0.1:{server.port}/dav/{dav_root.name}"
        dav = storage(http, url, auth="basic", username=DAV_USER, password=DAV_PASSWORD, retries=2)
        assert (await dav.resolve("doc.txt")).size == 5
        assert len(seen) == 3
        flaky = storage(
            http, url, auth="basic", username=DAV_USER, password=DAV_PASSWORD, retries=0
        )
        seen.clear()
        with pytest.raises(Unavailable, match="nextcloud"):
            await flaky.resolve("doc.txt")


async def test_identity_is_the_owning_site_and_path(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession
) -> None:
    """Two routes to the same share (here: /dav and the read-only /ro of one server) with the
    same owning site give the same lock key; the backend id round-trips Unicode paths."""
    (dav_root / "Ärger.docx").write_bytes(b"same")
    creds = {"auth": "basic", "username": DAV_USER, "password": DAV_PASSWORD, "site": "site-b"}
    one = storage(http, f"{dav_server.url}/{dav_root.name}", **creds)
    two = storage(http, f"http://127.0.0.1:{dav_server.port}/ro/{dav_root.name}", **creds)
    a = await one.resolve("Ärger.docx")
    b = await two.resolve("Ärger.docx")
    assert a.identity == b.identity == "site-b:Ärger.docx"
    assert decode_id(encode_id("Fächer/Ärger.docx")) == "Fächer/Ärger.docx"


def test_configuration_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"storages.nc.url"):
        WebDavConfig.from_table("nc", {"url": "ftp://x"})
    with pytest.raises(ValueError, match=r"storages.nc.auth"):
        WebDavConfig.from_table("nc", {"url": "http://x", "auth": "kerberos"})
    with pytest.raises(ValueError, match=r"storages.nc.username"):
        WebDavConfig.from_table("nc", {"url": "http://x", "auth": "basic"})
    with pytest.raises(ValueError, match=r"storages.nc.colour"):
        WebDavConfig.from_table("nc", {"url": "http://x", "colour": "red"})


def _xattrs_supported(folder: Path) -> bool:
    probe = folder / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


async def test_oc_fileid_is_the_identity(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """A server with ``oc:fileid`` (Nextcloud, ownCloud): the lock key survives saves and
    renames, and is the same through every route to the share."""
    if not _xattrs_supported(tmp_path):
        pytest.skip("this filesystem has no user extended attributes for the server's file ids")
    server = DavServer(tmp_path, fileids=True)
    server.start()
    try:
        (tmp_path / "plan.docx").write_bytes(b"v1")
        creds = {"auth": "basic", "username": DAV_USER, "password": DAV_PASSWORD, "site": "b"}
        dav = storage(http, server.url, **creds)
        other_route = storage(http, f"http://127.0.0.1:{server.port}/ro", **creds)
        first = await dav.resolve("plan.docx")
        assert re.fullmatch(r"b:[0-9a-f]{16}", first.identity)
        saved = await dav.write(first.file_id, chunks_of(b"v2"), expected_version=first.version)
        renamed = await dav.rename(first.file_id, "Plan (final).docx")
        assert first.identity == saved.identity == renamed.identity
        assert (await other_route.resolve("Plan (final).docx")).identity == first.identity
        (tmp_path / "other.docx").write_bytes(b"other")
        assert (await dav.resolve("other.docx")).identity != first.identity
    finally:
        server.stop()


@pytest.mark.parametrize(
    "name", ["what?.odt", "a#b.txt", "back\\slash.txt", "12:30 notes.txt", 'say "hi".docx']
)
async def test_names_users_already_have(
    dav_server: DavServer, dav_root: Path, http: aiohttp.ClientSession, name: str
) -> None:
    """Legal names reach the WebDAV server escaped, and their lock files can sit beside them."""
    (dav_root / name).write_bytes(b"v0")
    dav = storage(http, f"{dav_server.url}/{dav_root.name}", auth="bearer", token=DAV_TOKEN)
    stat = await dav.resolve(name)
    assert stat.name == name and stat.size == 2
    await dav.write(stat.file_id, chunks_of(b"v1"))
    assert (dav_root / name).read_bytes() == b"v1"
    lock_name = f".~lock.{name}#"
    assert await dav.find_sibling(stat.file_id, lock_name) is None
    await dav.create(stat.file_id, lock_name, chunks_of(b"lock"))
    assert (dav_root / lock_name).read_bytes() == b"lock"
    assert await dav.find_sibling(stat.file_id, lock_name) is not None
