"""``wopibridge serve`` processes for the multi-site tests, each with its own configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class WopiSite:
    """One wopibridge process on a free port, configured from a dict of TOML tables."""

    def __init__(self, workdir: Path, config: dict[str, dict[str, Any]]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config = {"server": {}, **config}
        self.config["server"] = {
            "host": "127.0.0.1",
            "port": self.port,
            "state_dir": str(workdir / "state"),
            "log_level": "WARNING",
            **self.config["server"],
        }
        self.config.setdefault("storage", {"root": str(workdir / "data")})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        lines: list[str] = []
        for section, table in self.config.items():
            if section == "storages":
                for name, entry in table.items():
                    lines.append(f"[storages.{name}]")
                    lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
                continue
            lines.append(f"[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        path = self.workdir / "wopibridge.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wopibridge", "serve", "--config", str(config)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
