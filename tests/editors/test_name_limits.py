"""Names the host cannot serve in every mode are refused everywhere, and a refused request
creates nothing.

Editing an ODF file writes ``.~lock.<name>#`` beside it, eight bytes longer than the name, so a
name of 248 to 255 bytes could be created but never edited. Every way of making a name (a new
document by ``/wopi/iop/new`` and ``/wopi/open``, Save As in both modes, rename) refuses it with
the same sentence, or, where WOPI lets the host adjust the name (``X-WOPI-SuggestedTarget``),
shortens it. A file given such a name outside wopibridge still opens and edits. The editors
are the fakes of ``fakes.py``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import pytest

from tests.mesh.conftest import CS3_TOKEN, start_gateway
from tests.support.procs import RedisServer
from wopibridge.wopi.names import decode_utf7, encode_utf7

from .conftest import IOP, signed, start
from .fakes import FakeCollabora

TOO_LONG = "The file name is too long"
#: 250 bytes: a valid file name whose lock-file name (258 bytes) is not.
LONG = "é" * 123 + ".odt"


def names_in(folder: Path) -> list[str]:
    """The documents in ``folder`` (wopibridge's own ``.wopibridge`` records left out)."""
    return sorted(path.name for path in folder.iterdir() if path.name != ".wopibridge")


async def iop_new(http: aiohttp.ClientSession, base: str, filename: str, **more: str):
    params = {"filename": filename, "userid": "ann@idp", "appname": "Collabora", **more}
    async with http.post(
        f"{base}/wopi/iop/new", params=params, headers={"Authorization": f"Bearer {IOP}"}
    ) as response:
        return response.status, await response.text()


async def test_new_documents_refuse_unservable_names_and_create_nothing(bridge):
    assert len(LONG.encode()) == 250
    for name in (LONG, "x" * 248 + ".odt", "y" * 256 + ".odt"):
        status, text = await iop_new(bridge.http, bridge.base, name)
        assert (status, text) == (400, TOO_LONG), name
        async with bridge.http.post(
            f"{bridge.base}/wopi/open",
            json={"mode": "new", "name": name, "user": {"id": "ann@idp"}, "app": "collabora"},
            headers={"Authorization": f"Bearer {IOP}"},
        ) as response:
            assert (response.status, await response.text()) == (400, TOO_LONG), name
    assert names_in(bridge.root) == []
    # the longest name that can be served is taken: its variant is shortened to fit
    longest = "z" * 243 + ".odt"
    for _ in range(2):
        status, text = await iop_new(bridge.http, bridge.base, longest)
        assert status == 200, text
    made = names_in(bridge.root)
    assert len(made) == 2 and longest in made
    assert all(len(name.encode()) <= 247 for name in made), made


async def test_save_as_and_rename_use_the_same_rule(bridge, signer):
    (bridge.root / "plan.odt").write_bytes(b"plan")
    editor, _ = await bridge.editor(FakeCollabora, "plan.odt", "collabora", signer)
    await editor.open()
    # Save As to a name given exactly (X-WOPI-RelativeTarget): refused, nothing created
    answer = await editor.override(
        "PUT_RELATIVE", **{"X-WOPI-RelativeTarget": encode_utf7(LONG), "X-WOPI-Size": "1"}
    )
    assert (answer.status, answer.body.decode()) == (400, TOO_LONG)
    assert answer.headers["X-WOPI-InvalidFileNameError"] == TOO_LONG
    # rename: refused, the file keeps its name
    stem = LONG.removesuffix(".odt")
    answer = await editor.override("RENAME_FILE", **{"X-WOPI-RequestedName": encode_utf7(stem)})
    assert (answer.status, answer.body.decode()) == (400, TOO_LONG)
    assert answer.headers["X-WOPI-InvalidFileNameError"] == TOO_LONG
    # nothing by the long name (the lock file of plan.odt may be on its way in meanwhile)
    assert all(len(name.encode()) < 100 for name in names_in(bridge.root))
    assert "plan.odt" in names_in(bridge.root)
    # a suggested name (X-WOPI-SuggestedTarget) is the host's to adjust: shortened to fit
    answer = await editor.call(
        "POST",
        headers={"X-WOPI-Override": "PUT_RELATIVE", "X-WOPI-SuggestedTarget": encode_utf7(LONG)},
        data=b"copy",
    )
    assert answer.status == 200, answer
    made = answer.json()["Name"]
    assert made.endswith(".odt") and len(made.encode()) <= 247
    assert (bridge.root / made).read_bytes() == b"copy"
    wopisrc, _, token = answer.json()["Url"].partition("?access_token=")
    app_url = f"https://editor.example/?WOPISrc={quote(wopisrc, safe='')}"
    copy = FakeCollabora(bridge.http, app_url, unquote(token), signer)
    await copy.open()  # the copy opens for editing: its lock file fits
    assert (await copy.save(b"copy 2")).status == 200
    assert (await copy.close()).status == 200
    assert (await editor.close()).status == 200


async def test_a_long_name_made_outside_opens_and_edits(bridge, signer):
    """Named on the file system, not through wopibridge: opened, locked, saved and unlocked
    without an error escaping; it simply has no desktop lock file."""
    (bridge.root / LONG).write_bytes(b"v1")
    editor, opened = await bridge.editor(FakeCollabora, LONG, "collabora", signer)
    assert opened["mode"] == "edit", opened
    info = await editor.open()
    assert info["BaseFileName"] == LONG and info["UserCanWrite"] is True
    assert (await editor.save(b"v2")).status == 200
    assert (await editor.close()).status == 200
    assert (bridge.root / LONG).read_bytes() == b"v2"
    assert names_in(bridge.root) == [LONG]
    # Save As from it with only an extension: the new name is shortened to fit
    answer = await editor.call(
        "POST",
        headers={"X-WOPI-Override": "PUT_RELATIVE", "X-WOPI-SuggestedTarget": ".ods"},
        data=b"sheet",
    )
    assert answer.status == 200, answer
    made = decode_utf7(encode_utf7(answer.json()["Name"]), "name")
    assert made.endswith(".ods") and len(made.encode()) <= 247


async def test_a_new_document_whose_open_fails_is_removed(
    tmp_path, aiohttp_server, discovery_server, signer
):
    """The file is created on the (fake) Reva gateway, then the open fails because the token
    store (a real redis-server) is gone: the answer is a 503 and no file stays behind."""
    discovery_server.docs["collabora"] = signed(discovery_server.docs["collabora"], signer)
    redis = RedisServer(tmp_path)
    redis.start()
    running = await start_gateway(tmp_path / "cs3")
    try:
        body = f"""short_tokens = true

[locks]
url = "{redis.url}"

[apps.collabora]
discovery_url = "{discovery_server.url("collabora")}"

[storages.cernbox]
type = "cs3"
gateway = "{running.address}"
"""
        base, _ = await start(aiohttp_server, tmp_path, body)
        params = {
            "filename": "Agenda.odt",
            "endpoint": "cernbox",
            "userid": "einstein@idp",
            "appname": "collabora",
        }
        headers = {"Authorization": f"Bearer {IOP}", "TokenHeader": CS3_TOKEN}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/wopi/iop/new", params=params, headers=headers) as r:
                assert r.status == 200, await r.text()
            assert names_in(tmp_path / "cs3") == ["Agenda.odt"]
            redis.stop()
            async with http.post(f"{base}/wopi/iop/new", params=params, headers=headers) as r:
                assert r.status == 503, await r.text()
            assert names_in(tmp_path / "cs3") == ["Agenda.odt"]
    finally:
        await running.stop()
        redis.stop()


@pytest.mark.parametrize("name", [LONG, "q" * 255])
async def test_iop_new_refuses_before_touching_the_storage(bridge, name):
    (bridge.root / "sub").mkdir()
    status, text = await iop_new(bridge.http, bridge.base, name, folder="sub")
    assert (status, text) == (400, TOO_LONG)
    assert names_in(bridge.root / "sub") == []


async def test_a_refused_save_of_a_long_multibyte_name_is_kept(bridge, signer):
    """A servable name of 244 bytes in 81 characters: a save refused for its lock is kept as
    a conflict copy whose name fits too (names are counted in bytes), never dropped."""
    name = "文" * 80 + ".odt"
    (bridge.root / name).write_bytes(b"v1")
    holder, _ = await bridge.editor(FakeCollabora, name, "collabora", signer)
    other, _ = await bridge.editor(FakeCollabora, name, "collabora", signer)
    await holder.open()
    answer = await other.put_file(b"bob's bytes", **{"X-WOPI-Lock": "another"})
    assert answer.status == 409
    kept = [
        p for p in bridge.root.iterdir() if p.name not in (name, f".~lock.{name}#", ".wopibridge")
    ]
    assert [p.read_bytes() for p in kept] == [b"bob's bytes"], kept
    assert "(conflict Ada Lovelace" in kept[0].name and kept[0].name.endswith(".odt")
    assert len(kept[0].name.encode()) <= 247
    assert (bridge.root / name).read_bytes() == b"v1"
    assert (await holder.close()).status == 200
