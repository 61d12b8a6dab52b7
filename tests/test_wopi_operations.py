"""Every WOPI operation and every conflict row of the checklist, over HTTP, on both lock stores."""

from __future__ import annotations

from pathlib import Path

from tests.support.wopi import open_file

DOC = b"PK\x03\x04 pretend this is a document"


async def test_check_file_info_required_properties(client, data_dir: Path) -> None:
    (data_dir / "report.docx").write_bytes(DOC)
    opened = await open_file(client, "report.docx")
    info = await opened.check_file_info()
    assert info["BaseFileName"] == "report.docx"
    assert info["Size"] == len(DOC)
    assert info["UserId"] == "ann@idp.example"
    assert info["UserFriendlyName"] == "Ann Example"
    assert info["OwnerId"]
    assert info["Version"]
    assert info["UserCanWrite"] is True
    assert info["SupportsLocks"] and info["SupportsGetLock"] and info["SupportsUpdate"]
    assert info["SupportsExtendedLockLength"] is True
    assert info["LastModifiedTime"].endswith("Z") and len(info["LastModifiedTime"]) == 27


async def test_view_token_is_read_only(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx", viewmode="VIEW_MODE_READ_ONLY")
    info = await opened.check_file_info()
    assert info["UserCanWrite"] is False
    assert info["UserCanNotWriteRelative"] is True
    assert (await opened.lock("L")).status == 401
    assert (await opened.put_file(b"x", lock="L")).status == 401
    assert (await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "b"})).status == 401
    assert (await opened.op("DELETE")).status == 401
    assert (await opened.op("PUT_RELATIVE", {"X-WOPI-SuggestedTarget": ".pdf"})).status == 401
    assert (await opened.get_file()).status == 200
    assert (await opened.op("GET_LOCK")).status == 200
    assert (data_dir / "a.docx").read_bytes() == DOC


async def test_get_file_streams_content_with_version(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    info = await opened.check_file_info()
    resp = await opened.get_file()
    assert resp.status == 200
    assert await resp.read() == DOC
    assert resp.headers["X-WOPI-ItemVersion"] == info["Version"]


async def test_get_file_max_expected_size(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    assert (await opened.get_file({"X-WOPI-MaxExpectedSize": "3"})).status == 412
    ok = await opened.get_file({"X-WOPI-MaxExpectedSize": str(len(DOC))})
    assert ok.status == 200
    assert (await opened.get_file({"X-WOPI-MaxExpectedSize": "lots"})).status == 400


async def test_lock_flow(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    assert (await opened.lock("L1")).status == 200
    assert (await opened.lock("L1")).status == 200  # same lock refreshes
    conflict = await opened.lock("L2")
    assert conflict.status == 409
    assert conflict.headers["X-WOPI-Lock"] == "L1"
    got = await opened.op("GET_LOCK")
    assert got.status == 200 and got.headers["X-WOPI-Lock"] == "L1"
    assert (await opened.op("REFRESH_LOCK", {"X-WOPI-Lock": "L1"})).status == 200
    wrong = await opened.op("REFRESH_LOCK", {"X-WOPI-Lock": "L9"})
    assert wrong.status == 409 and wrong.headers["X-WOPI-Lock"] == "L1"
    relock_bad = await opened.lock("L3", old="L9")
    assert relock_bad.status == 409 and relock_bad.headers["X-WOPI-Lock"] == "L1"
    assert (await opened.lock("L3", old="L1")).status == 200
    unlock_bad = await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})
    assert unlock_bad.status == 409 and unlock_bad.headers["X-WOPI-Lock"] == "L3"
    assert (await opened.op("UNLOCK", {"X-WOPI-Lock": "L3"})).status == 200
    got = await opened.op("GET_LOCK")
    assert got.headers["X-WOPI-Lock"] == ""


async def test_operations_on_unlocked_file_answer_empty_lock(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    for override in ("UNLOCK", "REFRESH_LOCK"):
        resp = await opened.op(override, {"X-WOPI-Lock": "L1"})
        assert resp.status == 409
        assert resp.headers["X-WOPI-Lock"] == ""
    relock = await opened.lock("L2", old="L1")
    assert relock.status == 409 and relock.headers["X-WOPI-Lock"] == ""


async def test_lock_is_shared_by_every_token_of_the_file(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    ann = await open_file(client, "a.docx")
    bob = await open_file(client, "a.docx", userid="bob@idp", username="Bob")
    assert ann.file_id == bob.file_id
    assert (await ann.lock("L1")).status == 200
    assert (await bob.lock("L2")).headers["X-WOPI-Lock"] == "L1"
    assert (await bob.op("UNLOCK", {"X-WOPI-Lock": "L1"})).status == 200


async def test_extended_lock_length_compared_verbatim(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    long_lock = '{"S":"' + "x" * 1010 + '"}'
    long_lock = long_lock[:1024]
    assert (await opened.lock(long_lock)).status == 200
    assert (await opened.op("GET_LOCK")).headers["X-WOPI-Lock"] == long_lock
    other = long_lock[:-1] + "y"
    assert (await opened.lock(other)).status == 409


async def test_put_file_rules(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    before = await opened.check_file_info()
    unlocked = await opened.put_file(b"new", lock="L1")
    assert unlocked.status == 409 and unlocked.headers["X-WOPI-Lock"] == ""
    assert (await opened.lock("L1")).status == 200
    wrong = await opened.put_file(b"new", lock="L2")
    assert wrong.status == 409 and wrong.headers["X-WOPI-Lock"] == "L1"
    missing = await opened.put_file(b"new")
    assert missing.status == 409 and missing.headers["X-WOPI-Lock"] == "L1"
    assert (data_dir / "a.docx").read_bytes() == DOC
    ok = await opened.put_file(b"new content", lock="L1")
    assert ok.status == 200
    after = await opened.check_file_info()
    body = await ok.json()
    assert body["LastModifiedTime"] == after["LastModifiedTime"]
    assert ok.headers["X-WOPI-ItemVersion"] == after["Version"] != before["Version"]
    assert (data_dir / "a.docx").read_bytes() == b"new content"


async def test_version_and_time_change_on_every_write(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    await opened.lock("L1")
    versions, times = set(), set()
    for round_ in range(20):
        resp = await opened.put_file(b"same bytes" if round_ % 2 else b"other", lock="L1")
        versions.add(resp.headers["X-WOPI-ItemVersion"])
        times.add((await resp.json())["LastModifiedTime"])
    assert len(versions) == 20 and len(times) == 20


async def test_put_file_on_empty_unlocked_file_creates(client, data_dir: Path) -> None:
    (data_dir / "new.docx").write_bytes(b"")
    opened = await open_file(client, "new.docx")
    resp = await opened.put_file(DOC)
    assert resp.status == 200
    assert (data_dir / "new.docx").read_bytes() == DOC


async def test_put_relative_suggested_never_overwrites(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    (data_dir / "a.pdf").write_bytes(b"existing pdf")
    opened = await open_file(client, "a.docx")
    resp = await opened.op("PUT_RELATIVE", {"X-WOPI-SuggestedTarget": ".pdf"}, data=b"%PDF")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["Name"] == "a (1).pdf"
    assert (data_dir / "a.pdf").read_bytes() == b"existing pdf"
    assert (data_dir / "a (1).pdf").read_bytes() == b"%PDF"
    new_info = await client.get(body["Url"].split("127.0.0.1:8880", 1)[1])
    assert new_info.status == 200
    assert (await new_info.json())["BaseFileName"] == "a (1).pdf"


async def test_put_relative_utf7_names(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    name = "Bericht über Käse.docx"
    encoded = name.encode("utf-7").decode()
    resp = await opened.op("PUT_RELATIVE", {"X-WOPI-SuggestedTarget": encoded}, data=b"x")
    assert resp.status == 200
    assert (await resp.json())["Name"] == name
    assert (data_dir / name).read_bytes() == b"x"


async def test_put_relative_exact_name_rules(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    (data_dir / "b.docx").write_bytes(b"old b")
    opened = await open_file(client, "a.docx")
    taken = await opened.op("PUT_RELATIVE", {"X-WOPI-RelativeTarget": "b.docx"}, data=b"new")
    assert taken.status == 409
    assert taken.headers["X-WOPI-ValidRelativeTarget"] == "b (1).docx"
    assert (data_dir / "b.docx").read_bytes() == b"old b"

    other = await open_file(client, "b.docx")
    await other.lock("LB")
    locked = await opened.op(
        "PUT_RELATIVE",
        {"X-WOPI-RelativeTarget": "b.docx", "X-WOPI-OverwriteRelativeTarget": "true"},
        data=b"new",
    )
    assert locked.status == 409 and locked.headers["X-WOPI-Lock"] == "LB"
    await other.op("UNLOCK", {"X-WOPI-Lock": "LB"})

    overwrite = await opened.op(
        "PUT_RELATIVE",
        {"X-WOPI-RelativeTarget": "b.docx", "X-WOPI-OverwriteRelativeTarget": "true"},
        data=b"new",
    )
    assert overwrite.status == 200
    assert (data_dir / "b.docx").read_bytes() == b"new"
    both = await opened.op(
        "PUT_RELATIVE",
        {"X-WOPI-RelativeTarget": "c.docx", "X-WOPI-SuggestedTarget": ".pdf"},
        data=b"x",
    )
    assert both.status == 400
    assert not (data_dir / "c.docx").exists()


async def test_rename_keeps_file_id(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    (data_dir / "taken.docx").write_bytes(b"t")
    opened = await open_file(client, "a.docx")
    resp = await opened.op(
        "RENAME_FILE", {"X-WOPI-RequestedName": "Résumé".encode("utf-7").decode()}
    )
    assert resp.status == 200
    assert (await resp.json())["Name"] == "Résumé"
    info = await opened.check_file_info()
    assert info["BaseFileName"] == "Résumé.docx"
    assert (data_dir / "Résumé.docx").read_bytes() == DOC
    again = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "taken"})
    assert (await again.json())["Name"] == "taken (1)"
    assert (data_dir / "taken.docx").read_bytes() == b"t"
    bad = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "a/b"})
    assert bad.status == 400 and "X-WOPI-InvalidFileNameError" in bad.headers


async def test_rename_respects_lock(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    await opened.lock("L1")
    resp = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "b", "X-WOPI-Lock": "L2"})
    assert resp.status == 409 and resp.headers["X-WOPI-Lock"] == "L1"
    ok = await opened.op("RENAME_FILE", {"X-WOPI-RequestedName": "b", "X-WOPI-Lock": "L1"})
    assert ok.status == 200


async def test_delete_file(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    await opened.lock("L1")
    locked = await opened.op("DELETE")
    assert locked.status == 409 and locked.headers["X-WOPI-Lock"] == "L1"
    await opened.op("UNLOCK", {"X-WOPI-Lock": "L1"})
    assert (await opened.op("DELETE")).status == 200
    assert not (data_dir / "a.docx").exists()
    assert (await opened.op("DELETE")).status == 404
    gone = await client.get(opened.path, params={"access_token": opened.token})
    assert gone.status == 404


async def test_put_user_info(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    assert (await opened.op("PUT_USER_INFO", data=b"some user info")).status == 200
    assert (await opened.check_file_info())["UserInfo"] == "some user info"
    bob = await open_file(client, "a.docx", userid="bob@idp")
    assert (await bob.check_file_info())["UserInfo"] == ""
    assert (await opened.op("PUT_USER_INFO", data=b"x" * 1025)).status == 400


async def test_unsupported_operations_are_501(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(DOC)
    opened = await open_file(client, "a.docx")
    assert (await opened.op("GET_SHARE_URL")).status == 501
    assert (await opened.op("FROBNICATE")).status == 501
    assert (await opened.op("")).status == 501
    info = await opened.check_file_info()
    assert "SupportsCoauth" not in info and "SupportsContainers" not in info
