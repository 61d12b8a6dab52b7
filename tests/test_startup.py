"""``wopibridge`` as an operator meets it: help, version, and start-up errors that tell the truth.

Every case runs the real command in a separate process and reads what the operator reads.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import free_port, wait_for_port
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET
from wopibridge import __version__

REPO = Path(__file__).resolve().parent.parent


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "wopibridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**clean, **(env or {})},
    )


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every stderr line, each one JSON object (the default log format)."""
    return [json.loads(line) for line in result.stderr.splitlines() if line.strip()]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The message of the one error record (records before it, such as generated secrets,
    aside)."""
    errors = [r["message"] for r in records(result) if r["level"] in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
    return str(errors[0])


def test_help_and_version(tmp_path: Path) -> None:
    top = run("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "A WOPI host for research and education clouds" in top.stdout
    assert "settings → app" not in top.stdout  # not an internal docstring
    version = run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"wopibridge {__version__}"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in pyproject
    serve = run("serve", "--help", cwd=tmp_path)
    assert "WOPIBRIDGE_<SECTION>_<KEY>" in serve.stdout
    assert "WOPIBRIDGE_APPS_<NAME>_<KEY>" in serve.stdout


@pytest.mark.parametrize(
    ("env", "config", "expected"),
    [
        (
            {"WOPIBRIDGE_SERVER_LOG_LEVEL": "LOUD"},
            "",
            "invalid configuration: server.log_level (WOPIBRIDGE_SERVER_LOG_LEVEL): "
            "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            {},
            '[server]\nlog_level = "LOUD"\n',
            "invalid configuration: server.log_level: "
            "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ),
        (
            {"WOPIBRIDGE_SERVR_PORT": "9000"},
            "",
            "invalid configuration: WOPIBRIDGE_SERVR_PORT: unknown environment variable",
        ),
        (
            {"WOPIBRIDGE_SERVER_MAX_UPLOAD_SIZE": "big"},
            "",
            "invalid configuration: server.max_upload_size "
            "(WOPIBRIDGE_SERVER_MAX_UPLOAD_SIZE): "
            "must be an integer",
        ),
        (
            {},
            '[storage]\nroot = "a-file/data"\n',
            "invalid configuration: storage.root: cannot use",
        ),
        (
            {},
            '[server]\nstate_dir = "a-file"\n',
            "invalid configuration: server.state_dir: cannot keep generated secrets",
        ),
    ],
)
def test_configuration_errors_are_one_line_naming_the_key(
    tmp_path: Path, env: dict[str, str], config: str, expected: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    args = ["serve", "--port", str(free_port())]
    if config:
        (tmp_path / "c.toml").write_text(config)
        args += ["--config", "c.toml"]
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert line.startswith(expected), line
    assert "cannot listen" not in line and "listening on" not in result.stderr


def test_port_in_use_is_reported_as_such_and_nothing_claims_to_listen(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert records(result)[-1]["message"] == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "listening on" not in result.stderr
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr


def test_relative_paths_in_a_config_file_follow_the_file(tmp_path: Path) -> None:
    """Started from another folder, the server finds the same secrets and files."""
    site = tmp_path / "site"
    site.mkdir()
    port = free_port()
    (site / "wopibridge.toml").write_text(
        f'[server]\nport = {port}\nstate_dir = "state"\n[storage]\nroot = "files"\n'
        f'[security]\niop_secret_file = "iop.txt"\ntoken_secret = "{TOKEN_SECRET}"\n'
    )
    (site / "iop.txt").write_text(IOP_SECRET)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    clean["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wopibridge", "serve", "--config", "../site/wopibridge.toml"],
        cwd=elsewhere,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, timeout=30)
        time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert (site / "files").is_dir() and (site / "state" / "local-files.sqlite3").exists()
    assert not (elsewhere / "files").exists() and not (elsewhere / "state").exists()
    assert not (elsewhere / "data").exists()
    lines = out.splitlines()
    listening = [i for i, line in enumerate(lines) if "listening on" in line]
    storage = [i for i, line in enumerate(lines) if "storage local: local folder" in line]
    assert listening and storage and storage[0] < listening[0], out  # bound after the checks
    assert f"local folder {site / 'files'}" in out
