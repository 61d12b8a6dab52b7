"""A real ``wopibridge serve`` process for tests that kill it, race two of them, or read its log."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, wait_for_port
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET

REPO = Path(__file__).resolve().parents[2]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _limit_open_files(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


class ServerProcess:
    def __init__(self, workdir: Path, lock_url: str = "memory://", **extra: dict[str, Any]):
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, Any]] = {
            # no drain by default: tests stop many servers; the drain has its own tests
            "server": {"port": self.port, "state_dir": str(workdir / "state"), "drain_seconds": 0},
            "storage": {"root": str(workdir / "data")},
            "locks": {"url": lock_url},
            "security": {"token_secret": TOKEN_SECRET, "iop_secret": IOP_SECRET},
        }
        for section, values in extra.items():
            sections.setdefault(section, {}).update(values)
        self.config = write_config(workdir / "wopibridge.toml", sections)
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.code = REPO  # the checkout whose wopibridge runs (benches compare two)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, nofile: int | None = None) -> None:
        """Start the process; ``nofile`` sets its open-file limit (soft and hard)."""
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
        # run this checkout's code, whatever copy of wopibridge is installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.code), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wopibridge", "serve", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            preexec_fn=None if nofile is None else lambda: _limit_open_files(nofile),
        )
        log.close()
        if wait:
            wait_for_port(self.port, timeout=20)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(workdir: Path, **kwargs: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(workdir, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
