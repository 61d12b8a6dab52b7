"""The host page in a real headless Chromium, end to end.

A web UI calls ``POST /wopi/open``; the browser opens the ``host_url`` it answered. The editor
is the **fake** Collabora page of ``conftest.DiscoveryServer`` (at another origin, found through
a real Collabora discovery document): it must receive the form POST with the right token and
ttl, read ``PostMessageOrigin`` from CheckFileInfo, and complete the PostMessage handshake.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.requires import require_binary
from wopibridge.errors import NotFound
from wopibridge.opening.hostpage import HostLinks, HostPage
from wopibridge.security.keys import SECRETS

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium_path() -> str:
    return os.environ.get("CHROMIUM") or require_binary("chromium")


async def test_host_page_posts_the_token_and_completes_the_handshake(
    bridge, discovery_server, chromium_path
):
    from playwright.async_api import async_playwright

    (bridge.root / "q3.odt").write_bytes(b"v0")
    opened = await bridge.open("q3.odt", "cool", "edit")
    form = opened["form_parameters"]
    assert opened["app_url"].startswith(f"{discovery_server.base}/browser/61cf2b4/cool.html?")
    assert opened["host_url"].startswith(f"{bridge.base}/wopi/host?link=")
    assert form["access_token"] not in opened["host_url"]

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            response = await page.goto(opened["host_url"])
            assert response is not None and response.status == 200
            assert await page.title() == "q3.odt"
            await page.wait_for_selector("body[data-state='closed']", timeout=15000)
            assert await page.locator("#office_frame").count() == 0
            assert await page.locator("#closed").is_visible()
        finally:
            await browser.close()

    wopisrc = f"{bridge.base}/wopi/files/{opened['file_id']}"
    assert discovery_server.posted == [
        {
            "access_token": form["access_token"],
            "access_token_ttl": str(form["access_token_ttl"]),
            "WOPISrc": wopisrc,
        }
    ]
    assert discovery_server.file_info[0]["PostMessageOrigin"] == bridge.base
    assert [m["MessageId"] for m in discovery_server.seen] == ["Host_PostmessageReady"]
    assert isinstance(discovery_server.seen[0]["SendTime"], int)


async def test_links_expire_and_cannot_be_forged(bridge):
    (bridge.root / "a.odt").write_bytes(b"a")
    opened = await bridge.open("a.odt", "collabora", "view")
    url = opened["host_url"]
    async with bridge.http.get(url) as response:
        assert response.status == 200
        csp = response.headers["Content-Security-Policy"]
        assert "frame-src http://collabora.test:9980;" in csp
        assert "form-action http://collabora.test:9980;" in csp
        assert response.headers["Cache-Control"] == "no-store"
    secret = bridge.app[SECRETS].token_secret
    page = HostPage(app_url="https://editor.test/x?", access_token="t", access_token_ttl=1)
    forged = HostLinks("another secret of 32 characters!").mint(page)
    async with bridge.http.get(f"{bridge.base}/wopi/host", params={"link": forged}) as response:
        assert response.status == 404
        assert "expired or is not valid" in await response.text()
    async with bridge.http.get(f"{bridge.base}/wopi/host") as response:
        assert response.status == 400
    now = [1_800_000_000.0]
    links = HostLinks(secret, ttl=120, clock=lambda: now[0])
    link = links.mint(page)
    now[0] += 120
    assert links.open(link) == page
    now[0] += 1
    with pytest.raises(NotFound, match="expired"):
        links.open(link)


async def test_host_page_tells_the_user_what_was_kept(bridge, signer, chromium_path):
    """After an exit save was kept instead of landing, the next open shows the kept copy's
    name above the editor, until the user dismisses it; the open after that does not."""
    from playwright.async_api import async_playwright

    from .fakes import FakeCollabora

    path = bridge.root / "kept.odt"
    path.write_bytes(b"v0")
    cool, _ = await bridge.editor(FakeCollabora, "kept.odt", "collabora", signer)
    await cool.open()
    cool.edit(b"edits")
    await asyncio.sleep(0.1)
    path.write_bytes(b"changed meanwhile")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    await cool.close()
    opened = await bridge.open("kept.odt", "cool", "edit")
    (name,) = opened["kept"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(opened["host_url"])
            notice = page.locator("#kept")
            assert await notice.is_visible()
            assert name in await notice.inner_text()
            await page.click("#kept-close")
            assert await notice.count() == 0
            again = await bridge.open("kept.odt", "cool", "edit")
            await page.goto(again["host_url"])
            assert await page.locator("#kept").count() == 0
        finally:
            await browser.close()
