"""A test whose real part is missing fails under CI=true and skips elsewhere, naming the
Debian package to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, ci: str | None, path: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_needs.py"
    test.write_text(
        textwrap.dedent(
            """
            from tests.support.requires import require_binary, require_module

            def test_chromium():
                require_binary("chromium")

            def test_redis():
                require_binary("redis-server")

            def test_module():
                require_module("no_such_module_here", "no-such-dist")
            """
        )
    )
    env = {"PATH": path, "PYTHONPATH": str(REPO)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(test)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_program_fails(tmp_path: Path, ci: str) -> None:
    result = _run(tmp_path, ci, path=str(tmp_path))  # an empty PATH: nothing is installed
    assert "3 failed" in result.stdout, result.stdout[-2000:]
    assert "chromium is not available (apt-get install chromium): required when CI=true" in (
        result.stdout
    )


def test_elsewhere_a_missing_program_skips_and_says_what_to_install(tmp_path: Path) -> None:
    result = _run(tmp_path, None, path=str(tmp_path))
    assert "3 skipped" in result.stdout, result.stdout[-2000:]
    assert "apt-get install redis-server" in result.stdout
    assert "pip install no-such-dist" in result.stdout
