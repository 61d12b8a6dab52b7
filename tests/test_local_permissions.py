"""Local storage on files the server may read but not change: Forbidden, old bytes intact.

The suite usually runs as root, for whom file modes do not apply, so the check runs in a child
process that gives up every capability first (``setpriv``): root without CAP_DAC_OVERRIDE obeys
file modes like any user. As any other user it runs directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHECK = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from wopibridge.errors import Forbidden
    from wopibridge.storage.local import LocalStorage

    async def chunks(data):
        yield data

    async def main(base):
        storage = LocalStorage("local", base / "data", base / "state")
        stat = await storage.resolve("ro.txt")
        content = await storage.open_read(stat.file_id)
        await content.close()
        for attempt in (
            lambda: storage.write(stat.file_id, chunks(b"no")),
            lambda: storage.delete(stat.file_id),
            lambda: storage.rename(stat.file_id, "other.txt"),
            lambda: storage.create(stat.file_id, "new.txt", chunks(b"no")),
        ):
            try:
                await attempt()
            except Forbidden:
                continue
            sys.exit("a change went through on a read-only folder")
        await storage.close()
        print("forbidden")

    asyncio.run(main(Path(sys.argv[1])))
    """
)


def test_read_only_folder_is_forbidden() -> None:
    base = Path(tempfile.mkdtemp(prefix="wopibridge-ro-"))
    try:
        base.chmod(0o755)
        data, state = base / "data", base / "state"
        data.mkdir()
        state.mkdir()
        (data / "ro.txt").write_bytes(b"read only")
        (data / "ro.txt").chmod(0o444)
        data.chmod(0o555)
        command = [sys.executable, "-c", CHECK, str(base)]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.fail("setpriv (util-linux) is needed to drop root's capabilities")
            command = [setpriv, "--inh-caps=-all", "--bounding-set=-all", *command]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "forbidden"
        assert (data / "ro.txt").read_bytes() == b"read only"
        assert sorted(p.name for p in data.iterdir() if p.name != ".wopibridge") == ["ro.txt"]
    finally:
        data_dir = base / "data"
        if data_dir.exists():
            data_dir.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
