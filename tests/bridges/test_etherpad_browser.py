"""A real browser (headless Chromium) in a real Etherpad through the bridge: the bridge sees the
browser connect and leave through Etherpad's ``padUsersCount`` and saves when it leaves, with
no webhook and no plugin in Etherpad."""

from __future__ import annotations

import pytest

from tests.support.requires import require_binary, require_module
from wopibridge.bridge.docid import lock_id

from .etherpad_server import EtherpadServer
from .harness import Host, wait_for
from .test_etherpad_bridge import etherpad_table, pad_of

pytestmark = pytest.mark.slow


async def test_typing_in_the_pad_and_leaving_saves_and_unlocks(
    make_host, etherpad: EtherpadServer
) -> None:
    chromium = require_binary("chromium")
    playwright_api = require_module("playwright.async_api", "playwright")
    host: Host = await make_host(etherpad_table(etherpad, save_interval=60, unlock_delay=1))
    stat = await host.put_file("typed.txt", b"Hello\n")
    status, url = await host.open(stat, "etherpad", name="Ann")
    assert status == 303
    pad = pad_of(url)

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(url)
            inner = page.frame_locator('iframe[name="ace_outer"]').frame_locator(
                'iframe[name="ace_inner"]'
            )
            await inner.locator("#innerdocbody").click()
            await page.keyboard.press("Control+End")
            await page.keyboard.type("typed in a browser")
            await page.wait_for_timeout(1000)  # let Etherpad commit the changeset
            await page.close()
        finally:
            await browser.close()

    # Nobody is left in the pad: saved at once (the interval is 60 s), unlocked after 1 s.
    took = await wait_for(lambda: b"typed in a browser" in host.read("typed.txt"), timeout=10)
    assert took < 8
    assert host.read("typed.txt").startswith(b"Hello")
    assert await host.lock_of(stat) in ("", lock_id(pad))

    async def unlocked() -> bool:
        return await host.lock_of(stat) == ""

    await wait_for(unlocked, timeout=10)
    assert await host.open_docs() == []
