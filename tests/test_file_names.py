"""Names users already have open in every mode; the name rules apply only to names an editor
asks wopibridge to create (Save As, rename)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.waiting import eventually
from tests.support.wopi import open_file

#: An office app that keeps desktop lock files; its discovery is never needed here (openinapp
#: brings the editor URL), so it points at a closed port.
COLLABORA = {"collabora": {"discovery_url": "http://127.0.0.1:9/hosting/discovery"}}

LEGAL_POSIX_NAMES = [
    "what?.odt",
    "a<b>.txt",
    'say "hi".docx',
    "Q3|Q4.xlsx",
    "star*.txt",
    "tab\there.odt",
    "12:30 notes.txt",
    "ab:c.txt",
    "back\\slash.txt",
    "C:drive.txt",
    " leading space.txt",
    "trailing dot..docx",
    "100% #1 & more;.pptx",
    "日本語 ファイル.odt",
]


@pytest.mark.parametrize("name", LEGAL_POSIX_NAMES)
async def test_any_legal_name_opens_in_every_mode(client, data_dir: Path, name: str) -> None:
    (data_dir / "sub").mkdir()
    target = data_dir / "sub" / name
    target.write_bytes(b"v0")
    for viewmode in ("VIEW_MODE_READ_ONLY", "VIEW_MODE_PREVIEW", "VIEW_MODE_READ_WRITE"):
        opened = await open_file(client, f"sub/{name}", viewmode, appname="Collabora")
        info = await opened.check_file_info()
        assert info["BaseFileName"] == name
        assert info["UserCanWrite"] is (viewmode == "VIEW_MODE_READ_WRITE")
    # an edit session works end to end: lock, save, get, unlock
    assert (await opened.lock("L1")).status == 200
    assert (await opened.put_file(b"v1", lock="L1")).status == 200
    got = await opened.get_file()
    assert got.status == 200 and await got.read() == b"v1"
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200
    assert target.read_bytes() == b"v1"


async def test_desktop_lock_file_of_a_legal_name_is_written_and_removed(
    aiohttp_client, make_settings, data_dir: Path
) -> None:
    """``what?.odt`` used to answer 400 in edit mode: looking for its ``.~lock.what?.odt#``
    applied the create rules to a name nobody was creating."""
    from wopibridge.app import create_app

    client = await aiohttp_client(create_app(make_settings(apps=COLLABORA)))
    (data_dir / "what?.odt").write_bytes(b"odt")
    opened = await open_file(client, "what?.odt", appname="collabora")
    assert (await opened.lock("L1")).status == 200
    lock_file = data_dir / ".~lock.what?.odt#"
    await eventually(lock_file.exists)
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200
    await eventually(lambda: not lock_file.exists())


async def test_name_rules_still_apply_to_names_editors_ask_for(client, data_dir: Path) -> None:
    (data_dir / "what?.docx").write_bytes(b"x")
    opened = await open_file(client, "what?.docx")
    for name in ("a?b.docx", "x:y.docx", "back\\slash.docx", "../escape.docx"):
        resp = await opened.op(
            "PUT_RELATIVE", {"X-WOPI-RelativeTarget": name.encode("utf-7").decode()}, data=b"n"
        )
        assert resp.status == 400, name
        assert resp.headers.get("X-WOPI-InvalidFileNameError")
    renamed = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "bad|name"})
    assert renamed.status == 400
    # a suggested name is adjusted instead
    resp = await opened.op(
        "PUT_RELATIVE", {"X-WOPI-SuggestedTarget": "copy?.docx".encode("utf-7").decode()}, b"s"
    )
    assert resp.status == 200 and (await resp.json())["Name"] == "copy_.docx"
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == [
        "copy_.docx",
        "what?.docx",
    ]


@pytest.mark.parametrize("requested", ["", " ", ".", "..", " . "])
async def test_rename_to_an_empty_name_is_refused(client, data_dir: Path, requested: str) -> None:
    (data_dir / "keep.txt").write_bytes(b"keep")
    opened = await open_file(client, "keep.txt")
    resp = await opened.op(
        "RENAME_FILE", {"X-WOPI-RequestedName": requested.encode("utf-7").decode()}
    )
    assert resp.status == 400
    assert "empty" in resp.headers["X-WOPI-InvalidFileNameError"]
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == ["keep.txt"]


async def test_save_as_to_an_extensionless_or_empty_name_is_refused(client, data_dir: Path) -> None:
    (data_dir / "keep.txt").write_bytes(b"keep")
    opened = await open_file(client, "keep.txt")
    for header, name in (
        ("X-WOPI-RelativeTarget", "noextension"),
        ("X-WOPI-RelativeTarget", ".txt"),
        ("X-WOPI-RelativeTarget", ""),
        ("X-WOPI-SuggestedTarget", ""),
        ("X-WOPI-SuggestedTarget", "."),
    ):
        resp = await opened.op("PUT_RELATIVE", {header: name}, data=b"x")
        assert resp.status == 400, (header, name)
        assert resp.headers["X-WOPI-InvalidFileNameError"]
    # a bare suggested name keeps the document's type
    resp = await opened.op("PUT_RELATIVE", {"X-WOPI-SuggestedTarget": "copy"}, data=b"x")
    assert resp.status == 200 and (await resp.json())["Name"] == "copy.txt"
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == [
        "copy.txt",
        "keep.txt",
    ]


async def test_put_user_info_in_two_tcp_segments(client, data_dir: Path) -> None:
    """A 100-byte body that arrives in two pieces is read to its end."""
    (data_dir / "a.docx").write_bytes(b"a")
    opened = await open_file(client, "a.docx")
    body = b'{"theme":"dark","ruler":true,"note":"' + b"x" * 61 + b'"}'
    assert len(body) == 100
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"POST {opened.path}?access_token={opened.token} HTTP/1.1\r\n"
        f"Host: x\r\nX-WOPI-Override: PUT_USER_INFO\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(head + body[:37])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(body[37:])
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert (await opened.check_file_info())["UserInfo"] == body.decode()
    too_long = await opened.op("PUT_USER_INFO", data=b"y" * 1025)
    assert too_long.status == 400
