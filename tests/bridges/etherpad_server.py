"""A real Etherpad 1.8.14 for the tests: installed once into a cache folder, one process per
test run on a free loopback port with its own settings, API key and ``dirty`` database."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.procs import free_port
from tests.support.requires import missing, require_binary

HERE = Path(__file__).resolve().parent
INSTALLER = HERE / "etherpad_install.sh"


def install_dir() -> Path:
    """``WOPIBRIDGE_ETHERPAD_DIR`` or ``.cache/etherpad`` in the repository (git-ignored)."""
    configured = os.environ.get("WOPIBRIDGE_ETHERPAD_DIR")
    return Path(configured) if configured else HERE.parent.parent / ".cache" / "etherpad"


def install() -> Path:
    require_binary("node")
    require_binary("npm")
    target = install_dir()
    # The script is the one place that knows the layout; it returns at once when installed.
    result = subprocess.run(
        ["bash", str(INSTALLER), str(target)], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        output = f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        missing("Etherpad", f"its install failed, see {INSTALLER.name}:\n{output}")
    return target


class EtherpadServer:
    def __init__(self, workdir: Path) -> None:
        self.root = install()
        self.node = shutil.which("node") or "node"
        self.port = free_port()
        self.apikey = secrets.token_hex(16)
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = {
            "title": "Etherpad",
            "ip": "127.0.0.1",
            "port": self.port,
            "dbType": "dirty",
            "dbSettings": {"filename": str(self.workdir / "dirty.db")},
            "defaultPadText": "",
            "loglevel": "WARN",
            "minify": False,
            "suppressErrorsInPadText": True,
        }
        (self.workdir / "settings.json").write_text(json.dumps(settings))
        (self.workdir / "APIKEY.txt").write_text(self.apikey)
        log = (self.workdir / "etherpad.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.node,
                "src/node/server.js",
                "--settings",
                str(self.workdir / "settings.json"),
                "--apikey",
                str(self.workdir / "APIKEY.txt"),
            ],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_ENV": "production"},
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/api/", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        tail = (self.workdir / "etherpad.log").read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"Etherpad did not start:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
