"""CodiMD through the bridge, against the FAKE CodiMD of fake_codimd.py (no CodiMD can run
here): edit, webhook save, close, a .zmd bundle with an image, and a file too large for it."""

from __future__ import annotations

from typing import Any

from wopibridge.apps.codimd import read_bundle, write_bundle
from wopibridge.bridge.docid import lock_id
from wopibridge.bridge.keys import BRIDGE

from .fake_codimd import FakeCodiMD
from .harness import Host, wait_for
from .test_codimd_client import PNG, start

FAST = {"save_interval": 0.5, "unlock_delay": 0.5, "poll_interval": 0.1}


def codimd_table(fake: FakeCodiMD, **extra: Any) -> dict[str, Any]:
    return {"codimd": {"url": fake.base_url, **FAST, **extra}}


def unlocked(host: Host, stat):
    async def check() -> bool:
        return await host.lock_of(stat) == ""

    return check


def note_of(fake: FakeCodiMD, url: str) -> str:
    assert url.startswith(fake.base_url + "/") and url.endswith("?both")
    return url.removeprefix(fake.base_url + "/").removesuffix("?both")


async def test_edit_is_saved_after_the_interval(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    stat = await host.put_file("notes.md", b"# Notes\n")
    status, url = await host.open(stat, "codimd")
    assert status == 303
    note = note_of(fake, url)
    assert fake.notes[note].content == "# Notes\n"
    docid = (await host.open_docs())[0]
    assert await host.lock_of(stat) == lock_id(docid)
    fake.edit(note, "# Notes\n\nWritten in CodiMD.\n")
    await wait_for(lambda: host.read("notes.md") == b"# Notes\n\nWritten in CodiMD.\n")
    assert await host.lock_of(stat) == lock_id(docid)


async def test_webhook_save_and_close(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD(api_key="codimd-api-key-0123")
    await start(aiohttp_server, fake)
    host: Host = await make_host(
        codimd_table(fake, apikey="codimd-api-key-0123", save_interval=60, unlock_delay=1)
    )
    stat = await host.put_file("hook.md", b"start\n")
    _, url = await host.open(stat, "codimd")
    docid = note_of(fake, url)  # CERN's API: the note id is the document id
    assert await host.open_docs() == [docid]
    fake.edit(docid, "saved by the webhook\n")
    assert await host.webhook(docid, stat, close=False) == 202
    took = await wait_for(lambda: host.read("hook.md") == b"saved by the webhook\n", timeout=5)
    assert took < 2  # the webhook, not the 60 s interval
    fake.edit(docid, "saved on close\n")
    assert await host.webhook(docid, stat, close=True) == 202
    await wait_for(lambda: host.read("hook.md") == b"saved on close\n", timeout=5)
    await wait_for(unlocked(host, stat), timeout=5)
    assert await host.open_docs() == []
    # A webhook for a document that is no longer open, or with another file's token.
    assert await host.webhook(docid, stat, close=True) == 404
    other = await host.put_file("other.md", b"")
    _, url = await host.open(stat, "codimd")
    assert await host.webhook(docid, other, close=True) == 404
    assert await host.webhook("x" * 5, stat, close=True) == 404


async def test_zmd_bundle_round_trip(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    bundle = write_bundle("# Paper\n\n![figure](fig.png)\n", {"fig.png": PNG})
    stat = await host.put_file("paper.zmd", bundle)
    _, url = await host.open(stat, "codimd")
    note = note_of(fake, url)
    assert list(fake.uploads.values()) == [PNG]
    markdown = fake.notes[note].content
    assert "/uploads/upload_" in markdown and "fig.png" not in markdown
    fake.edit(note, markdown + "\nDiscussion.\n")
    docid = (await host.open_docs())[0]
    assert await host.webhook(docid, stat, close=True) == 202

    def saved() -> bool:
        text, _ = read_bundle(host.read("paper.zmd"))
        return text.endswith("Discussion.\n")

    await wait_for(saved)
    text, files = read_bundle(host.read("paper.zmd"))
    (name,) = files
    assert files[name] == PNG
    assert text == f"# Paper\n\n![figure]({name})\n\nDiscussion.\n"


async def test_too_large_for_codimd(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD(max_body=64)
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    stat = await host.put_file("long.md", b"word " * 100)
    assert await host.open(stat, "codimd") == (413, "The file is too large for CodiMD")
    assert await host.lock_of(stat) == "" and await host.open_docs() == []


async def test_read_only_note(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    stat = await host.put_file("view.md", b"look\n")
    status, url = await host.open(stat, "codimd", mode="view")
    assert status == 303 and url.endswith("/publish")
    note = url.removeprefix(fake.base_url + "/").removesuffix("/publish")
    assert fake.notes[note].locked and fake.notes[note].content == "look\n"
    assert await host.lock_of(stat) == ""


async def test_failed_save_is_retried(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake, unlock_delay=0.2))
    stat = await host.put_file("retry.md", b"one\n")
    _, url = await host.open(stat, "codimd")
    note = note_of(fake, url)
    docid = (await host.open_docs())[0]
    fake.edit(note, "two\n")
    fake.failing_downloads = 2  # the change check and the save both fail once
    assert await host.webhook(docid, stat, close=True) == 202

    async def failed_once() -> bool:
        state = await host.app[BRIDGE].store.get(docid)
        return state is not None and state.failures >= 1 and state.next_try > 0

    await wait_for(failed_once, timeout=5)
    assert host.read("retry.md") == b"one\n"
    assert await host.lock_of(stat) == lock_id(docid)  # kept while the save is pending
    took = await wait_for(lambda: host.read("retry.md") == b"two\n", timeout=10)
    assert took > 0.5  # waited for the backoff
    await wait_for(unlocked(host, stat), timeout=5)


async def test_a_bridged_session_leaves_one_version_not_one_per_save(
    aiohttp_server, make_host
) -> None:
    """The bridge's periodic saves are one session's autosaves (docs/versions.md): the
    content before the session is kept, the saves in between coalesce."""
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    stat = await host.put_file("log.md", b"before\n")
    _, url = await host.open(stat, "codimd")
    note = note_of(fake, url)
    for i in range(3):
        text = f"before\nedit {i}\n"
        fake.edit(note, text)
        await wait_for(lambda text=text: host.read("log.md") == text.encode())
    versions = await host.storage.list_versions(stat.file_id)  # type: ignore[attr-defined]
    assert [v.size for v in versions] == [len(b"before\n")]
