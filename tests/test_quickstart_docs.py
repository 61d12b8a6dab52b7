"""The README's two commands work on a stock Debian/Ubuntu Python, and CI runs the second.

The commands install into a venv (PEP 668 refuses ``pip install`` into the system Python);
``.ci/run`` runs the README's test command as written, waits for another apt's dpkg lock and
installs what a fresh Debian machine lacks without reading stdin.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Quick start") : readme.index("## A five-minute tour")]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)]


def test_readme_commands_use_a_venv() -> None:
    serve, tests = quick_start_commands()
    assert serve == "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/wopibridge serve"
    assert tests.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && ")
    assert tests.endswith(".venv/bin/python -m pytest")
    readme = (REPO / "README.md").read_text()
    assert "python3 -m pip install" not in readme


def test_ci_runs_the_readme_test_command_in_the_venv() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    _, tests = quick_start_commands()
    assert tests in ci
    assert "DPkg::Lock::Timeout=300" in ci
    for package in ("redis-server", "chromium", "nodejs", "npm", "python3-venv", "curl"):
        assert f"apt_packages+=({package})" in ci
    assert "tests/bridges/etherpad_install.sh </dev/null" in ci
    assert "python3 -m pip" not in ci
    for tool in ("ruff check .", "ruff format --check .", "mypy", "lint-imports"):
        assert f".venv/bin/{tool}" in ci
    assert ci.index(tests) < ci.index(".venv/bin/ruff check .")
