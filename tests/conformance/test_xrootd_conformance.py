"""Microsoft's WOPI validator over an XRootD storage (a real xrootd server, as the unprivileged
``xrootd`` user): every test of the groups wopibridge claims passes there too, with the
locks on the files and Redis in front of them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.test_wopibridge_conformance import CLAIMED, run_validator
from tests.support.procs import RedisServer
from tests.support.xrootd import XrootdServer, require_client, xrootd_server
from wopibridge.validator import report
from wopibridge.validator.plan import load_plan

require_client()


@pytest.fixture
def xrd() -> Iterator[XrootdServer]:
    with xrootd_server() as server:
        yield server


async def test_validator_passes_over_xrootd(
    tmp_path: Path, aiohttp_server: Any, xrd: XrootdServer, redis_server: RedisServer
) -> None:
    folder = xrd.folder("conformance")
    table = xrd.table(root="/conformance")
    everything = [g.name for g in load_plan().groups]
    result = await run_validator(
        tmp_path, aiohttp_server, everything, redis_server.url, storage=("xrd", table, folder)
    )
    text = io.StringIO()
    report.write_text(result, text)
    claimed = [g for g in result.groups if g.name in CLAIMED]
    assert [g.name for g in claimed] == CLAIMED, text.getvalue()
    not_passed = [
        (g.name, c.name, c.errors) for g in claimed for c in g.cases if c.status != "passed"
    ]
    assert not_passed == [], text.getvalue()
    assert report.totals_line(result) == "61 passed, 0 failed, 163 skipped"
    # nothing wopibridge keeps beside files was left behind (uploads, guards)
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".~wb-")]
