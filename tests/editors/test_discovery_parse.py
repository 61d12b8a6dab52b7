"""Pure discovery parsing and URL building, checked against the editors' real documents."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from wopibridge.apps.discovery import fill_urlsrc, parse_discovery

from .conftest import fixture_bytes

WOPISRC = "https://bridge.example/wopi/files/local.AbC-12"


@pytest.fixture(scope="module")
def collabora():
    return parse_discovery(fixture_bytes("collabora-runtime.xml"))


@pytest.fixture(scope="module")
def onlyoffice():
    return parse_discovery(fixture_bytes("onlyoffice-runtime.xml"))


@pytest.fixture(scope="module")
def msoffice():
    return parse_discovery(fixture_bytes("msoffice-oos.xml"))


COOL = "http://collabora.test:9980/browser/61cf2b4/cool.html?"


@pytest.mark.parametrize(
    ("ext", "mode", "app", "action"),
    [
        ("odt", "edit", "writer", "edit"),
        (".ODT", "view", "writer", "edit"),  # Collabora lists only edit; the token decides
        ("docx", "edit", "writer", "edit"),
        ("sxw", "view", "writer", "view"),
        ("dotx", "edit", None, None),  # view-only format
        ("dotx", "view", "writer", "view"),
    ],
)
def test_collabora_lookup_by_extension(collabora, ext, mode, app, action):
    found = collabora.find(ext, mode)
    if app is None:
        assert found is None
        return
    assert (found.app, found.name, found.urlsrc) == (app, action, COOL)


def test_collabora_mime_named_apps_are_found_through_the_mime_type(collabora):
    # No extension-named app lists .odc: only the MIME-named chart app (empty ext) does.
    assert "odc" not in collabora.extensions()
    found = collabora.find("odc", "edit")
    assert found is not None
    assert found.app == "application/vnd.oasis.opendocument.chart"
    assert found.ext == ""
    assert collabora.find(".ODC", "view") == found
    # extension-named apps win over MIME-named ones
    assert collabora.find("svg", "view").app == "draw"
    assert collabora.action_for("odt", "view_comment") is None
    assert collabora.capabilities_url == "http://collabora.test:9980/hosting/capabilities"
    assert collabora.net_zone == "external-http"
    assert collabora.proof_key is None


def test_collabora_template_without_urlsrc_is_parsed_but_opens_nothing():
    doc = parse_discovery(fixture_bytes("collabora-template.xml"))
    assert len(doc.actions) > 100
    assert all(action.urlsrc == "" for action in doc.actions)
    assert doc.find("odt", "edit") is None
    assert not doc.handles("odt")


def test_onlyoffice_modes_and_actions(onlyoffice):
    assert onlyoffice.find("docx", "edit").name == "edit"
    assert onlyoffice.find("docx", "editnew").name == "editnew"
    assert onlyoffice.find("docx", "embedview").name == "embedview"
    assert onlyoffice.find("docx", "view").urlsrc.startswith(
        "https://test.server.prv/hosting/wopi/word/view?"
    )
    edit = onlyoffice.find("docx", "edit")
    assert edit.requires == frozenset({"locks", "update"})
    assert edit.default
    # xls has a convert action only: editing means converting, not in-place edit
    assert onlyoffice.find("xls", "edit") is None
    assert onlyoffice.action_for("xls", "convert").target_ext == "xlsx"
    # pdf: view only, editnew falls back to nothing editable
    assert onlyoffice.find("pdf", "editnew") is None
    # the MIME-named presentation app
    assert onlyoffice.find("odp", "edit").app == "application/vnd.oasis.opendocument.presentation"


def test_msoffice_actions(msoffice):
    assert msoffice.net_zone == "external-https"
    assert msoffice.find("docx", "edit").app == "Word"
    assert msoffice.find("xlsx", "editnew").name == "editnew"
    assert msoffice.find("pptx", "embedview").name == "embedview"
    assert msoffice.find("one", "view").app == "OneNote"
    assert msoffice.find("nope", "view") is None


def test_proof_keys_are_exposed_raw():
    doc = parse_discovery(fixture_bytes("collabora-proof-key.xml"))
    key = doc.proof_key
    assert key is not None
    assert key.exponent == key.oldexponent == "AQAB"
    assert key.modulus != key.oldmodulus
    # the CAPI blob carries the same modulus (little-endian) as the modulus attribute
    blob = base64.b64decode(key.value)
    modulus = base64.b64decode(key.modulus)
    assert blob[-len(modulus) :][::-1] == modulus
    oo = parse_discovery(fixture_bytes("onlyoffice-runtime.xml")).proof_key
    assert oo.value == oo.oldvalue and oo.modulus


def test_fill_collabora_appends_wopisrc(collabora):
    url = fill_urlsrc(collabora.find("odt", "edit").urlsrc, WOPISRC)
    assert url == COOL + "WOPISrc=" + quote(WOPISRC, safe="")


def test_fill_onlyoffice_fills_and_strips_placeholders(onlyoffice):
    url = fill_urlsrc(
        onlyoffice.find("docx", "edit").urlsrc,
        WOPISRC,
        {"UI_LLCC": "de-DE", "DC_LLCC": "de-DE", "DISABLE_CHAT": "1"},
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://test.server.prv/hosting/wopi/word/edit"
    )
    assert "<" not in url and ">" not in url and "&&" not in url and not url.endswith("&")
    assert parse_qs(parts.query) == {
        "rs": ["de-DE"],
        "ui": ["de-DE"],
        "dchat": ["1"],
        "wopisrc": [WOPISRC],
    }


def test_fill_embedview_keeps_fixed_parameters(onlyoffice):
    url = fill_urlsrc(onlyoffice.find("docx", "embedview").urlsrc, WOPISRC, {"EMBEDDED": "true"})
    assert parse_qs(urlsplit(url).query) == {
        "embed": ["1", "true"],
        "wopisrc": [WOPISRC],
    }


def test_fill_msoffice(msoffice):
    url = fill_urlsrc(msoffice.find("docx", "edit").urlsrc, WOPISRC, {"UI_LLCC": "en-US"})
    assert url.startswith("https://FFC-word-edit.officeapps.live.com/we/wordeditorframe.aspx?")
    assert parse_qs(urlsplit(url).query) == {"ui": ["en-US"], "wopisrc": [WOPISRC]}


@pytest.mark.parametrize(
    "text",
    [b"", b"<html><body>login</body></html>", b"<wopi-discovery><net-zone>", b"not xml"],
)
def test_not_a_discovery_document(text):
    with pytest.raises(ValueError):
        parse_discovery(text)
