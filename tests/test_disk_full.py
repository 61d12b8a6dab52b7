"""A full disk under the data folder or the state folder, on a small tmpfs the test mounts.

Data folder full: PutFile answers 413 (Collabora turns the document read-only rather than
retrying, ``DocumentBroker::handleUploadToStorageResponse``), the file is intact, the body is
kept in the recovery folder, no temporary file is left, and ``/ready`` warns. State folder
full: saves still land (the body never touches the state folder), an operation that must write
there answers 507, a refused save that cannot be kept is logged and counted, and ``/ready``
warns. Nowhere a 500 or a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.wopi import IOP_SECRET, TOKEN_SECRET, open_file
from wopibridge.app import create_app
from wopibridge.config import load_settings

ORIGINAL = b"original content"


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Fill the filesystem of ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def make_app(data: Path, state: Path) -> web.Application:
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(data),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(state),
        "WOPIBRIDGE_SECURITY_TOKEN_SECRET": TOKEN_SECRET,
        "WOPIBRIDGE_SECURITY_IOP_SECRET": IOP_SECRET,
        "WOPIBRIDGE_SERVER_MIN_FREE_SPACE": str(1024 * 1024),
    }
    return create_app(load_settings(None, env=env))


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


Client = Callable[..., object]


async def test_full_data_folder_answers_413_and_keeps_the_file(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with tmpfs(tmp_path / "data", "2m") as data:
        (data / "doc.odt").write_bytes(ORIGINAL)
        client = await aiohttp_client(make_app(data, tmp_path / "state"))  # type: ignore[operator]
        opened = await open_file(client, "doc.odt")
        assert (await opened.lock("L")).status == 200
        ready = await (await client.get("/ready")).json()
        assert "warnings" not in ready
        fill(data)
        bodies = [os.urandom(size) for size in (1000, 900_000)]
        for body in bodies:
            answer = await opened.put_file(body, lock="L")
            assert answer.status == 413, await answer.text()
            assert (data / "doc.odt").read_bytes() == ORIGINAL
        assert not list(data.glob(".~wb-*"))
        recovery = tmp_path / "state" / "recovery"
        assert sorted(p.read_bytes() for p in recovery.iterdir()) == sorted(bodies)
        # a refused save still gets its lock answer, not a 507 or a 500
        answer = await opened.put_file(b"mine", lock="other-lock")
        assert answer.status == 409, await answer.text()
        assert (data / "doc.odt").read_bytes() == ORIGINAL
        ready = await client.get("/ready")
        assert ready.status == 200
        assert "data:local" in (await ready.json())["warnings"]
        # room again: the next save lands
        (data / "filler").unlink()
        answer = await opened.put_file(b"saved", lock="L")
        assert answer.status == 200, await answer.text()
        assert (data / "doc.odt").read_bytes() == b"saved"
        await client.close()  # type: ignore[attr-defined]
    assert_no_traceback(caplog)


async def test_full_state_folder_does_not_break_saves(
    tmp_path: Path, aiohttp_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    data = tmp_path / "data"
    data.mkdir()
    (data / "doc.odt").write_bytes(ORIGINAL)
    (data / "new.odt").write_bytes(ORIGINAL)
    with tmpfs(tmp_path / "state", "1m") as state:
        client = await aiohttp_client(make_app(data, state))  # type: ignore[operator]
        opened = await open_file(client, "doc.odt")
        assert (await opened.lock("L")).status == 200
        fill(state)

        # a save lands: its body is written once, beside the file
        answer = await opened.put_file(os.urandom(100_000), lock="L")
        assert answer.status == 200, await answer.text()

        # a refused save cannot be kept in the full recovery folder: still the lock answer,
        # and the loss is logged and counted
        (data / "doc.odt").write_bytes(ORIGINAL)
        answer = await opened.put_file(b"mine", lock="other-lock")
        assert answer.status == 409
        assert (data / "doc.odt").read_bytes() == ORIGINAL
        assert "kept copy dropped (disk_full)" in caplog.text
        metrics = await (await client.get("/metrics")).text()  # type: ignore[attr-defined]
        assert 'wopibridge_kept_copies_dropped_total{reason="disk_full"} 1' in metrics

        # opening a file the index has never seen needs a row in the state folder: 507
        answer = await client.get(  # type: ignore[attr-defined]
            "/wopi/iop/openinapp",
            params={
                "fileid": "new.odt",
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "ann@idp.example",
                "appname": "Collabora",
                "appurl": "https://editor.example/cool.html?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        )
        assert answer.status == 507, await answer.text()

        ready = await client.get("/ready")  # type: ignore[attr-defined]
        assert ready.status == 200
        assert "state" in (await ready.json())["warnings"]
        await client.close()  # type: ignore[attr-defined]
    assert_no_traceback(caplog)
