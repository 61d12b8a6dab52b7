"""Bridged-app settings, document ids and conflict-copy names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wopibridge.apps.base import EditorApp, OpenRequest
from wopibridge.apps.codimd import CodiMDApp
from wopibridge.apps.etherpad import EtherpadApp
from wopibridge.bridge.docid import (
    conflict_name,
    derive_key,
    document_id,
    lock_id,
    valid_document_id,
)
from wopibridge.config import ConfigError
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.base import FileStat


def test_etherpad_settings() -> None:
    app = EtherpadApp.from_config(
        "pads",
        {
            "url": "http://pad:9001/",
            "apikey": "k",
            "extensions": "txt, .ETHERPAD",
            "save_interval": "5",
        },
        "https://wopi.example.org",
    )
    assert isinstance(app, EditorApp) and app.bridged
    assert app.config.url == "http://pad:9001" and app.config.public_url == "http://pad:9001"
    assert app.handles(".txt") and app.handles(".etherpad") and not app.handles(".md")
    assert app.config.save_interval == 5 and app.config.unlock_delay == 90


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"apikey": "k"}, "apps.etherpad.url"),
        ({"url": "ftp://x", "apikey": "k"}, "apps.etherpad.url"),
        ({"url": "http://x"}, "apps.etherpad.apikey"),
        ({"url": "http://x", "apikey": "k", "colour": "red"}, "apps.etherpad.colour"),
        (
            {"url": "http://x", "apikey": "k", "save_interval": "soon"},
            "apps.etherpad.save_interval",
        ),
        ({"url": "http://x", "apikey": "k", "unlock_delay": 0}, "apps.etherpad.unlock_delay"),
        ({"url": "http://x", "apikey": "k", "extensions": []}, "apps.etherpad.extensions"),
        ({"url": "http://x", "apikey_file": "/nonexistent/key"}, "apps.etherpad.apikey_file"),
    ],
)
def test_bad_settings_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EtherpadApp.from_config("etherpad", table, "http://w")
    assert caught.value.key == key


def test_codimd_needs_no_api_key(tmp_path) -> None:
    (tmp_path / "key").write_text("secret-key\n")
    app = CodiMDApp.from_config(
        "codimd", {"url": "http://md", "apikey_file": str(tmp_path / "key")}, "http://w"
    )
    assert app.config.apikey == "secret-key"
    assert app.handles(".zmd") and app.handles(".md") and app.handles(".txt")


async def test_app_url_points_at_the_bridge() -> None:
    app = CodiMDApp.from_config("codimd", {"url": "http://md"}, "https://wopi.example.org/")
    token, access = TokenCodec("s" * 32, 60).mint(file_id="local.abc", user_id="u", user_name="U")
    stat = FileStat("abc", "a.md", 1, 1, "v", "local:abc")
    url = await app.editor_url(
        OpenRequest(
            wopi_src="https://wopi.example.org/wopi/files/local.abc",
            stat=stat,
            token=access,
            access_token=token,
            mode="edit",
        )
    )
    assert url == (
        "https://wopi.example.org/wopi/bridge/open?app=codimd&"
        "WOPISrc=https%3A%2F%2Fwopi.example.org%2Fwopi%2Ffiles%2Flocal.abc"
    )
    assert token not in url


def test_document_ids() -> None:
    key = derive_key("a-token-secret-of-some-length")
    one = document_id(key, "etherpad", "local:abc")
    assert one == document_id(key, "etherpad", "local:abc")  # every user, every instance
    assert valid_document_id(one) and len(one) == 32
    assert one != document_id(key, "codimd", "local:abc")
    assert one != document_id(key, "etherpad", "local:abd")
    assert one != document_id(derive_key("another-token-secret-xx"), "etherpad", "local:abc")
    assert lock_id(one) == f"wopibridge-bridge:{one}"
    assert not valid_document_id("open") and not valid_document_id("../" * 11)


def test_conflict_names() -> None:
    when = datetime(2026, 11, 25, 6, 7, 8, tzinfo=UTC)
    assert (
        conflict_name("notes.md", "Ann Lee", when)
        == "notes (conflict Ann Lee 2026-11-25 060708 UTC).md"
    )
    assert conflict_name("README", "a/b:c", when) == "README (conflict a_b_c 2026-11-25 060708 UTC)"
    assert (
        conflict_name("x.tar.gz", "", when) == "x.tar (conflict unknown 2026-11-25 060708 UTC).gz"
    )
