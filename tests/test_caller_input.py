"""What callers send that ends up parsed or shown elsewhere: JSON bodies (depth and size are
capped) and URLs (http(s) only, since every one of them ends up in a browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.wopi import IOP_SECRET, open_file
from wopibridge.apps.discovery import parse_discovery
from wopibridge.security.jsoninput import nesting_depth
from wopibridge.security.keys import TOKENS

AUTH = {"Authorization": f"Bearer {IOP_SECRET}"}
BAD_URLS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox",
    "file:///etc/passwd",
    "//evil.example/x",
    "https:/no-host",
    "java\tscript:alert(1)",
]


async def _short(resp, status: int) -> str:
    text = await resp.text()
    assert resp.status == status, text
    assert "Traceback" not in text and len(text) < 300
    return text


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
async def test_deeply_nested_json_is_400(client, data_dir: Path, depth: int) -> None:
    (data_dir / "a.docx").write_bytes(b"a")
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        resp = await client.post("/wopi/open", data=body[: 60 * 1024], headers=AUTH)
        text = await _short(resp, 400)
        assert "nests deeper" in text or "not valid JSON" in text


async def test_json_nesting_within_the_cap_and_brackets_in_strings(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(b"a")
    body = b'{"path": "a.docx", "user": {"id": "u", "name": "' + b"[{" * 100 + b'"}, "x": '
    body += b"[" * 29 + b"]" * 29 + b"}"
    assert nesting_depth(body) == 30
    resp = await client.post("/wopi/open", data=body, headers=AUTH)
    # past the JSON checks: the request fails only because no editor is configured
    # past the JSON checks: the open fails only because no editor is configured
    assert await _short(resp, 400) == "No configured editor opens .docx"


async def test_json_body_larger_than_the_cap_is_400(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(b"a")
    body = b'{"path": "a.docx", "pad": "' + b"x" * (70 * 1024) + b'"}'
    await _short(await client.post("/wopi/open", data=body, headers=AUTH), 400)

    async def chunked():  # no Content-Length: the cap holds while reading
        yield b'{"pad": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    await _short(await client.post("/wopi/open", data=chunked(), headers=AUTH), 400)


@pytest.mark.parametrize("param", ["folderurl", "appurl", "appviewurl"])
@pytest.mark.parametrize("url", BAD_URLS)
async def test_openinapp_takes_only_http_urls(client, data_dir: Path, param: str, url: str):
    (data_dir / "a.docx").write_bytes(b"a")
    params = {
        "fileid": "a.docx",
        "viewmode": "VIEW_MODE_READ_WRITE",
        "userid": "u",
        "appurl": "https://editor.example/x?",
        param: url,
    }
    resp = await client.get("/wopi/iop/openinapp", params=params, headers=AUTH)
    text = await _short(resp, 400)
    assert f"{param} must be an http(s) URL" == text


@pytest.mark.parametrize("url", BAD_URLS)
async def test_wopi_open_close_url_http_only(client, data_dir: Path, url: str) -> None:
    (data_dir / "a.docx").write_bytes(b"a")
    body = {"path": "a.docx", "user": {"id": "u"}, "close_url": url}
    resp = await client.post("/wopi/open", json=body, headers=AUTH)
    assert await _short(resp, 400) == "close_url must be an http(s) URL"


async def test_check_file_info_never_answers_a_script_close_url(client, data_dir: Path):
    """A token minted before URLs were checked may still carry one: CheckFileInfo drops it."""
    (data_dir / "a.docx").write_bytes(b"a")
    opened = await open_file(client, "a.docx", folderurl="https://cloud.example/files")
    info = await opened.check_file_info()
    assert info["CloseUrl"] == "https://cloud.example/files"
    tokens = client.app[TOKENS]
    access = tokens.verify(opened.token)
    forged, _ = tokens.mint(
        file_id=access.file_id,
        user_id=access.user_id,
        user_name=access.user_name,
        user_type=access.user_type,
        app=access.app,
        mode="edit",
        extra={"folderurl": "javascript:alert(1)", "appurl": "javascript:alert(2)"},
    )
    resp = await client.get(opened.path, params={"access_token": forged})
    info = await resp.json()
    assert "CloseUrl" not in info and "BreadcrumbFolderUrl" not in info
    relative = await opened.op(
        "PUT_RELATIVE", {"X-WOPI-SuggestedTarget": ".docx"}, data=b"x", token=forged
    )
    assert relative.status == 200
    answer = await relative.json()
    assert "HostEditUrl" not in answer and "HostViewUrl" not in answer


def test_discovery_url_templates_are_http_only() -> None:
    doc = b"""<wopi-discovery><net-zone name="external-http">
      <app name="writer">
        <action name="edit" ext="odt" urlsrc="javascript:alert(1)//?"/>
        <action name="view" ext="odt" urlsrc="https://editor.example/view?"/>
      </app></net-zone></wopi-discovery>"""
    discovery = parse_discovery(doc)
    assert discovery.find("odt", "edit") is None
    found = discovery.find("odt", "view")
    assert found is not None and found.urlsrc == "https://editor.example/view?"
