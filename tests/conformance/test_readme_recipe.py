"""The README's validator recipe, run as written: a shell runs the README's own block.

Only the two ports are swapped for free ones (the machine may be serving 8880 already); every
command is the README's, so a recipe that stops working fails here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[2]


def recipe() -> str:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    found = [b for b in blocks if "--serve-discovery" in b and "appname=wopitest" in b]
    assert len(found) == 1, "the README has no validator recipe"
    return found[0]


def test_readme_validator_recipe_runs_as_written(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    if not (bindir / "wopibridge").exists():
        pytest.fail(f"the wopibridge command is not installed in {bindir} (pip install -e .)")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    script = recipe().replace("8880", str(free_port())).replace("8890", str(free_port()))
    (tmp_path / "recipe.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        ["bash", "recipe.sh"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=240)
    finally:
        # whatever happened, nothing the recipe started outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert "Serving the runner's discovery at" in out, out + err
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1] == "61 passed, 0 failed, 163 skipped", out[-3000:] + err[-3000:]
    assert "FAIL" not in out
    assert "Traceback" not in err and "503" not in out, err
