"""The sweep of desktop lock files no WOPI lock backs runs periodically on every instance, not
only at start: a lock file another instance left, or one whose WOPI lock expired without an
Unlock, goes within the sweep's period while the server keeps running."""

from __future__ import annotations

from pathlib import Path

from tests.support.waiting import eventually
from tests.support.wopi import open_file
from wopibridge.app import create_app
from wopibridge.resources import LOCK_FILE_SWEEP_SECONDS

COLLABORA = {"collabora": {"discovery_url": "http://127.0.0.1:9/hosting/discovery"}}
DESKTOP = b"Bo Desk,bo,BO-PC,25.11.2026 05:00,file:///home/bo/.config/libreoffice/4;"


async def test_a_running_instance_sweeps_lock_files_no_lock_backs(
    aiohttp_client, make_settings, lock_url, data_dir: Path
) -> None:
    app = create_app(make_settings(lock_url, apps=COLLABORA))
    app[LOCK_FILE_SWEEP_SECONDS] = 0.3
    client = await aiohttp_client(app)
    for name in ("held.odt", "stale.odt", "desktop.odt"):
        (data_dir / name).write_bytes(b"odt")
    held = await open_file(client, "held.odt", appname="collabora")
    assert (await held.lock("L1")).status == 200
    await eventually((data_dir / ".~lock.held.odt#").exists, within=1.0)
    stale = await open_file(client, "stale.odt", appname="collabora")
    stale_id = stale.file_id.split(".", 1)[1]
    # written after start, as another instance would for a lock that is gone since
    (data_dir / ".~lock.stale.odt#").write_bytes(
        f"Ann,wopibridge,wopibridge,25.11.2026 05:00,wopibridge:{stale_id};".encode()
    )
    (data_dir / ".~lock.desktop.odt#").write_bytes(DESKTOP)
    await eventually(lambda: not (data_dir / ".~lock.stale.odt#").exists(), within=2.0)
    assert (data_dir / ".~lock.held.odt#").exists()
    assert (data_dir / ".~lock.desktop.odt#").read_bytes() == DESKTOP
