"""Desktop lock files (``.~lock.<name>#``) beside ODF files a web editor holds: written after
the answer but within a second, gone within a second of the unlock, moved by a rename, and
swept at start when no WOPI lock backs them."""

from __future__ import annotations

from pathlib import Path

from tests.support.waiting import eventually
from tests.support.wopi import open_file
from wopibridge.app import create_app

COLLABORA = {"collabora": {"discovery_url": "http://127.0.0.1:9/hosting/discovery"}}
DESKTOP = b"Bo Desk,bo,BO-PC,25.11.2026 05:00,file:///home/bo/.config/libreoffice/4;"


async def _client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def test_lock_file_appears_and_goes_within_a_second(
    aiohttp_client, make_settings, lock_url, data_dir: Path
) -> None:
    client = await _client(aiohttp_client, make_settings(lock_url, apps=COLLABORA))
    (data_dir / "doc.odt").write_bytes(b"odt")
    opened = await open_file(client, "doc.odt", appname="collabora")
    lock_file = data_dir / ".~lock.doc.odt#"
    assert (await opened.lock("L1")).status == 200
    await eventually(lock_file.exists, within=1.0)
    assert lock_file.read_bytes().startswith(b"Ann Example,wopibridge,wopibridge,")
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200
    await eventually(lambda: not lock_file.exists(), within=1.0)
    # a burst of cycles ends in the state of the last operation
    for n in range(30):
        assert (await opened.lock(f"B{n}")).status == 200
        assert (await opened.op("UNLOCK", {"X-WOPI-Lock": f"B{n}"})).status == 200
    await eventually(lambda: not lock_file.exists())
    assert (await opened.lock("L2")).status == 200
    await eventually(lock_file.exists)


async def test_lock_file_follows_a_rename(aiohttp_client, make_settings, data_dir: Path):
    client = await _client(aiohttp_client, make_settings(apps=COLLABORA))
    (data_dir / "doc.odt").write_bytes(b"odt")
    opened = await open_file(client, "doc.odt", appname="collabora")
    assert (await opened.lock("L1")).status == 200
    await eventually((data_dir / ".~lock.doc.odt#").exists)
    resp = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "moved", "X-WOPI-Lock": "L1"})
    assert resp.status == 200 and (await resp.json())["Name"] == "moved"
    await eventually(lambda: not (data_dir / ".~lock.doc.odt#").exists())
    await eventually((data_dir / ".~lock.moved.odt#").exists)
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200
    await eventually(lambda: not (data_dir / ".~lock.moved.odt#").exists())
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == ["moved.odt"]


async def test_rename_leaves_a_desktop_users_lock_file_alone(
    aiohttp_client, make_settings, data_dir: Path
) -> None:
    client = await _client(aiohttp_client, make_settings(apps=COLLABORA))
    (data_dir / "doc.odt").write_bytes(b"odt")
    (data_dir / ".~lock.doc.odt#").write_bytes(DESKTOP)
    opened = await open_file(client, "doc.odt", appname="collabora", viewmode="VIEW_MODE_READ_ONLY")
    assert (await opened.check_file_info())["UserCanWrite"] is False
    edit = await open_file(client, "doc.odt", appname="collabora")
    # a desktop lock downgrades the open to view: the rename is refused, nothing moves
    resp = await edit.op("RENAME_FILE", {"X-WOPI-RequestedName": "moved"})
    assert resp.status == 401
    assert (data_dir / ".~lock.doc.odt#").read_bytes() == DESKTOP


async def test_start_sweeps_lock_files_no_wopi_lock_backs(
    aiohttp_client, make_settings, lock_url, data_dir: Path, caplog
) -> None:
    """A restart: lock files of ours whose WOPI lock is gone (always, with in-process locks)
    are removed; one whose lock lives on in Redis stays; a desktop user's is never touched."""
    settings = make_settings(lock_url, apps=COLLABORA)
    first = await _client(aiohttp_client, settings)
    for name in ("held.odt", "crashed.odt", "renamed.odt", "desktop.odt"):
        (data_dir / name).write_bytes(b"odt")
    held = await open_file(first, "held.odt", appname="collabora")
    assert (await held.lock("L1")).status == 200
    crashed = await open_file(first, "crashed.odt", appname="collabora")
    assert (await crashed.lock("L2")).status == 200
    renamed = await open_file(first, "renamed.odt", appname="collabora")
    assert (await renamed.lock("L3")).status == 200
    for name in ("held", "crashed", "renamed"):
        await eventually((data_dir / f".~lock.{name}.odt#").exists)
    # what a crash leaves: the lock gone (expired) but its file still there, and a file
    # renamed behind wopibridge's back
    assert (await crashed.op("UNLOCK", {"X-WOPI-Lock": "L2"})).status == 200
    await eventually(lambda: not (data_dir / ".~lock.crashed.odt#").exists())
    (data_dir / ".~lock.crashed.odt#").write_bytes(
        (data_dir / ".~lock.held.odt#")
        .read_bytes()
        .replace(held.file_id.split(".", 1)[1].encode(), crashed.file_id.split(".", 1)[1].encode())
    )
    (data_dir / "renamed.odt").rename(data_dir / "elsewhere.odt")
    (data_dir / ".~lock.desktop.odt#").write_bytes(DESKTOP)
    (data_dir / ".~lock.gone.odt#").write_bytes(
        b"Ann,wopibridge,wopibridge,25.11.2026 05:00,wopibridge:no-such-id;"
    )

    caplog.set_level("INFO", "wopibridge.desktoplocks")
    await _client(aiohttp_client, settings)  # the restart
    await eventually(lambda: "lock files no WOPI lock backs" in caplog.text)
    left = sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".~lock."))
    if lock_url == "memory://":  # the new process has no locks: nothing backs held.odt's
        assert left == [".~lock.desktop.odt#"]
    else:  # the WOPI lock on held.odt lives on in Redis
        assert left == [".~lock.desktop.odt#", ".~lock.held.odt#"]
    assert (data_dir / ".~lock.desktop.odt#").read_bytes() == DESKTOP
