"""What a person sees on the host page while it loads, when the editor does not answer, and on
an expired link: in a real headless Chromium, asserting on what is visible, with screenshots.

Two editors are configured from the same Collabora discovery document, rewritten to point at
(1) a *silent* editor page that takes the form POST and never answers the PostMessage handshake,
and (2) a port where nothing listens. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.editors.conftest import fixture_bytes
from tests.support.procs import free_port
from tests.support.requires import require_binary
from wopibridge.app import create_app
from wopibridge.config import load_settings
from wopibridge.opening.hostpage import LINK_TTL, HostLinks, HostPage

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "screenshots"
IOP = "iop-secret-for-the-host-page-tests"
TOKEN_SECRET = "token-secret-for-the-host-page-tests"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SILENT_PAGE = "<!DOCTYPE html><html><body><p>an editor that never answers</p></body></html>"


@pytest.fixture
def chromium_path() -> str:
    return os.environ.get("CHROMIUM") or require_binary("chromium")


@pytest.fixture
async def host(tmp_path, aiohttp_server):
    """wopibridge with two editors: ``silent`` (answers HTTP, never the handshake; waits 60 s)
    and ``gone`` (nothing listens at its origin; waits 2 s)."""
    silent_posts: list[str] = []

    async def discovery(request: web.Request) -> web.Response:
        origin = {"silent": silent_base, "gone": f"http://127.0.0.1:{free_port()}"}[
            request.match_info["name"]
        ]
        body = fixture_bytes("collabora-runtime.xml").replace(
            b"http://collabora.test:9980", origin.encode()
        )
        return web.Response(body=body, content_type="text/xml")

    async def editor(request: web.Request) -> web.Response:
        silent_posts.append(str((await request.post()).get("access_token", "")))
        return web.Response(text=SILENT_PAGE, content_type="text/html")

    editors = web.Application()
    editors.router.add_get("/{name}/hosting/discovery", discovery)
    editors.router.add_post("/browser/{build}/cool.html", editor)
    editor_server = await aiohttp_server(editors, host="127.0.0.1")
    silent_base = str(editor_server.make_url("")).rstrip("/")

    root = tmp_path / "data"
    root.mkdir()
    (root / "report.odt").write_bytes(b"v0")
    port = free_port()
    config = tmp_path / "wopibridge.toml"
    config.write_text(
        f"""
[server]
port = {port}
public_url = "http://127.0.0.1:{port}"
state_dir = "state"
[storage]
root = "data"
[security]
token_secret = "{TOKEN_SECRET}"
iop_secret = "{IOP}"
[apps.silent]
type = "collabora"
discovery_url = "{silent_base}/silent/hosting/discovery"
load_timeout = 60
[apps.gone]
type = "collabora"
discovery_url = "{silent_base}/gone/hosting/discovery"
load_timeout = 2
"""
    )
    app = create_app(load_settings(config, env={}))
    await aiohttp_server(app, host="127.0.0.1", port=port)
    base = f"http://127.0.0.1:{port}"

    async def open_link(app_name: str) -> str:
        body = {"path": "report.odt", "app": app_name, "mode": "edit", "user": {"id": "ada@idp"}}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/wopi/open", json=body, headers={"Authorization": f"Bearer {IOP}"}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            return str((await response.json())["host_url"])

    return open_link, silent_posts, base


async def browser_page(pw, chromium_path):
    browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    page = await browser.new_page(viewport={"width": 1000, "height": 640})
    return browser, page


async def test_loading_then_unreachable_then_retry(host, chromium_path) -> None:
    from playwright.async_api import async_playwright

    open_link, silent_posts, _ = host
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser, page = await browser_page(pw, chromium_path)
        try:
            # Loading: the silent editor took the token and never answers.
            await page.goto(await open_link("silent"))
            loading = page.locator("#loading")
            await loading.wait_for(state="visible", timeout=5000)
            assert await page.get_by_text("Opening report.odt").is_visible()
            assert await page.locator(".spinner").is_visible()
            assert not await page.locator("#unreachable").is_visible()
            deadline = time.monotonic() + 10
            while not silent_posts and time.monotonic() < deadline:
                await page.wait_for_timeout(100)
            assert len(silent_posts) == 1 and silent_posts[0]
            await page.screenshot(path=str(SHOTS / "hostpage-loading.png"))
            assert await loading.is_visible()  # still loading: 60 s allowed

            # Unreachable: nothing listens at the editor's origin; 2 s allowed.
            await page.goto(await open_link("gone"))
            assert await page.locator("#loading").is_visible()
            unreachable = page.locator("#unreachable")
            await unreachable.wait_for(state="visible", timeout=10000)
            assert not await page.locator("#loading").is_visible()
            text = await unreachable.inner_text()
            assert "The editor does not answer" in text
            assert "gone at http://127.0.0.1:" in text and "within 2 seconds" in text
            retry = page.get_by_role("button", name="Try again")
            assert await retry.is_visible()
            await page.screenshot(path=str(SHOTS / "hostpage-editor-unreachable.png"))

            # Retry: loading again, then the same message when it still does not answer.
            await retry.click()
            assert await page.locator("#loading").is_visible()
            assert not await unreachable.is_visible()
            await unreachable.wait_for(state="visible", timeout=10000)
        finally:
            await browser.close()
    for name in ("hostpage-loading.png", "hostpage-editor-unreachable.png"):
        assert (SHOTS / name).stat().st_size > 5000


async def test_expired_link_gets_a_human_page(host, chromium_path) -> None:
    from playwright.async_api import async_playwright

    _, _, base = host
    # A link minted by the server's own key 121 seconds ago: expired, nothing else wrong.
    minted_earlier = HostLinks(TOKEN_SECRET, clock=lambda: time.time() - LINK_TTL - 1)
    page_data = HostPage(app_url=f"{base}/editor?", access_token="t", access_token_ttl=1)
    expired = f"{base}/wopi/host?link={minted_earlier.mint(page_data)}"
    fresh = HostLinks(TOKEN_SECRET).mint(page_data)
    tampered = f"{base}/wopi/host?link={fresh[:-6]}{'A' * 6 if fresh[-6:] != 'A' * 6 else 'B' * 6}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser, page = await browser_page(pw, chromium_path)
        try:
            response = await page.goto(expired)
            assert response is not None and response.status == 404
            assert response.headers["content-type"].startswith("text/html")
            heading = page.get_by_role("heading", name="This link has expired")
            assert await heading.is_visible()
            message = page.locator("#error-message")
            assert await message.is_visible()
            assert "has expired or is not valid" in await message.inner_text()
            assert await page.get_by_text("open the document again").is_visible()
            # styled: a card on a tinted screen, not unstyled text
            card = await page.locator(".card").evaluate(
                "e => getComputedStyle(e).borderRadius + ' ' + getComputedStyle(e).boxShadow"
            )
            assert card.startswith("12px") and "rgba" in card
            await page.screenshot(path=str(SHOTS / "hostpage-expired-link.png"))

            response = await page.goto(tampered)
            assert response is not None and response.status == 404
            assert await page.get_by_role("heading", name="This link has expired").is_visible()

            response = await page.goto(f"{base}/wopi/host")
            assert response is not None and response.status == 400
            assert await page.get_by_role("heading", name="This link is incomplete").is_visible()
        finally:
            await browser.close()
    assert (SHOTS / "hostpage-expired-link.png").stat().st_size > 5000
