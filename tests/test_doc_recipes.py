"""Every shell recipe in the README and ``docs/`` runs as written, from a fresh clone.

A ``sh`` block is either a recipe, marked on the line above it with
``<!-- recipe: expect "text" -->``, or says why the tests do not run it
(``<!-- not run by the tests: reason -->``); an unmarked one fails here, so a recipe added
later is run without anyone touching this file. A recipe runs in a folder laid out like a
clone after the Quick start's install (the repository's files and ``.venv``; no ``data/`` or
``state/``), with every port it names (88xx) swapped for a free one so that it cannot meet a
server already running; it must exit 0, print the expected text and no traceback. Relative
links between the documents must lead to a file and a heading that exist.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import free_port
from tests.support.requires import require_binary

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
RECIPE = re.compile(r'<!-- recipe: expect "((?:[^"\\]|\\.)*)" -->')
NOT_RUN = re.compile(r"<!-- not run by the tests: (.+?) -->")
PORT = re.compile(r"\b88\d\d\b")
#: Not copied into the recipe's clone: what a fresh clone does not have.
NOT_IN_A_CLONE = {".git", ".venv", "data", "state", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def documents() -> list[Path]:
    return [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        *REPO.glob("deploy/**/README.md"),
    ]


@dataclass(frozen=True)
class Block:
    where: str
    script: str
    marker: str

    @property
    def expect(self) -> str | None:
        found = RECIPE.search(self.marker)
        return re.sub(r"\\(.)", r"\1", found.group(1)) if found else None


def blocks() -> list[Block]:
    found = []
    for path in documents():
        text = path.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(REPO)}:{line}"
            found.append(Block(where, match.group(1), before))
    return found


RECIPES = [b for b in blocks() if b.expect is not None]


def test_every_shell_block_is_a_recipe_or_says_why_not() -> None:
    unmarked = [b.where for b in blocks() if b.expect is None and not NOT_RUN.search(b.marker)]
    assert unmarked == [], f"sh blocks with neither marker: {unmarked}"
    assert len(RECIPES) >= 3


def _clone(folder: Path) -> None:
    for entry in REPO.iterdir():
        if entry.name not in NOT_IN_A_CLONE:
            (folder / entry.name).symlink_to(entry)
    (folder / ".venv").symlink_to(Path(sys.prefix))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.where for r in RECIPES])
def test_recipe_runs_as_written(recipe: Block, tmp_path: Path) -> None:
    require_binary("curl")
    if not (Path(sys.prefix) / "bin" / "wopibridge").exists():
        pytest.fail(f"the wopibridge command is not installed in {sys.prefix} (pip install -e .)")
    clone = tmp_path / "clone"
    clone.mkdir()
    _clone(clone)
    ports: dict[str, str] = {}
    script = PORT.sub(lambda m: ports.setdefault(m.group(0), str(free_port())), recipe.script)
    (tmp_path / "recipe.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    process = subprocess.Popen(
        ["bash", str(tmp_path / "recipe.sh")],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=300)
    finally:  # nothing the recipe started outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert recipe.expect and recipe.expect in out, out[-3000:] + err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_the_documents_lead_somewhere() -> None:
    broken = []
    for path in [*documents(), REPO / "ARCHITECTURE.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a URL
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []
