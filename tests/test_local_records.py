"""The per-file records of a local folder (``.wopibridge/locks/``): another process holding a
file's record holds back its saves until it lets go, and the records are never served."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

from tests.support.wopi import IOP_SECRET, open_file

HOLDER = textwrap.dedent(
    """
    import fcntl, os, struct, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


async def test_a_save_waits_for_another_process_holding_the_record(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(b"v1")
    opened = await open_file(client, "a.docx")
    assert (await opened.lock("L")).status == 200  # creates the record
    backend_id = opened.file_id.split(".", 1)[1]
    record = data_dir / ".wopibridge" / "locks" / quote(f"local:{backend_id}", safe="")
    assert record.is_file()
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(record), "1.0"], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        resp = await opened.put_file(b"v2", lock="L")
        waited = time.monotonic() - started
        assert resp.status == 200, await resp.text()
    assert waited >= 0.5, "the save did not wait for the other process"
    assert (data_dir / "a.docx").read_bytes() == b"v2"


async def test_the_records_folder_is_never_served(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(b"v1")
    opened = await open_file(client, "a.docx")
    assert (await opened.lock("L")).status == 200
    [record] = (data_dir / ".wopibridge" / "locks").iterdir()
    for ref in (f".wopibridge/locks/{record.name}", ".wopibridge/locks"):
        resp = await client.get(
            "/wopi/iop/openinapp",
            params={
                "fileid": ref,
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "u@idp",
                "username": "U",
                "appurl": "https://editor.example/x?",
            },
            headers={"Authorization": f"Bearer {IOP_SECRET}"},
        )
        assert resp.status == 404, ref


async def test_a_lapsed_lock_of_another_site_does_not_hold_the_file(client, data_dir: Path) -> None:
    """A site that died leaves its lock in the record; once it expired, this site locks and
    saves as if it were not there, and a live one of another site refuses both."""
    (data_dir / "a.docx").write_bytes(b"v1")
    opened = await open_file(client, "a.docx")
    assert (await opened.lock("L")).status == 200
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L"})).status == 200
    [record] = (data_dir / ".wopibridge" / "locks").iterdir()
    dead = {"token": "t", "lock_id": "dead", "site": "gone", "name": "", "expires": 1.0}
    record.write_text(json.dumps(dead))
    assert (await opened.lock("L2")).status == 200
    assert (await opened.put_file(b"v2", lock="L2")).status == 200
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L2"})).status == 200
    record.write_text(json.dumps({**dead, "lock_id": "alive", "expires": time.time() + 60}))
    resp = await opened.lock("L3")
    assert (resp.status, resp.headers.get("X-WOPI-Lock")) == (409, "alive")
    assert (data_dir / "a.docx").read_bytes() == b"v2"
