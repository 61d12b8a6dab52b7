"""Renames cut short: an instance killed in the middle, and a disk that is full.

The kill lands in a chosen moment, not a lucky one: the test watches Redis (MONITOR) for the
rename's journal entry and at once pauses Redis writes, so the instance moves the file and then
waits on the map update; the test sees the file at its new name and SIGKILLs the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from tests.support.fleet import Fleet, open_on, running_fleet, wopi
from tests.support.procs import RedisServer
from tests.support.server import ServerProcess
from tests.support.wopi import open_remote


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def fleet(tmp_path: Path, data: Path, redis_server: RedisServer) -> Iterator[Fleet]:
    with running_fleet(tmp_path / "fleet", redis_server.url, storage={"root": str(data)}) as f:
        yield f


def _pause_on_journal(url: str, ready: threading.Event, paused: threading.Event) -> None:
    """Pause Redis writes as soon as a rename's journal entry (``pending``) is written."""
    client = redis.Redis.from_url(url)
    try:
        with client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                text = str(command.get("command", ""))
                if text.startswith("HSET") and "pending" in text:
                    client.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
                    paused.set()
                    return
    finally:
        client.close()


async def _rename_and_kill(
    session: aiohttp.ClientSession, fleet: Fleet, url: str, token: str, data: Path, name: str
) -> bool:
    """Rename through instance 0 and kill it once the file moved; whether it had moved."""
    ready, paused = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=_pause_on_journal, args=(fleet.redis_url, ready, paused), daemon=True
    )
    watcher.start()
    assert ready.wait(5)
    request = asyncio.ensure_future(
        wopi(session, url, token, "RENAME_FILE", {"X-WOPI-RequestedName": name, "X-WOPI-Lock": "L"})
    )
    try:
        for _ in range(200):
            if paused.is_set() and (data / f"{name}.docx").exists():
                break
            await asyncio.sleep(0.01)
        moved = (data / f"{name}.docx").exists()
        fleet[0].kill()
        with contextlib.suppress(aiohttp.ClientError):
            await request
    finally:
        redis.Redis.from_url(fleet.redis_url).execute_command("CLIENT", "UNPAUSE")
        watcher.join(5)
    return moved


async def test_an_instance_killed_in_the_middle_of_a_rename(fleet: Fleet, data: Path) -> None:
    (data / "report.docx").write_bytes(b"v1")
    async with aiohttp.ClientSession() as session:
        src, token, _ = await open_on(session, fleet, 1, "report.docx")
        assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200

        moved = await _rename_and_kill(session, fleet, fleet.url_on(src, 0), token, data, "final")
        assert moved, "the kill landed after the file moved, before the map was updated"
        assert not (data / "report.docx").exists()

        for other in (1, 2):
            status, _, body = await wopi(session, fleet.url_on(src, other), token)
            assert status == 200, body
            assert json.loads(body)["BaseFileName"] == "final.docx"
            status, headers, _ = await wopi(session, fleet.url_on(src, other), token, "GET_LOCK")
            assert (status, headers.get("X-WOPI-Lock")) == (200, "L")
        status, _, content = await wopi(session, fleet.url_on(src, 2), token, contents=True)
        assert (status, content) == (200, b"v1")

        # the killed instance, started again, agrees
        fleet[0].start()
        status, _, body = await wopi(session, fleet.url_on(src, 0), token)
        assert json.loads(body)["BaseFileName"] == "final.docx"


MOUNT = shutil.which("mount")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs the test mounts and unmounts (root only)."""
    if os.geteuid() != 0 or MOUNT is None:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "disk"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _fill(folder: Path) -> Path:
    """Write zeros into ``folder`` until the disk refuses more."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


async def test_a_rename_on_a_full_disk_is_507_and_changes_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    """Data and state folder (the id map, with in-process locks) on one full tmpfs."""
    data = small_disk / "data"
    data.mkdir()
    (data / "report.docx").write_bytes(b"v1")
    server = ServerProcess(
        tmp_path / "srv",  # its configuration and log stay off the full disk
        storage={"root": str(data)},
        server={"state_dir": str(small_disk / "state")},
    )
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            src, token = await open_remote(session, server.url, "report.docx")
            filler = _fill(small_disk)
            status, _, body = await wopi(
                session, src, token, "RENAME_FILE", {"X-WOPI-RequestedName": "final"}
            )
            assert status == 507, body
            assert (data / "report.docx").read_bytes() == b"v1"
            assert not (data / "final.docx").exists()
            status, _, body = await wopi(session, src, token)
            assert status == 200 and json.loads(body)["BaseFileName"] == "report.docx"

            filler.unlink()
            status, _, body = await wopi(
                session, src, token, "RENAME_FILE", {"X-WOPI-RequestedName": "final"}
            )
            assert status == 200, body
            status, _, body = await wopi(session, src, token)
            assert json.loads(body)["BaseFileName"] == "final.docx"
        assert "Traceback" not in server.log()
    finally:
        server.stop()
