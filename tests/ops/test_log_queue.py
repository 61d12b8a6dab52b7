"""The stderr handler's queue of access lines: written soon, in order, once, never lost."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wopibridge.jsonio import dumps
from wopibridge.ops.logs import FLUSH_DELAY, StderrHandler

FIELDS = {"method": "GET", "path": "/wopi/files/x", "op": "CheckFileInfo", "status": 200}


@pytest.fixture
def handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StderrHandler]:
    out = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", out)
    made = StderrHandler("json")
    yield made
    made.close()
    out.close()


def written(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "stderr").read_text().splitlines()]


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("wopibridge", logging.WARNING, "", 0, message, (), None)


def test_without_a_loop_a_line_is_written_at_once(handler: StderrHandler, tmp_path: Path) -> None:
    handler.write_line("wopibridge.access", "GET /wopi/files/x", FIELDS)
    [line] = written(tmp_path)
    assert line["op"] == "CheckFileInfo" and line["logger"] == "wopibridge.access"


def test_on_a_loop_lines_are_written_together_soon(handler: StderrHandler, tmp_path: Path) -> None:
    async def main() -> None:
        for n in range(100):
            handler.write_line("wopibridge.access", f"line {n}", FIELDS)
        assert written(tmp_path) == []  # queued, not one write each
        await asyncio.sleep(FLUSH_DELAY * 4)
        assert [line["message"] for line in written(tmp_path)] == [f"line {n}" for n in range(100)]

    asyncio.run(main())


def test_a_record_follows_the_lines_queued_before_it(
    handler: StderrHandler, tmp_path: Path
) -> None:
    async def main() -> None:
        handler.write_line("wopibridge.access", "first", FIELDS)
        handler.emit(record("second"))
        handler.write_line("wopibridge.access", "third", FIELDS)
        await asyncio.sleep(FLUSH_DELAY * 4)

    asyncio.run(main())
    assert [line["message"] for line in written(tmp_path)] == ["first", "second", "third"]


def test_a_closed_loop_strands_no_line(handler: StderrHandler, tmp_path: Path) -> None:
    """A loop that ends with a flush still pending (a test's loop, a stopped server): the next
    loop schedules its own."""

    async def write(message: str) -> None:
        handler.write_line("wopibridge.access", message, FIELDS)

    asyncio.run(write("on the first loop"))  # asyncio.run closes the loop at once

    async def second() -> None:
        await write("on the second loop")
        await asyncio.sleep(FLUSH_DELAY * 4)

    asyncio.run(second())
    assert [line["message"] for line in written(tmp_path)] == [
        "on the first loop",
        "on the second loop",
    ]


def test_close_writes_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", out)
    handler = StderrHandler("json")

    async def main() -> None:
        handler.write_line("wopibridge.access", "last words", FIELDS)
        handler.close()

    asyncio.run(main())
    out.close()
    assert [line["message"] for line in written(tmp_path)] == ["last words"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_write_its_parents_lines(
    handler: StderrHandler, tmp_path: Path
) -> None:
    async def main() -> None:
        handler.write_line("wopibridge.access", "parent's", FIELDS)
        pid = os.fork()
        if pid == 0:
            handler.write_line("wopibridge.access", "child's", FIELDS)
            handler.flush_now()
            os._exit(0)
        os.waitpid(pid, 0)
        await asyncio.sleep(FLUSH_DELAY * 4)

    asyncio.run(main())
    assert sorted(str(line["message"]) for line in written(tmp_path)) == ["child's", "parent's"]


def test_what_orjson_refuses_is_still_encoded() -> None:
    """A huge integer, a lone surrogate, a non-string key: the record is written anyway."""
    data = {"big": 1 << 70, "path": "/caf\udce9", 3: "three", "obj": object()}
    decoded = json.loads(dumps(data))
    assert decoded["big"] == 1 << 70 and decoded["3"] == "three"
    assert decoded["path"].startswith("/caf") and decoded["obj"].startswith("<object")
