"""What an operator and a web UI read: the status page at ``/``, ``/ready`` listing what it
checked, and the open endpoints' answer and log line (a number for ``access_token_ttl``, the
file id in the log)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.wopi import IOP_SECRET, TOKEN_SECRET
from wopibridge import __version__
from wopibridge.app import create_app

UNREACHABLE = "http://127.0.0.1:9/hosting/discovery"


@pytest.fixture
async def status_client(aiohttp_client: Any, make_settings: Any, data_dir: Path) -> Any:
    (data_dir / "secret-plans.odt").write_bytes(b"x")
    settings = make_settings(
        apps={"collabora": {"discovery_url": UNREACHABLE}},
        storages={"archive": {"type": "local", "root": str(data_dir.parent / "archive")}},
    )
    return await aiohttp_client(create_app(settings))


async def test_status_page_shows_what_runs_and_no_secret(
    status_client: Any, data_dir: Path
) -> None:
    response = await status_client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = await response.text()
    assert f'<span id="version">{__version__}</span>' in page
    for storage in ("<td>local</td>", "<td>archive</td>"):
        assert storage in page
    assert "in process (memory://)" in page
    assert "<td>collabora</td>" in page and "<code>http://127.0.0.1:9</code>" in page
    assert "cannot connect" in page  # the editor's discovery state
    for link in ("/health", "/ready", "/metrics", "/docs"):
        assert f'href="{link}"' in page
    for secret in (TOKEN_SECRET, IOP_SECRET, "secret-plans", str(data_dir)):
        assert secret not in page

    docs = await status_client.get("/docs")
    assert docs.status == 200 and "## Quick start" in await docs.text()


async def test_ready_lists_what_it_checked(status_client: Any) -> None:
    response = await status_client.get("/ready")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"locks": "ok", "storage:local": "ok", "storage:archive": "ok"}
    assert body["editors"]["discovery:collabora"].startswith("cannot connect")


async def test_open_answers_a_number_ttl_and_logs_the_file_id(
    client: Any, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (data_dir / "notes.txt").write_bytes(b"hello")
    caplog.set_level(logging.INFO, logger="wopibridge.access")
    response = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "notes.txt",
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "ann@idp",
            "appname": "Collabora",
            "appurl": "https://editor.example/cool.html?",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert response.status == 200
    body = await response.json()
    ttl = body["form-parameters"]["access_token_ttl"]
    assert isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 1_700_000_000_000
    file_id = body["app-url"].rsplit("%2F", 1)[1]
    lines = [
        r.__dict__
        for r in caplog.records
        if r.name == "wopibridge.access" and r.__dict__.get("op") == "OpenInApp"
    ]
    assert lines and lines[-1]["file_id"] == file_id and file_id.startswith("local.")
