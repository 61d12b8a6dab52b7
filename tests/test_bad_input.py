"""Hostile and broken requests: each gets its exact status and a short sentence, no traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest

from tests.support.wopi import TOKEN_SECRET, open_file

DOC = b"document bytes"


@pytest.fixture
async def opened(client, data_dir: Path):
    (data_dir / "a.docx").write_bytes(DOC)
    return await open_file(client, "a.docx")


async def _assert_short(resp, status: int) -> None:
    text = await resp.text()
    assert resp.status == status, text
    assert "Traceback" not in text and len(text) < 300


async def test_missing_token(client, opened) -> None:
    await _assert_short(await client.get(opened.path), 401)


async def test_bearer_token_accepted(client, opened) -> None:
    resp = await client.get(opened.path, headers={"Authorization": f"Bearer {opened.token}"})
    assert resp.status == 200


async def test_tampered_token(client, opened) -> None:
    head, body, sig = opened.token.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    await _assert_short(await client.get(opened.path, params={"access_token": tampered}), 401)
    await _assert_short(await client.get(opened.path, params={"access_token": "garbage"}), 401)


async def test_token_with_alg_none_is_refused(client, opened) -> None:
    claims = jwt.decode(opened.token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    await _assert_short(await client.get(opened.path, params={"access_token": unsigned}), 401)


async def test_expired_token(client, opened) -> None:
    claims = jwt.decode(opened.token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 5
    expired = jwt.encode(claims, TOKEN_SECRET, algorithm="HS256")
    await _assert_short(await client.get(opened.path, params={"access_token": expired}), 401)


async def test_token_for_another_file(client, data_dir: Path, opened) -> None:
    (data_dir / "b.docx").write_bytes(b"b")
    other = await open_file(client, "b.docx")
    resp = await client.get(opened.path, params={"access_token": other.token})
    await _assert_short(resp, 404)


async def test_unknown_override(opened) -> None:
    await _assert_short(await opened.op("EXPLODE"), 501)


async def test_lock_id_of_1025_characters(opened) -> None:
    await _assert_short(await opened.lock("x" * 1025), 400)
    assert (await opened.op("GET_LOCK")).headers["X-WOPI-Lock"] == ""


async def test_empty_and_missing_lock_header(opened) -> None:
    await _assert_short(await opened.op("LOCK", {"X-WOPI-Lock": ""}), 400)
    await _assert_short(await opened.op("LOCK"), 400)
    await _assert_short(await opened.op("UNLOCK", {"X-WOPI-Lock": ""}), 400)


async def test_malformed_utf7(opened, data_dir: Path) -> None:
    for bad in ("+ZZZ-", "+2D0-", "a+AGEA"):
        # non-zero padding bits, a lone surrogate, an unterminated shift sequence
        resp = await opened.op("PUT_RELATIVE", {"X-WOPI-SuggestedTarget": bad}, data=b"x")
        await _assert_short(resp, 400)
    bad = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "a+ZZZZZ"})
    await _assert_short(bad, 400)
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == ["a.docx"]


@pytest.mark.parametrize(
    "fileid",
    ["../etc/passwd", "a/../../x", "/etc/passwd", "..", "sub/./a.docx", "a\x00b"],
)
async def test_path_traversal_in_fileid(client, data_dir: Path, fileid: str) -> None:
    from tests.support.wopi import IOP_SECRET

    resp = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": fileid,
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u",
            "appurl": "https://e/x?",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert resp.status in (400, 404)
    await _assert_short(resp, resp.status)


async def test_symlink_leaving_root(client, data_dir: Path, tmp_path: Path) -> None:
    from tests.support.wopi import IOP_SECRET

    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, data_dir / "link.txt")
    resp = await client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "link.txt",
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u",
            "appurl": "https://e/x?",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    await _assert_short(resp, 404)


@pytest.mark.parametrize(
    "file_id", ["%00%ff%fe", "local.%E2%98%83", "nothing", "local.", "x" * 600]
)
async def test_file_id_of_random_bytes(client, opened, file_id: str) -> None:
    resp = await client.get(f"/wopi/files/{file_id}", params={"access_token": opened.token})
    await _assert_short(resp, 404)


async def test_body_larger_than_limit(aiohttp_client, make_settings, data_dir: Path) -> None:
    from wopibridge.app import create_app

    client = await aiohttp_client(create_app(make_settings(server={"max_upload_size": 1000})))
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    await opened.lock("L1")
    await _assert_short(await opened.put_file(b"x" * 1001, lock="L1"), 413)

    async def chunked():
        for _ in range(5):
            yield b"y" * 400

    resp = await client.post(
        opened.path + "/contents",
        params={"access_token": opened.token},
        headers={"X-WOPI-Override": "PUT", "X-WOPI-Lock": "L1"},
        data=chunked(),
    )
    assert resp.status == 413
    assert (data_dir / "a.docx").read_bytes() == DOC
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == ["a.docx"]
    relative = await opened.op(
        "PUT_RELATIVE", {"X-WOPI-SuggestedTarget": ".pdf", "X-WOPI-Size": "5000"}, data=b"z"
    )
    assert relative.status == 413


async def test_put_user_info_not_utf8(opened) -> None:
    await _assert_short(await opened.op("PUT_USER_INFO", data=b"\xff\xfe"), 400)


async def test_editors_cannot_create_desktop_lock_files(client, opened, data_dir: Path) -> None:
    """A ``.~lock.<name>#`` or ``~$<name>`` file would make that document open read-only for
    everyone, so Save As and rename refuse those names and suggestions are adjusted."""
    (data_dir / "b.docx").write_bytes(DOC)
    for name in (".~lock.b.docx#", "~$b.docx"):
        resp = await opened.op(
            "PUT_RELATIVE", {"X-WOPI-RelativeTarget": name.encode("utf-7").decode()}, data=b"x"
        )
        await _assert_short(resp, 400)
        assert resp.headers["X-WOPI-InvalidFileNameError"]
    suggested = await opened.op(
        "PUT_RELATIVE", {"X-WOPI-SuggestedTarget": "~$b.docx".encode("utf-7").decode()}, data=b"y"
    )
    assert suggested.status == 200
    assert (await suggested.json())["Name"] == "b (1).docx"
    await opened.lock("L1")
    renamed = await opened.op(
        "RENAME_FILE",
        {"X-WOPI-RequestedName": "~$a".encode("utf-7").decode(), "X-WOPI-Lock": "L1"},
    )
    await _assert_short(renamed, 400)
    assert sorted(p.name for p in data_dir.iterdir() if p.name != ".wopibridge") == [
        "a.docx",
        "b (1).docx",
        "b.docx",
    ]
    info = await (await open_file(client, "b.docx")).check_file_info()
    assert info.get("UserCanWrite") is True
