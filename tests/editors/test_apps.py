"""The office apps and their registry, built from TOML against the served fixture discovery."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from wopibridge.apps.base import EditorApp, OpenRequest
from wopibridge.apps.discovery import DiscoveryCache
from wopibridge.apps.registry import AppContext, SessionHolder, build_registry
from wopibridge.config import ConfigError, load_settings
from wopibridge.errors import BadRequest, NotFound, Unavailable
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.base import FileStat, canonical_time
from wopibridge.wopi.saves.hints import DOCUMENT_CHANGED_BODY, DocumentChanged, read_save_hints

WOPISRC = "http://bridge.test:8880/wopi/files/local.f1"


def stat(name: str, size: int = 10) -> FileStat:
    return FileStat(
        file_id="f1",
        name=name,
        size=size,
        mtime_ns=1_700_000_000_123_456_789,
        version="v1",
        identity="local:f1",
    )


@pytest.fixture
async def registry(discovery_server, tmp_path):
    toml = tmp_path / "wopibridge.toml"
    toml.write_text(
        f"""
[server]
public_url = "https://drive.example.org"

[apps.collabora]
discovery_url = "{discovery_server.url("collabora")}"
watermark_text = "Viewed by {{user}}"

[apps.oo]
type = "onlyoffice"
discovery_url = "{discovery_server.url("onlyoffice")}"
postmessage_origin = "https://ui.example.org/some/path"
disable_chat = true
lang = "fr-FR"

[apps.msoffice]
discovery_url = "{discovery_server.url("msoffice")}"
"""
    )
    settings = load_settings(toml, env={})
    async with aiohttp.ClientSession() as session:
        cache = DiscoveryCache(session)
        apps = build_registry(settings, AppContext(settings, SessionHolder(), cache))
        await cache.refresh_all()
        yield apps


def token(mode="edit", user_type="regular", name="Ada Lovelace"):
    codec = TokenCodec("x" * 32, 3600)
    return codec.mint(
        file_id="local.f1",
        user_id="ada@idp",
        user_name=name,
        user_type=user_type,
        app="collabora",
        mode=mode,
    )


async def test_registry_builds_each_type(registry):
    assert registry.names() == ["collabora", "oo", "msoffice"]
    for app in registry:
        assert isinstance(app, EditorApp)
    assert registry.get("OO").config.type == "onlyoffice"
    assert registry.get("msoffice").proof_mode == "verify"
    assert registry.get("collabora").proof_mode == "verify"
    with pytest.raises(NotFound):
        registry.get("wordpad")


async def test_choose_by_extension(registry):
    assert registry.choose(".odt", edit=True).name == "collabora"
    assert registry.choose(".docx", edit=True).name == "collabora"  # configuration order
    assert registry.choose(".one").name == "msoffice"  # only Microsoft lists OneNote
    assert registry.choose(".djvu").name == "oo"
    with pytest.raises(BadRequest):
        registry.choose(".xyz")


async def test_unreachable_app_is_a_503_sentence(discovery_server, tmp_path):
    discovery_server.failing.add("onlyoffice")
    settings = load_settings(
        None,
        env={"WOPIBRIDGE_APPS_ONLYOFFICE_DISCOVERY_URL": discovery_server.url("onlyoffice")},
    )
    async with aiohttp.ClientSession() as session:
        cache = DiscoveryCache(session)
        apps = build_registry(settings, AppContext(settings, SessionHolder(), cache))
        await cache.refresh_all()
        with pytest.raises(Unavailable) as err:
            apps.choose(".docx")
        assert err.value.status == 503
        assert "onlyoffice editor is not available" in err.value.message
        raw, info = token()
        with pytest.raises(Unavailable):
            await apps.get("onlyoffice").editor_url(
                OpenRequest(WOPISRC, stat("a.docx"), info, raw, "edit")
            )


async def test_editor_urls(registry):
    raw, info = token()
    collabora = await registry.get("collabora").editor_url(
        OpenRequest(WOPISRC, stat("a.odt"), info, raw, "edit", lang="de")
    )
    query = parse_qs(urlsplit(collabora).query)
    assert query == {"WOPISrc": [WOPISRC], "closebutton": ["1"], "lang": ["de"]}
    assert raw not in collabora  # the token never goes into the iframe URL

    oo = registry.get("oo")
    url = await oo.editor_url(OpenRequest(WOPISRC, stat("a.docx"), info, raw, "edit"))
    assert urlsplit(url).path == "/hosting/wopi/word/edit"
    assert parse_qs(urlsplit(url).query) == {
        "rs": ["fr-FR"],
        "ui": ["fr-FR"],
        "dchat": ["1"],
        "wopisrc": [WOPISRC],
    }
    # a 0-byte file opened for editing takes the editnew action (same URL for OnlyOffice)
    new = OpenRequest(WOPISRC, stat("a.docx", size=0), info, raw, "edit")
    assert new.wanted_action == "editnew"
    ms = await registry.get("msoffice").editor_url(new)
    assert parse_qs(urlsplit(ms).query) == {"new": ["1"], "wopisrc": [WOPISRC]}
    ms_edit = await registry.get("msoffice").editor_url(
        OpenRequest(WOPISRC, stat("a.docx"), info, raw, "edit")
    )
    assert ms_edit.startswith("https://FFC-word-edit.officeapps.live.com/we/wordeditorframe.aspx?")
    assert "new=1" not in ms_edit
    embed = await oo.editor_url(
        OpenRequest(WOPISRC, stat("a.docx"), info, raw, "view", action="embedview")
    )
    assert parse_qs(urlsplit(embed).query)["embed"] == ["1", "true"]
    with pytest.raises(BadRequest):
        await oo.editor_url(OpenRequest(WOPISRC, stat("a.xyz"), info, raw, "view"))


async def test_file_info_properties(registry):
    _, editor = token("edit")
    _, viewer = token("view")
    _, guest = token("view", user_type="anonymous", name="Bob")
    _, nameless = token("edit", user_type="anonymous", name="")
    collabora = registry.get("collabora")
    info = collabora.file_info(editor, stat("a.odt"))
    assert info["UserFriendlyName"] == "Ada Lovelace"
    assert info["PostMessageOrigin"] == "https://drive.example.org"
    assert "WatermarkText" not in info
    # the watermark is for secure view only, never for ordinary viewers
    assert "WatermarkText" not in collabora.file_info(viewer, stat("a.odt"))
    _, secure = token("secureview")
    assert collabora.file_info(secure, stat("a.odt"))["WatermarkText"] == "Viewed by Ada Lovelace"
    guest_info = collabora.file_info(guest, stat("a.odt"))
    assert guest_info["UserFriendlyName"] == "Guest Bob"
    assert guest_info["IsAnonymousUser"] is True
    assert collabora.file_info(nameless, stat("a.odt"))["UserFriendlyName"] == "Guest ada@idp"
    assert registry.get("oo").file_info(editor, stat("a.docx"))["PostMessageOrigin"] == (
        "https://ui.example.org"
    )
    assert registry.get("msoffice").file_info(editor, stat("a.docx"))["ClosePostMessage"] is True


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"type": "wordstar", "discovery_url": "http://x"}, "apps.bad.type"),
        ({"type": "collabora"}, "apps.bad.discovery_url"),
        ({"type": "collabora", "discovery_url": "ftp://x"}, "apps.bad.discovery_url"),
        (
            {"type": "collabora", "discovery_url": "http://x", "proof_keys": "maybe"},
            "apps.bad.proof_keys",
        ),
        ({"type": "collabora", "discovery_url": "http://x", "colour": "red"}, "apps.bad.colour"),
        (
            {"type": "collabora", "discovery_url": "http://x", "refresh_interval": "0"},
            "apps.bad.refresh_interval",
        ),
    ],
)
async def test_bad_app_configuration_names_the_key(table, key):
    from wopibridge.config import Settings

    settings = load_settings(None, env={})
    settings = Settings(
        server=settings.server,
        storage=settings.storage,
        locks=settings.locks,
        security=settings.security,
        apps={"bad": table},
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError) as err:
            build_registry(settings, AppContext(settings, SessionHolder(), DiscoveryCache(session)))
    assert err.value.key == key


def test_save_hints_both_families_and_the_1010_rule():
    stamp = canonical_time(1_700_000_000_123_456_789)
    cool = read_save_hints(
        {
            "X-COOL-WOPI-Timestamp": stamp,
            "X-COOL-WOPI-IsAutosave": "false",
            "X-COOL-WOPI-IsModifiedByUser": "true",
            "X-COOL-WOPI-IsExitSave": "true",
        }
    )
    assert (cool.timestamp, cool.autosave, cool.modified_by_user, cool.exit_save) == (
        stamp,
        False,
        True,
        True,
    )
    lool = read_save_hints({"X-LOOL-WOPI-Timestamp": stamp, "X-LOOL-WOPI-IsAutosave": "true"})
    assert lool.timestamp == stamp and lool.autosave is True and lool.exit_save is None
    assert cool.timestamp_matches(stamp) is True
    assert read_save_hints({}).timestamp_matches(stamp) is None  # overwrite: no header
    # same instant, reformatted: still a conflict (compared as a string)
    for other in (stamp.replace(".123456Z", "Z"), stamp.replace("Z", "+00:00"), ""):
        assert read_save_hints({"X-COOL-WOPI-Timestamp": other}).timestamp_matches(stamp) is False
    assert DocumentChanged().status == 409
    assert DocumentChanged().body == DOCUMENT_CHANGED_BODY
    # an exit save, or any OnlyOffice save (X-WOPI-Editors), is not sent again after a refusal
    assert cool.final and not lool.final
    assert read_save_hints({"X-WOPI-Editors": "ann", "X-LOOL-WOPI-IsExitSave": "false"}).final
    # Office for the web sends X-WOPI-Editors too, and handles a refused save itself
    assert not read_save_hints({"X-WOPI-Editors": "ann"}).final


async def test_generic_wopi_type_and_proof_modes(discovery_server):
    settings = load_settings(
        None,
        env={
            "WOPIBRIDGE_APPS_VALIDATOR_TYPE": "wopi",
            "WOPIBRIDGE_APPS_VALIDATOR_DISCOVERY_URL": discovery_server.url("msoffice"),
            "WOPIBRIDGE_APPS_VALIDATOR_PROOF_KEYS": "require",
            "WOPIBRIDGE_APPS_VALIDATOR_LOCK_FILES": "false",
        },
    )
    async with aiohttp.ClientSession() as session:
        cache = DiscoveryCache(session)
        apps = build_registry(settings, AppContext(settings, SessionHolder(), cache))
        await cache.refresh_all()
        app = apps.get("Validator")
        assert app.proof_mode == "require" and app.lock_files is False
        assert apps.choose(".wopitest", edit=True) is app
        assert (await cache.proof_keys("validator")).exponent == "AQAB"
