"""``FileVersionUrl``: Microsoft's *Version History* opens the host's versions page
(``/wopi/history?link=…``) in a new tab. Over the real HTTP surface: which CheckFileInfo
answers carry it, what the page lists, downloads and restores under the API's rules, how long
its link works, and the page itself in a real headless Chromium.

Microsoft is a **fake** (:class:`tests.editors.fakes.FakeMicrosoft`, signing its requests);
the browser's side is played by plain HTTP calls, then by Chromium.
"""

from __future__ import annotations

import os
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.editors.conftest import SECRET, Bridge, app_tables, start
from tests.editors.test_hostpage_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401
from wopibridge.opening.history import VERSION_PAGES, HistoryLink, HistoryLinks
from wopibridge.opening.hostpage import HostLinks, HostPage

from .fakes import FakeCollabora, FakeMicrosoft

#: the file's first content (random bytes: a download must give them back exactly), then saves
FIRST = os.urandom(200_000) + b"\0\r\n\xff"
SAVES = (b"second", b"third and current")
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ROW = re.compile(r'<li data-version="(\d+)">')


@pytest.fixture
async def bridge(tmp_path, signed_editors, aiohttp_server):
    """The editor tests' wopibridge, with a second local storage that keeps no versions."""
    plain = tmp_path / "plain"
    plain.mkdir()
    body = app_tables(signed_editors) + (
        f'\n[storages.plain]\ntype = "local"\nroot = "{plain}"\nversions = false\n'
    )
    base, app = await start(aiohttp_server, tmp_path, body)
    async with aiohttp.ClientSession() as http:
        yield Bridge(base, tmp_path / "data", tmp_path / "state", http, app)


async def _microsoft(bridge: Bridge, signer, mode: str = "edit", **extra) -> tuple:
    opened = await bridge.open("report.docx", "msoffice", mode, **extra)
    token = opened["form_parameters"]["access_token"]
    return FakeMicrosoft(bridge.http, opened["app_url"], token, signer), opened


async def _saved_twice(bridge: Bridge, signer) -> tuple[FakeMicrosoft, dict, str]:
    """report.docx holds FIRST; Microsoft locks it and saves twice (two versions: the second
    save's and the first content). Answers the editor, its open and its FileVersionUrl."""
    (bridge.root / "report.docx").write_bytes(FIRST)
    ms, opened = await _microsoft(bridge, signer)
    assert (await ms.override("LOCK", **{"X-WOPI-Lock": ms.lock_id})).status == 200
    for body in SAVES:
        assert (await ms.put_file(body, **{"X-WOPI-Lock": ms.lock_id})).status == 200
    url = (await ms.check_file_info())["FileVersionUrl"]
    return ms, opened, url


async def _get(bridge: Bridge, url: str) -> tuple[int, dict[str, str], str]:
    async with bridge.http.get(url) as answer:
        return answer.status, dict(answer.headers), await answer.text()


async def test_only_microsoft_gets_a_version_url_where_versions_may_be_shown(bridge, signer):
    (bridge.root / "report.docx").write_bytes(b"x")
    ms, opened = await _microsoft(bridge, signer)
    info = await ms.check_file_info()
    url = info["FileVersionUrl"]
    assert url.startswith(f"{bridge.base}/wopi/history?link=")
    assert opened["form_parameters"]["access_token"] not in url
    assert info["FileVersionPostMessage"] is True
    assert (await _get(bridge, url))[0] == 200

    cool = await bridge.open("report.docx", "collabora", "edit")
    collabora = FakeCollabora(
        bridge.http, cool["app_url"], cool["form_parameters"]["access_token"], signer
    )
    info = await collabora.check_file_info()
    assert info["FileVersionPostMessage"] is True and "FileVersionUrl" not in info

    secure, _ = await _microsoft(bridge, signer, "secureview")
    info = await secure.check_file_info()
    assert "FileVersionUrl" not in info and "FileVersionPostMessage" not in info

    (bridge.root.parent / "plain" / "report.docx").write_bytes(b"x")
    elsewhere, _ = await _microsoft(bridge, signer, storage="plain")
    info = await elsewhere.check_file_info()
    assert info["BaseFileName"] == "report.docx"
    assert "FileVersionUrl" not in info and "FileVersionPostMessage" not in info


async def test_the_page_lists_downloads_and_restores_only_an_unlocked_file(bridge, signer):
    ms, opened, url = await _saved_twice(bridge, signer)
    status, headers, html = await _get(bridge, url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'none'" in csp
    assert headers["Cache-Control"] == "no-store"
    ids = ROW.findall(html)
    assert len(ids) == 2 and int(ids[0]) > int(ids[1]), "newest first"
    assert html.count('class="button restore"') == 2
    hrefs = [
        unescape(h) for h in re.findall(r'class="button secondary download" href="([^"]+)"', html)
    ]
    for href, expected in zip(hrefs, (SAVES[0], FIRST), strict=True):
        async with bridge.http.get(href) as answer:
            assert answer.status == 200
            assert await answer.read() == expected  # byte for byte
    assert 'download="report (' in html

    # restore as the page sends it: with the page's token and no WOPI lock
    token = opened["form_parameters"]["access_token"]
    src = f"{bridge.base}/wopi/files/{opened['file_id']}"
    restore = f"{src}/versions/{ids[1]}/restore"
    async with bridge.http.post(restore, params={"access_token": token}) as answer:
        assert answer.status == 409, "Microsoft holds the document open"
        assert answer.headers["X-WOPI-Lock"] == ms.lock_id
    assert (bridge.root / "report.docx").read_bytes() == SAVES[1], "nothing changed"
    assert ROW.findall((await _get(bridge, url))[2]) == ids

    assert (await ms.override("UNLOCK", **{"X-WOPI-Lock": ms.lock_id})).status == 200
    async with bridge.http.post(restore, params={"access_token": token}) as answer:
        assert answer.status == 200
    assert (bridge.root / "report.docx").read_bytes() == FIRST
    after = ROW.findall((await _get(bridge, url))[2])
    assert len(after) == 3 and ids[1] in after, "the replaced content is the newest version"


async def test_a_view_token_lists_downloads_and_opens_but_has_no_restore(bridge, signer):
    await _saved_twice(bridge, signer)
    viewer, opened = await _microsoft(bridge, signer, "view")
    url = (await viewer.check_file_info())["FileVersionUrl"]
    status, _, html = await _get(bridge, url)
    assert status == 200
    ids = ROW.findall(html)
    assert len(ids) == 2
    assert "button restore" not in html
    assert html.count("button secondary open") == 2 and "needs edit" in html
    # what its buttons call: opening a version read-only, not restoring one
    src = f"{bridge.base}/wopi/files/{opened['file_id']}/versions/{ids[1]}"
    params = {"access_token": opened["form_parameters"]["access_token"]}
    async with bridge.http.post(src + "/open", params=params) as answer:
        assert answer.status == 200
        assert (await answer.json())["host_url"].startswith(f"{bridge.base}/wopi/host?link=")
    async with bridge.http.post(src + "/restore", params=params) as answer:
        assert answer.status == 401
    assert (bridge.root / "report.docx").read_bytes() == SAVES[1]


async def test_the_link_works_as_long_as_its_token_and_not_once_altered(bridge, signer):
    now = [0.0]
    pages = bridge.app[VERSION_PAGES]
    pages.clock = lambda: now[0]
    (bridge.root / "report.docx").write_bytes(b"x")
    ms, opened = await _microsoft(bridge, signer)
    expires = opened["form_parameters"]["access_token_ttl"] // 1000
    url = (await ms.check_file_info())["FileVersionUrl"]
    link = parse_qs(urlsplit(url).query)["link"][0]

    now[0] = expires - 1
    assert (await _get(bridge, url))[0] == 200
    now[0] = expires  # the token's own end: the link ends with it
    status, headers, html = await _get(bridge, url)
    assert (status, headers["Content-Type"].split(";")[0]) == (404, "text/html")
    assert 'id="error" data-status="404"' in html and "expired" in html

    now[0] = expires - 1
    altered = link[:40] + ("A" if link[40] != "A" else "B") + link[41:]
    foreign = HistoryLinks("another secret of 32 characters!", clock=lambda: now[0]).mint(
        HistoryLink(opened["file_id"], opened["form_parameters"]["access_token"], expires)
    )
    page = HostPage(app_url="http://editor.test/x", access_token="t", access_token_ttl=1)
    host_link = HostLinks(SECRET).mint(page)
    for wrong in (altered, foreign, host_link, "not-a-link"):
        status, _, html = await _get(bridge, f"{bridge.base}/wopi/history?link={wrong}")
        assert status == 404 and 'id="error" data-status="404"' in html, wrong
        assert "not valid" in html
    status, _, html = await _get(bridge, f"{bridge.base}/wopi/history")
    assert status == 400 and 'id="error" data-status="400"' in html


async def test_the_page_in_chromium(bridge, signer, chromium_path):  # noqa: F811
    from playwright.async_api import async_playwright, expect

    ms, _, url = await _saved_twice(bridge, signer)
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(accept_downloads=True)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            response = await page.goto(url)
            assert response is not None and response.status == 200
            assert await page.title() == "Versions of report.docx"
            rows = page.locator("li[data-version]")
            assert await rows.count() == 2
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / "versions-page.png"), full_page=True)

            async with page.expect_download() as download_info:
                await rows.nth(1).locator("a.download").click()
            download = await download_info.value
            assert download.suggested_filename.startswith("report (")
            assert download.suggested_filename.endswith(").docx")
            assert Path(await download.path()).read_bytes() == FIRST

            # Microsoft holds the document: the page says to close it, and nothing changes
            await rows.nth(1).locator("button.restore").click()
            status = page.locator("#status")
            await expect(status).to_contain_text("Close it there first", timeout=15000)
            assert "nothing was changed" in await status.inner_text()
            assert (bridge.root / "report.docx").read_bytes() == SAVES[1]

            assert (await ms.override("UNLOCK", **{"X-WOPI-Lock": ms.lock_id})).status == 200
            await page.locator("li[data-version]").nth(1).locator("button.restore").click()
            await expect(page.locator("#status")).to_contain_text("Restored", timeout=15000)
            assert await page.locator("li[data-version]").count() == 3
            assert (bridge.root / "report.docx").read_bytes() == FIRST
        finally:
            await browser.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems
