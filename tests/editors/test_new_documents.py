"""New documents over HTTP: built-in blanks, templates on local storage and on a real wsgidav,
collision-free names, Collabora's ``TemplateSource`` and the ``editnew`` action.

Every built-in blank is opened by a real reader of its format (python-docx, openpyxl,
python-pptx, odfpy), not only checked for bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import docx
import openpyxl
import pptx
import pytest
from odf import opendocument
from odf.namespaces import OFFICENS

from tests.mesh.conftest import DavServer
from wopibridge.wopi.templates import BLANK_EXTENSIONS, BLANKS

from .conftest import IOP, signed, start
from .fakes import FakeCollabora, FakeMicrosoft, FakeOnlyOffice

ODF_BODY = {".odt": "text", ".ods": "spreadsheet", ".odp": "presentation"}


def parse(extension: str, data: bytes) -> Any:
    """Open a document with a real reader of its format; fail if it is not valid."""
    stream = io.BytesIO(data)
    if extension == ".docx":
        return docx.Document(stream)
    if extension == ".xlsx":
        return openpyxl.load_workbook(stream)
    if extension == ".pptx":
        return pptx.Presentation(stream)
    if extension in ODF_BODY:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.read("mimetype").decode().endswith(ODF_BODY[extension])
        doc = opendocument.load(stream)
        assert doc.body.childNodes, "no office:body content"
        assert doc.body.childNodes[0].qname == (OFFICENS, ODF_BODY[extension])
        return doc
    return data.decode("utf-8")


@pytest.mark.parametrize("extension", BLANK_EXTENSIONS)
def test_every_blank_opens_in_a_real_reader(extension):
    data = (BLANKS / f"blank{extension}").read_bytes()
    assert data
    doc = parse(extension, data)
    if extension == ".docx":
        assert doc.sections  # a page to type on
    elif extension == ".xlsx":
        assert doc.active is not None and doc.sheetnames
    elif extension == ".pptx":
        assert doc.slide_width and doc.slide_height
    elif extension in (".md", ".txt"):
        assert doc == "\n"


async def post_open(http, base: str, **body: Any) -> tuple[int, Any]:
    body.setdefault("user", {"id": "ada@idp", "name": "Ada Lovelace"})
    async with http.post(
        f"{base}/wopi/open", json=body, headers={"Authorization": f"Bearer {IOP}"}
    ) as response:
        if response.status != 200:
            return response.status, await response.text()
        return 200, await response.json()


async def fill_from_template_source(editor: FakeCollabora, http) -> bytes:
    """Collabora's new-file sequence: CheckFileInfo names a TemplateSource; the editor
    fetches it and saves it as the file's first content."""
    info = await editor.open()
    assert info["Size"] == 0
    source = info["TemplateSource"]
    async with http.get(source) as answer:
        assert answer.status == 200
        template = await answer.read()
    saved = await editor.save(template)
    assert saved.status == 200, saved
    assert "TemplateSource" not in await editor.check_file_info()
    return template


async def test_new_document_per_editor_on_local_storage(bridge, signer):
    (bridge.root / "reports").mkdir()
    http = bridge.http
    # OnlyOffice: the file is created from the blank and opened with editnew
    status, opened = await post_open(
        http, bridge.base, mode="new", folder="reports", name="Q4.docx", app="onlyoffice"
    )
    assert status == 200, opened
    assert opened["name"] == "Q4.docx" and opened["mode"] == "edit"
    created = (bridge.root / "reports" / "Q4.docx").read_bytes()
    assert created == (BLANKS / "blank.docx").read_bytes()
    editor = FakeOnlyOffice(
        http, opened["app_url"], opened["form_parameters"]["access_token"], signer
    )
    info = await editor.open()
    assert info["Size"] == len(created) and "TemplateSource" not in info
    parse(".docx", await editor.get_file())
    assert (await editor.save(created + b"")).status == 200
    # the same name again: a free variant, the first file untouched
    status, again = await post_open(
        http, bridge.base, mode="new", folder="reports", name="Q4.docx", app="msoffice"
    )
    assert again["name"] == "Q4 (1).docx"
    assert "new=1" in again["app_url"]  # Microsoft's editnew action
    assert (bridge.root / "reports" / "Q4.docx").read_bytes() == created
    ms = FakeMicrosoft(http, again["app_url"], again["form_parameters"]["access_token"], signer)
    assert (await ms.check_file_info())["BaseFileName"] == "Q4 (1).docx"

    # Collabora: an empty file, the template through TemplateSource, the first PutFile fills it
    status, opened = await post_open(
        http, bridge.base, mode="new", folder="reports", name="Plan.odt", app="collabora"
    )
    assert status == 200, opened
    assert (bridge.root / "reports" / "Plan.odt").read_bytes() == b""
    token = opened["form_parameters"]["access_token"]
    editor = FakeCollabora(http, opened["app_url"], token, signer)
    info = await editor.check_file_info()
    source = urlsplit(info["TemplateSource"])
    template_token = parse_qs(source.query)["access_token"][0]
    # the template token is good for the template only, never for WOPI files
    async with http.get(f"{editor.wopisrc}?access_token={template_token}") as answer:
        assert answer.status == 404
    other_src = f"{bridge.base}/wopi/templates/_blank.ods?access_token={template_token}"
    async with http.get(other_src) as answer:
        assert answer.status == 404
    filled = await fill_from_template_source(editor, http)
    assert filled == (BLANKS / "blank.odt").read_bytes()
    parse(".odt", (bridge.root / "reports" / "Plan.odt").read_bytes())


async def test_new_document_from_a_template_on_local_storage(bridge, signer):
    (bridge.root / "templates").mkdir()
    template = (BLANKS / "blank.xlsx").read_bytes()
    (bridge.root / "templates" / "budget.xlsx").write_bytes(template)
    status, opened = await post_open(
        bridge.http,
        bridge.base,
        mode="new",
        name="Budget 2027.xlsx",
        app="msoffice",
        template={"path": "templates/budget.xlsx"},
    )
    assert status == 200, opened
    assert (bridge.root / "Budget 2027.xlsx").read_bytes() == template
    parse(".xlsx", (bridge.root / "Budget 2027.xlsx").read_bytes())
    # Collabora, template by file id: served through TemplateSource from the storage
    status, seen = await post_open(
        bridge.http, bridge.base, path="templates/budget.xlsx", app="msoffice", mode="view"
    )
    status, opened = await post_open(
        bridge.http,
        bridge.base,
        mode="new",
        name="Budget 2028.xlsx",
        app="collabora",
        template={"file_id": seen["file_id"]},
    )
    assert status == 200, opened
    assert (bridge.root / "Budget 2028.xlsx").read_bytes() == b""
    editor = FakeCollabora(
        bridge.http, opened["app_url"], opened["form_parameters"]["access_token"], signer
    )
    assert await fill_from_template_source(editor, bridge.http) == template
    parse(".xlsx", (bridge.root / "Budget 2028.xlsx").read_bytes())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"folder": "missing", "name": "a.docx"}, 404, "Folder not found"),
        ({"name": "a/b.docx"}, 400, ""),
        ({"name": ".~lock.a.docx#"}, 400, "reserved"),
        ({"name": "a.xyz"}, 400, ""),
        ({"name": "a.xlsx"}, 400, "cannot create .xlsx"),  # OnlyOffice's list has no .xlsx
        ({"name": "a.docx", "template": 7}, 400, "template"),
        ({"name": "a.docx", "template": {"path": "nope.docx"}}, 404, ""),
        ({"path": "a.docx", "name": "a.docx"}, 400, "folder and name"),
        ({}, 400, "name is required"),
        ({"name": "a.docx", "user": {"name": "no id"}}, 400, "id is required"),
    ],
)
async def test_new_document_bad_input(bridge, body, status, message):
    got, answer = await post_open(bridge.http, bridge.base, mode="new", app="onlyoffice", **body)
    assert got == status, answer
    assert message in answer
    assert not any(p.name.startswith("a") for p in bridge.root.iterdir())


async def test_empty_file_through_openinapp_uses_editnew(bridge):
    (bridge.root / "empty.docx").write_bytes(b"")
    (bridge.root / "full.docx").write_bytes(b"x")
    for name, expected in (("empty.docx", True), ("full.docx", False)):
        async with bridge.http.get(
            f"{bridge.base}/wopi/iop/openinapp",
            params={
                "fileid": name,
                "viewmode": "VIEW_MODE_READ_WRITE",
                "userid": "ann@idp",
                "appname": "MsOffice",
                "appurl": "https://reva-given.example/edit?",
            },
            headers={"Authorization": f"Bearer {IOP}"},
        ) as response:
            assert response.status == 200
            body = await response.json()
        assert ("new=1" in body["app-url"]) is expected, body["app-url"]
        if not expected:
            assert body["app-url"].startswith("https://reva-given.example/edit?")


# -- WebDAV (real wsgidav) --------------------------------------------------------------


@pytest.fixture
def dav(tmp_path_factory):
    server = DavServer(tmp_path_factory.mktemp("dav-new"))
    server.start()
    yield server
    server.stop()


async def start_with_dav(aiohttp_server, tmp_path: Path, dav: DavServer, docs) -> str:
    table = dav.table()
    body = f"""
[apps.collabora]
discovery_url = "{docs.url("collabora")}"

[apps.onlyoffice]
discovery_url = "{docs.url("onlyoffice")}"

[storages.dav]
type = "webdav"
url = "{table["url"]}"
auth = "basic"
username = "{table["username"]}"
password = "{table["password"]}"
"""
    base, _ = await start(aiohttp_server, tmp_path, body)
    return base


async def test_new_document_from_a_template_on_webdav(
    tmp_path, aiohttp_server, discovery_server, signer, dav
):
    for name in ("collabora", "onlyoffice"):
        discovery_server.docs[name] = signed(discovery_server.docs[name], signer)
    base = await start_with_dav(aiohttp_server, tmp_path, dav, discovery_server)
    (dav.root / "shared" / "templates").mkdir(parents=True)
    letter = (BLANKS / "blank.docx").read_bytes()
    (dav.root / "shared" / "templates" / "letter.docx").write_bytes(letter)
    slides = (BLANKS / "blank.odp").read_bytes()
    (dav.root / "shared" / "templates" / "talk.odp").write_bytes(slides)
    (dav.root / "shared" / "Letter.docx").write_bytes(b"someone else's letter")
    async with aiohttp.ClientSession() as http:
        # OnlyOffice on WebDAV: created with the template's bytes, name made free
        status, opened = await post_open(
            http,
            base,
            mode="new",
            storage="dav",
            folder="shared",
            name="Letter.docx",
            app="onlyoffice",
            template={"storage": "dav", "path": "shared/templates/letter.docx"},
        )
        assert status == 200, opened
        assert opened["name"] == "Letter (1).docx"
        assert (dav.root / "shared" / "Letter (1).docx").read_bytes() == letter
        assert (dav.root / "shared" / "Letter.docx").read_bytes() == b"someone else's letter"
        editor = FakeOnlyOffice(
            http, opened["app_url"], opened["form_parameters"]["access_token"], signer
        )
        await editor.open()
        parse(".docx", await editor.get_file())
        # Collabora on WebDAV: TemplateSource streams the WebDAV template, PutFile fills
        status, opened = await post_open(
            http,
            base,
            mode="new",
            storage="dav",
            folder="shared",
            name="Talk.odp",
            app="collabora",
            template={"storage": "dav", "path": "shared/templates/talk.odp"},
        )
        assert status == 200, opened
        assert (dav.root / "shared" / "Talk.odp").read_bytes() == b""
        editor = FakeCollabora(
            http, opened["app_url"], opened["form_parameters"]["access_token"], signer
        )
        assert await fill_from_template_source(editor, http) == slides
        assert (dav.root / "shared" / "Talk.odp").read_bytes() == slides
        # a WebDAV template for a new file on local storage
        status, opened = await post_open(
            http,
            base,
            mode="new",
            name="Local letter.docx",
            app="onlyoffice",
            template={"storage": "dav", "path": "shared/templates/letter.docx"},
        )
        assert status == 200, opened
        assert (tmp_path / "data" / "Local letter.docx").read_bytes() == letter


async def test_reva_style_new_document(bridge, signer):
    (bridge.root / "projects").mkdir()
    (bridge.root / "projects" / "Memo.odt").write_bytes(b"taken")
    letter = (BLANKS / "blank.docx").read_bytes()
    (bridge.root / "projects" / "letter.docx").write_bytes(letter)
    params = {
        "folder": "projects",
        "filename": "Memo.odt",
        "userid": "ann@idp",
        "username": "Ann",
        "appname": "Collabora",
    }
    headers = {"Authorization": f"Bearer {IOP}"}
    async with bridge.http.post(
        f"{bridge.base}/wopi/iop/new", params=params, headers=headers
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["name"] == "Memo (1).odt"
    assert (bridge.root / "projects" / "Memo.odt").read_bytes() == b"taken"
    editor = FakeCollabora(
        bridge.http, body["app-url"], body["form-parameters"]["access_token"], signer
    )
    filled = await fill_from_template_source(editor, bridge.http)
    assert filled == (BLANKS / "blank.odt").read_bytes()
    # OnlyOffice, from a template on the same storage: the bytes, and the editnew action
    params.update(filename="Notes.docx", appname="OnlyOffice", template="projects/letter.docx")
    async with bridge.http.post(
        f"{bridge.base}/wopi/iop/new", params=params, headers=headers
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert (bridge.root / "projects" / "Notes.docx").read_bytes() == letter
    assert urlsplit(body["app-url"]).path == "/hosting/wopi/word/edit"
    async with bridge.http.post(
        f"{bridge.base}/wopi/iop/new", params={**params, "appname": "Nope"}, headers=headers
    ) as response:
        assert response.status == 400
    async with bridge.http.post(f"{bridge.base}/wopi/iop/new", params=params) as response:
        assert response.status == 401


async def test_new_document_on_cs3_as_the_user(tmp_path, aiohttp_server, discovery_server, signer):
    """``/wopi/iop/new`` on a Reva storage (the fake CS3 gateway): created with the user's
    own token, never over an existing file; a reader's token cannot create anything."""
    from tests.mesh.conftest import CS3_READER, CS3_TOKEN, start_gateway

    for name in ("collabora", "onlyoffice"):
        discovery_server.docs[name] = signed(discovery_server.docs[name], signer)
    running = await start_gateway(tmp_path / "cs3")
    try:
        (tmp_path / "cs3" / "Minutes.docx").write_bytes(b"existing")
        body = f"""
[apps.onlyoffice]
discovery_url = "{discovery_server.url("onlyoffice")}"

[storages.cernbox]
type = "cs3"
gateway = "{running.address}"
"""
        base, _ = await start(aiohttp_server, tmp_path, body)
        params = {
            "filename": "Minutes.docx",
            "endpoint": "cernbox",
            "userid": "einstein@idp",
            "appname": "onlyoffice",
        }
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {IOP}", "TokenHeader": CS3_TOKEN}
            async with http.post(f"{base}/wopi/iop/new", params=params, headers=headers) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            assert body["name"] == "Minutes (1).docx"
            assert (tmp_path / "cs3" / "Minutes.docx").read_bytes() == b"existing"
            created = (tmp_path / "cs3" / "Minutes (1).docx").read_bytes()
            assert created == (BLANKS / "blank.docx").read_bytes()
            token = body["form-parameters"]["access_token"]
            assert CS3_TOKEN not in token
            editor = FakeOnlyOffice(http, body["app-url"], token, signer)
            await editor.open()
            parse(".docx", await editor.get_file())
            reader = {**headers, "TokenHeader": CS3_READER}
            async with http.post(f"{base}/wopi/iop/new", params=params, headers=reader) as r:
                assert r.status == 403, await r.text()
                assert await r.text() == "The storage cernbox refused to write the file"
            assert not (tmp_path / "cs3" / "Minutes (2).docx").exists()
    finally:
        await running.stop()


async def test_reva_style_new_document_takes_the_app_as_openinapp_does(bridge):
    """An ``appurl`` (Reva's app registry) chooses the app as it does for openinapp, whatever
    ``appname`` says; without either, the answer names what is missing."""
    params = {"filename": "Plan.docx", "userid": "ann@idp", "username": "Ann"}
    headers = {"Authorization": f"Bearer {IOP}"}
    for extra in ({"appname": "Nope"}, {}):
        query = {**params, **extra, "appurl": "https://editor.example/open?lang=en"}
        async with bridge.http.post(
            f"{bridge.base}/wopi/iop/new", params=query, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        url = urlsplit(body["app-url"])
        assert (url.netloc, url.path) == ("editor.example", "/open")
        assert "WOPISrc=" in url.query and "lang=en" in url.query
        assert (bridge.root / body["name"]).exists()
        token = body["form-parameters"]["access_token"]
        wopi_src = unquote(url.query.split("WOPISrc=", 1)[1].split("&", 1)[0])
        async with bridge.http.get(wopi_src, params={"access_token": token}) as info:
            assert info.status == 200
            assert (await info.json())["BaseFileName"] == body["name"]
    for query, message in (
        (params, "Missing parameter: appurl"),
        ({**params, "appname": "Nope"}, "Unknown app"),
        ({**params, "appurl": "javascript:alert(1)"}, "appurl must be an http(s) URL"),
    ):
        async with bridge.http.post(
            f"{bridge.base}/wopi/iop/new", params=query, headers=headers
        ) as response:
            assert (response.status, await response.text()) == (400, message)
