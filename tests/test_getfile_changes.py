"""GetFile of a file that someone rewrites in place while it is being sent.

wopibridge replaces files whole, but on a local storage a sync client or a shell may write into
the file itself. The answer promised the size at open; the kernel's sendfile stops at the new
end. The editor must see a failed download at once, never wait for bytes that will not come
nor take a torn copy as the document.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.support.wopi import open_file

SIZE = 64 << 20


async def test_a_file_truncated_while_sent_aborts_the_answer(
    client: TestClient[Any, Any], data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = data_dir / "big.docx"
    with path.open("wb") as handle:
        handle.truncate(SIZE)
    opened = await open_file(client, "big.docx")
    resp = await opened.get_file()
    assert resp.status == 200 and resp.content_length == SIZE
    first = await resp.content.read(1 << 16)
    assert first
    await asyncio.sleep(0.2)  # the socket buffers fill up; the server's sendfile waits
    os.truncate(path, 1 << 20)  # in place, as a sync client might
    with (
        caplog.at_level(logging.WARNING, logger="wopibridge.wopi"),
        pytest.raises(aiohttp.ClientPayloadError),
    ):
        await asyncio.wait_for(resp.read(), 10)
    assert "changed on disk while it was sent" in caplog.text


async def test_an_unchanged_file_is_sent_whole(
    client: TestClient[Any, Any], data_dir: Path
) -> None:
    path = data_dir / "big.docx"
    path.write_bytes(os.urandom(4 << 20))
    opened = await open_file(client, "big.docx")
    resp = await opened.get_file()
    assert await resp.read() == path.read_bytes()
    # the connection is still good for the next request
    assert (await opened.get_file()).status == 200
