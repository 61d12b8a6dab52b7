"""The host page in a real headless Chromium.

The editor is a **fake**: a stand-in page served by this test at another origin that does what
EDITORS.md says an embedded WOPI editor does: it receives the form POST of ``access_token``
and ``access_token_ttl``, posts ``App_LoadingStatus`` to its parent, waits for
``Host_PostmessageReady`` and then asks to close with ``UI_Close``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from aiohttp import web

from tests.support.procs import require_binary
from wopibridge import keys
from wopibridge.config import load_settings
from wopibridge.editors import setup_editors
from wopibridge.errors import NotFound, error_middleware
from wopibridge.hostpage import HostLinks, HostPage

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN_SECRET = "t" * 32

STAND_IN = """<!DOCTYPE html><html><body><p>stand-in editor</p><script>
var host = %(host)s;
function send(id, values) {
  window.parent.postMessage(JSON.stringify({MessageId: id, SendTime: Date.now(),
                                            Values: values}), host);
}
window.addEventListener("message", function (event) {
  if (event.origin !== host) { return; }
  fetch("/seen", {method: "POST", body: event.data}).then(function () {
    var message = JSON.parse(event.data);
    if (message.MessageId === "Host_PostmessageReady") { send("UI_Close", {}); }
  });
});
send("App_LoadingStatus", {Status: "Frame_Ready"});
</script></body></html>"""


@dataclass
class Secrets:
    token_secret: str
    iop_secret: str


@pytest.fixture
def chromium_path() -> str:
    return os.environ.get("CHROMIUM") or require_binary("chromium")


async def test_host_page_posts_the_token_and_completes_the_handshake(aiohttp_server, chromium_path):
    from playwright.async_api import async_playwright

    posted: list[dict[str, str]] = []
    seen: list[dict] = []
    bridge_origin: list[str] = []

    async def editor(request: web.Request) -> web.Response:
        form = await request.post()
        posted.append({**{k: str(v) for k, v in form.items()}, "WOPISrc": request.query["WOPISrc"]})
        html = STAND_IN % {"host": json.dumps(bridge_origin[0])}
        return web.Response(text=html, content_type="text/html")

    async def seen_message(request: web.Request) -> web.Response:
        seen.append(json.loads(await request.text()))
        return web.Response(text="ok")

    editor_app = web.Application()
    editor_app.router.add_post("/browser/cool.html", editor)
    editor_app.router.add_post("/seen", seen_message)
    editor_server = await aiohttp_server(editor_app, host="127.0.0.1")

    app = web.Application(middlewares=[error_middleware])
    app[keys.SETTINGS] = load_settings(None, env={})
    app[keys.SECRETS] = Secrets(TOKEN_SECRET, "i" * 32)
    setup_editors(app)
    bridge = await aiohttp_server(app, host="localhost")
    bridge_origin.append(f"http://localhost:{bridge.port}")

    wopisrc = f"{bridge_origin[0]}/wopi/files/local.abc"
    app_url = (
        f"http://127.0.0.1:{editor_server.port}/browser/cool.html?WOPISrc={quote(wopisrc, safe='')}"
    )
    link = HostLinks(TOKEN_SECRET).mint(
        HostPage(
            app_url=app_url,
            access_token='tok<en>&"1',
            access_token_ttl=1790000000000,
            title="q3.odt",
        )
    )

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            response = await page.goto(f"{bridge_origin[0]}/wopi/host?link={link}")
            assert response is not None and response.status == 200
            assert await page.title() == "q3.odt"
            await page.wait_for_selector("body[data-state='closed']", timeout=15000)
            assert await page.locator("#office_frame").count() == 0
            assert await page.locator("#closed").is_visible()
        finally:
            await browser.close()

    assert posted == [
        {"access_token": 'tok<en>&"1', "access_token_ttl": "1790000000000", "WOPISrc": wopisrc}
    ]
    assert [m["MessageId"] for m in seen] == ["Host_PostmessageReady"]
    assert isinstance(seen[0]["SendTime"], int) and seen[0]["Values"] == {}


async def test_expired_or_forged_links_are_refused(aiohttp_client):
    app = web.Application(middlewares=[error_middleware])
    app[keys.SETTINGS] = load_settings(None, env={})
    app[keys.SECRETS] = Secrets(TOKEN_SECRET, "i" * 32)
    setup_editors(app)
    client = await aiohttp_client(app)
    page = HostPage(app_url="https://editor.test/x?", access_token="t", access_token_ttl=1)
    good = HostLinks(TOKEN_SECRET).mint(page)
    response = await client.get("/wopi/host", params={"link": good})
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "frame-src https://editor.test;" in csp and "form-action https://editor.test;" in csp
    forged = HostLinks("another secret of 32 characters!").mint(page)
    response = await client.get("/wopi/host", params={"link": forged})
    assert response.status == 404
    assert "expired or is not valid" in await response.text()
    now = [1_800_000_000.0]
    links = HostLinks(TOKEN_SECRET, ttl=120, clock=lambda: now[0])
    link = links.mint(page)
    now[0] += 120
    assert links.open(link) == page
    now[0] += 1
    with pytest.raises(NotFound, match="expired"):
        links.open(link)
    assert (await client.get("/wopi/host")).status == 400
