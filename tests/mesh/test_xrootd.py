"""The XRootD storage beyond the shared contract: its table, the id and the lock kept on the
files (what another client of the server sees), the guard, and EOS's formats."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.xrootd import XrootdServer, require_client, xattrs
from wopibridge.config import ConfigError, load_settings
from wopibridge.errors import Locked
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.storage.xrootd.config import XrootdConfig
from wopibridge.storage.xrootd.locks import LockRecord, eos_lock

require_client()


def settings_with(tmp_path: Path, table: dict[str, Any]):  # type: ignore[no-untyped-def]
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp_path / "data"),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp_path / "state"),
    }
    env.update({f"WOPIBRIDGE_STORAGES_XRD_{k.upper()}": str(v) for k, v in table.items()})
    return load_settings(None, env=env)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client variables a table's ``auth`` sets are the process's: put them back."""
    for name in ("XrdSecPROTOCOL", "BEARER_TOKEN_FILE", "KRB5CCNAME", "XrdSecSSSKT"):
        monkeypatch.delenv(name, raising=False)


def test_every_key_from_the_environment(tmp_path: Path, client_env: None) -> None:
    from wopibridge.storage.factory import build_registry

    settings = settings_with(
        tmp_path,
        {
            "type": "xrootd",
            "url": "roots://user@eos.example.org:1094/",
            "root": "/eos/user/",
            "site": "cern",
            "timeout": "12",
            "auth": "unix",  # the client library keeps the first choice for the process
            "krb5ccname": "FILE:/tmp/krb5cc_wopi",
            "eos": "true",
        },
    )
    registry = build_registry(settings, None, "a-token-secret-of-enough-length-0123")  # type: ignore[arg-type]
    storage: Any = registry.get("xrd")
    config = storage.config
    assert (config.url, config.root, config.site, config.timeout) == (
        "roots://eos.example.org:1094",
        "/eos/user",
        "cern",
        12,
    )
    assert config.client_environment() == {"XrdSecPROTOCOL": "unix"}
    assert config.krb5ccname == "FILE:/tmp/krb5cc_wopi" and config.eos == "true"
    assert storage.capabilities.own_locks and storage.capabilities.shared_by_sites
    from wopibridge.storage.factory import lock_modes

    assert lock_modes(registry)["xrd"].startswith("on the files")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("url", "https://eos.example.org"),
        ("url", "root://eos.example.org:x"),
        ("url", "root://eos.example.org//eos/user"),
        ("root", "eos/user"),
        ("timeout", "soon"),
        ("timeout", "0"),
        ("auth", "password"),
        ("eos", "maybe"),
        ("colour", "blue"),
    ],
)
def test_a_bad_value_stops_the_start_naming_it(
    tmp_path: Path, key: str, value: str, client_env: None
) -> None:
    from wopibridge.storage.factory import build_registry

    table = {"type": "xrootd", "url": "root://127.0.0.1:1094", key: value}
    settings = settings_with(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        build_registry(settings, None, "a-token-secret-of-enough-length-0123")  # type: ignore[arg-type]
    assert f"storages.xrd.{key}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_token_needs_its_file() -> None:
    with pytest.raises(ValueError, match=r"storages\.x\.token_file"):
        XrootdConfig.from_table("x", {"url": "root://h:1094", "auth": "token"})
    token = XrootdConfig.from_table(
        "x", {"url": "root://h", "auth": "token", "token_file": "/run/secrets/xrd-token"}
    )
    assert token.client_environment() == {
        "XrdSecPROTOCOL": "ztn",
        "BEARER_TOKEN_FILE": "/run/secrets/xrd-token",
    }
    krb5 = XrootdConfig.from_table(
        "x", {"url": "root://h", "auth": "krb5", "krb5ccname": "FILE:/tmp/cc"}
    )
    assert krb5.client_environment() == {"XrdSecPROTOCOL": "krb5", "KRB5CCNAME": "FILE:/tmp/cc"}


def test_without_the_client_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wopibridge.storage.factory import build_registry

    monkeypatch.setitem(sys.modules, "XRootD.client", None)  # an import of it now fails
    settings = settings_with(tmp_path, {"type": "xrootd", "url": "root://127.0.0.1:1094"})
    with pytest.raises(ConfigError) as caught:
        build_registry(settings, None, "a-token-secret-of-enough-length-0123")  # type: ignore[arg-type]
    assert "storages.xrd.type" in str(caught.value)
    assert "pip install 'wopibridge[xrootd]'" in str(caught.value)


def test_the_lock_record_is_revas() -> None:
    record = LockRecord("L1", 1_900_000_000, "wopibridge", "https://a.example.org")
    body = json.loads(base64.urlsafe_b64decode(record.encode()))
    assert body["lock_id"] == "L1" and body["type"] == 2
    assert body["expiration"] == {"seconds": 1_900_000_000}
    assert body["app_name"] == "wopibridge" and body["user"] == {}
    # wopiserver's own record (no padding, no site) reads back
    theirs = base64.urlsafe_b64encode(
        json.dumps(
            {"lock_id": "W", "type": 2, "app_name": "Collabora", "expiration": {"seconds": 5}}
        ).encode()
    ).decode()
    parsed = LockRecord.decode(theirs.rstrip("="))
    assert parsed is not None and (parsed.lock_id, parsed.app_name) == ("W", "Collabora")
    assert not parsed.live(), "expired"
    assert LockRecord.decode("not base64 json!") is None
    assert eos_lock(42) == "expires:42,type:shared,owner:*:wopi_wopibridge"


async def test_save_keeps_id_metadata_and_lock_on_the_file(xrootd_server: XrootdServer) -> None:
    from wopibridge.storage import xrootd

    root = xrootd_server.folder("keeps")
    (root / "doc.docx").write_bytes(b"one")
    storage = xrootd.build("xrd", xrootd_server.table(root="/keeps"), site="https://a")
    site_locks = MemoryLockStore()
    locks = storage.lock_store(site_locks)
    stat = await storage.resolve("doc.docx")
    await storage.set_meta(stat.file_id, "lastwriter", "Lise")
    await storage.set_meta(stat.file_id, "odd", "a\x00b ✓")
    assert await storage.get_meta(stat.file_id, "odd") == "a\x00b ✓"
    assert xattrs(root / "doc.docx")["wopibridge.meta.lastwriter"] == "=Lise"
    assert (await locks.lock(stat.identity, "L")).ok
    saved = await storage.write(stat.file_id, chunks_of(b"two"))
    attrs = xattrs(root / "doc.docx")
    assert attrs["wopibridge.id"] == stat.file_id
    assert await storage.get_meta(stat.file_id, "lastwriter") == "Lise"
    assert await locks.get(stat.identity) == "L"
    assert saved.identity == stat.identity and saved.version != stat.version
    assert (root / "doc.docx").read_bytes() == b"two"
    assert await storage.is_eos() is False, "a plain xrootd is not EOS"
    assert "sys.app.lock" not in attrs
    await storage.close()


async def test_a_foreign_lock_refuses_saves(xrootd_server: XrootdServer) -> None:
    """wopiserver's lock (another WOPI host on the same storage) refuses our saves and our
    Lock answers its lock id."""
    from wopibridge.storage import xrootd

    root = xrootd_server.folder("foreign")
    (root / "doc.docx").write_bytes(b"theirs")
    storage = xrootd.build("xrd", xrootd_server.table(root="/foreign"))
    locks = storage.lock_store(MemoryLockStore())
    stat = await storage.resolve("doc.docx")
    theirs = LockRecord("wopiserver-lock", int(time.time()) + 600, "Collabora", "")
    os.setxattr(root / "doc.docx", "user.U.iop.lock", theirs.encode().encode())
    result = await locks.lock(stat.identity, "mine")
    assert (result.ok, result.current) == (False, "wopiserver-lock")
    with pytest.raises(Locked):
        await storage.write(stat.file_id, chunks_of(b"mine"))
    assert (root / "doc.docx").read_bytes() == b"theirs"
    assert not [p.name for p in root.iterdir() if p.name.startswith(".~wb-")]
    await storage.close()


async def test_two_instances_naming_a_new_file_agree(xrootd_server: XrootdServer) -> None:
    from wopibridge.storage import xrootd

    root = xrootd_server.folder("naming")
    for i in range(8):
        (root / f"f{i}.txt").write_bytes(b"x")
    first = xrootd.build("a", xrootd_server.table(root="/naming"))
    second = xrootd.build("b", xrootd_server.table(root="/naming"))
    for i in range(8):
        a, b = await asyncio.gather(first.resolve(f"f{i}.txt"), second.resolve(f"f{i}.txt"))
        assert a.file_id == b.file_id == xattrs(root / f"f{i}.txt")["wopibridge.id"]


async def test_a_guard_left_by_a_dead_instance_is_broken(xrootd_server: XrootdServer) -> None:
    from wopibridge.storage import xrootd
    from wopibridge.storage.xrootd.guard import STALE_SECONDS, guard_name

    root = xrootd_server.folder("stale")
    (root / "doc.docx").write_bytes(b"one")
    storage = xrootd.build("xrd", xrootd_server.table(root="/stale"))
    stat = await storage.resolve("doc.docx")
    left = root / guard_name(stat.file_id)
    left.write_bytes(b"")
    old = time.time() - STALE_SECONDS - 5
    os.utime(left, (old, old))
    await storage.write(stat.file_id, chunks_of(b"two"))
    assert (root / "doc.docx").read_bytes() == b"two"
    assert not left.exists()
    await storage.close()


async def test_sites_racing_for_a_lock_one_wins(xrootd_server: XrootdServer) -> None:
    """Six sites, each with its own lock store, Lock the same file at once: the guard makes
    the read-compare-write on the file atomic, so exactly one wins and the others are told
    its lock id."""
    from wopibridge.storage import xrootd

    root = xrootd_server.folder("race")
    (root / "doc.docx").write_bytes(b"x")
    sites = [
        xrootd.build("xrd", xrootd_server.table(root="/race"), site=f"https://site{i}")
        for i in range(6)
    ]
    stats = await asyncio.gather(*(site.resolve("doc.docx") for site in sites))
    stat = stats[0]
    assert {s.identity for s in stats} == {stat.identity}, "every site opened it as one file"
    for _round in range(3):
        stores = [site.lock_store(MemoryLockStore()) for site in sites]
        results = await asyncio.gather(
            *(store.lock(stat.identity, f"lock-{i}") for i, store in enumerate(stores))
        )
        winners = [f"lock-{i}" for i, result in enumerate(results) if result.ok]
        assert len(winners) == 1, results
        assert {r.current for r in results if not r.ok} == set(winners)
        holder = winners[0]
        assert (await stores[int(holder[5:])].unlock(stat.identity, holder)).ok
    assert not [p.name for p in root.iterdir() if p.name.startswith(".~wb-")]


async def test_expiry_is_finite_and_refreshed(xrootd_server: XrootdServer) -> None:
    from wopibridge.storage import xrootd

    root = xrootd_server.folder("expiry")
    (root / "doc.docx").write_bytes(b"x")
    first = xrootd.build("xrd", xrootd_server.table(root="/expiry"), site="https://a")
    other = xrootd.build("xrd", xrootd_server.table(root="/expiry"), site="https://b")
    stat = await first.resolve("doc.docx")
    assert (await other.resolve("doc.docx")).identity == stat.identity
    locks = first.lock_store(MemoryLockStore())
    assert (await locks.lock(stat.identity, "A", ttl=60)).ok

    def expiry() -> int:
        record = LockRecord.decode(xattrs(root / "doc.docx")["iop.lock"])
        assert record is not None
        return record.expires

    assert 55 <= expiry() - time.time() <= 61
    assert (await locks.refresh(stat.identity, "A")).ok
    assert 30 * 60 - 5 <= expiry() - time.time() <= 30 * 60 + 1
    # a lock past its expiry is no lock: another site takes the file
    expired = LockRecord("A", int(time.time()) - 1, "wopibridge", "https://a")
    os.setxattr(root / "doc.docx", "user.U.iop.lock", expired.encode().encode())
    assert (await other.lock_store(MemoryLockStore()).lock(stat.identity, "B")).ok
    assert (await locks.get(stat.identity)) == "B"


async def test_a_save_removes_what_a_killed_instance_left(xrootd_server: XrootdServer) -> None:
    from wopibridge.storage import xrootd
    from wopibridge.storage.xrootd.sweep import UPLOAD_STALE_SECONDS

    root = xrootd_server.folder("leftovers")
    (root / "doc.docx").write_bytes(b"one")
    old_upload = root / ".~wb-0123456789abcdef.tmp"
    old_guard = root / ".~wb-guard-0123456789abcdef0123456789abcdef"
    fresh_upload = root / ".~wb-fedcba9876543210.tmp"
    for path in (old_upload, old_guard, fresh_upload):
        path.write_bytes(b"partial")
    old = time.time() - UPLOAD_STALE_SECONDS - 60
    for path in (old_upload, old_guard):
        os.utime(path, (old, old))
    storage = xrootd.build("xrd", xrootd_server.table(root="/leftovers"))
    stat = await storage.resolve("doc.docx")
    await storage.write(stat.file_id, chunks_of(b"two"))
    assert not old_upload.exists() and not old_guard.exists()
    assert fresh_upload.exists(), "an upload that may still be running is left alone"
    assert (root / "doc.docx").read_bytes() == b"two"
    await storage.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WOPIBRIDGE_STORAGES_XRD_URL": "https://eos.example.org"}, "storages.xrd.url"),
        ({"WOPIBRIDGE_STORAGES_XRD_TIMEOUT": "soon"}, "storages.xrd.timeout"),
    ],
)
def test_serve_stops_with_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    """``wopibridge serve`` with a bad XRootD value: one error line naming the key."""
    from tests.test_startup import one_line, run

    base = {"WOPIBRIDGE_STORAGES_XRD_TYPE": "xrootd", "WOPIBRIDGE_STORAGES_XRD_URL": "root://h"}
    result = run("serve", cwd=tmp_path, env={**base, **env})
    assert result.returncode != 0
    assert expected in one_line(result)
