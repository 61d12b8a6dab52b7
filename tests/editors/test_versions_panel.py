"""The host page's versions panel in a real headless Chromium, with a **fake** Collabora.

The fake editor page completes the PostMessage handshake, then posts ``UI_FileVersions`` as
Collabora does when the user asks for the revision history. The panel lists the versions;
restoring one while the document is open follows the handshake Nextcloud richdocuments uses:
the host posts ``Host_VersionRestore`` (``Pre_Restore``); the editor saves its unsaved edit,
closes the document (releasing its lock) and answers ``App_VersionRestore``
(``Pre_Restore_Ack``); the host then restores and loads the editor again. The test plays the
fake editor's server side (its WOPI calls), as Collabora's server does for its page.
"""

from __future__ import annotations

import asyncio
import json

from tests.editors.test_hostpage_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401


async def _wopi(bridge, method: str, url: str, token: str, **headers: str) -> tuple[int, bytes]:
    async with bridge.http.request(
        method, url, params={"access_token": token}, headers=headers
    ) as answer:
        return answer.status, await answer.read()


async def test_the_panel_lists_downloads_and_restores_while_open(
    bridge,
    discovery_server,
    chromium_path,  # noqa: F811
):
    from playwright.async_api import async_playwright

    discovery_server.after_ready = "UI_FileVersions"
    (bridge.root / "plan.odt").write_bytes(b"first")
    opened = await bridge.open("plan.odt", "cool", "edit")
    token = opened["form_parameters"]["access_token"]
    src = f"{bridge.base}/wopi/files/{opened['file_id']}"
    # the editor's session: it holds the lock and has saved twice
    assert (
        await _wopi(bridge, "POST", src, token, **{"X-WOPI-Override": "LOCK", "X-WOPI-Lock": "C"})
    )[0] == 200
    for body in (b"second", b"third"):
        async with bridge.http.post(
            src + "/contents",
            params={"access_token": token},
            headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "C"},
            data=body,
        ) as answer:
            assert answer.status == 200

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(opened["host_url"])
            await page.wait_for_selector("#versions:not([hidden]) li[data-version]", timeout=15000)
            rows = page.locator("#versions li[data-version]")
            assert await rows.count() == 2
            assert "6 bytes" in await rows.nth(0).inner_text()
            oldest = await rows.nth(1).get_attribute("data-version")
            href = await rows.nth(1).locator("a").get_attribute("href")
            assert href is not None
            status, content = await _wopi(bridge, "GET", href.split("?")[0], token)
            assert (status, content) == (200, b"first")
            assert discovery_server.file_info[0]["FileVersionPostMessage"] is True

            # a version opens read-only in the editor, under its own WOPISrc and token
            async with page.expect_popup() as popup_info:
                await rows.nth(1).locator("button.open").click()
            popup = await popup_info.value
            await popup.wait_for_selector("body[data-state='ready']", timeout=15000)
            version_src = f"{src}/versions/{oldest}"
            assert discovery_server.posted[-1]["WOPISrc"] == version_src
            info = discovery_server.file_info[-1]
            assert (info["ReadOnly"], info["UserCanWrite"], info["Size"]) == (True, False, 5)
            version_token = discovery_server.posted[-1]["access_token"]
            assert version_token != token
            status, content = await _wopi(bridge, "GET", version_src + "/contents", version_token)
            assert (status, content) == (200, b"first")
            for method, url in (
                ("GET", src + "/contents"),
                ("GET", src),
                ("GET", src + "/versions"),
                ("POST", version_src + "/restore"),
            ):
                status, _ = await _wopi(bridge, method, url, version_token)
                assert status in (401, 404), (method, url, status)
            await popup.close()

            await rows.nth(1).locator("button.restore").click()
            for _ in range(100):
                if any(m["MessageId"] == "Host_VersionRestore" for m in discovery_server.seen):
                    break
                await asyncio.sleep(0.1)
            restore = [m for m in discovery_server.seen if m["MessageId"] == "Host_VersionRestore"]
            assert restore and restore[0]["Values"] == {"Status": "Pre_Restore"}
            # nothing is restored before the editor has saved
            assert (bridge.root / "plan.odt").read_bytes() == b"third"

            # the fake editor saves its unsaved edit, closes the document, then acknowledges
            async with bridge.http.post(
                src + "/contents",
                params={"access_token": token},
                headers={
                    "X-WOPI-Override": "PUT",
                    "X-WOPI-Lock": "C",
                    "X-COOL-WOPI-IsExitSave": "true",
                },
                data=b"unsaved edit",
            ) as answer:
                assert answer.status == 200
            status, _ = await _wopi(
                bridge, "POST", src, token, **{"X-WOPI-Override": "UNLOCK", "X-WOPI-Lock": "C"}
            )
            assert status == 200
            frame = page.frame(name="office_frame")
            assert frame is not None
            await frame.evaluate("send('App_VersionRestore', {Status: 'Pre_Restore_Ack'})")

            for _ in range(100):
                if (bridge.root / "plan.odt").read_bytes() == b"first":
                    break
                await asyncio.sleep(0.1)
            assert (bridge.root / "plan.odt").read_bytes() == b"first"
            for _ in range(100):  # the editor is loaded again
                if len(discovery_server.posted) == 3:
                    break
                await asyncio.sleep(0.1)
            assert len(discovery_server.posted) == 3
            assert discovery_server.posted[-1]["WOPISrc"] == src
        finally:
            await browser.close()

    status, body = await _wopi(bridge, "GET", src + "/versions", token)
    versions = json.loads(body)["versions"]
    status, newest = await _wopi(
        bridge, "GET", f"{src}/versions/{versions[0]['id']}/contents", token
    )
    assert newest == b"unsaved edit", "the edit saved before the restore is kept"
    assert oldest in [v["id"] for v in versions], "the restored version stays in the list"
