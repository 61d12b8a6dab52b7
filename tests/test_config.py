"""Settings: defaults, environment overrides, one clear line for a bad key, all keys documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wopibridge.config import SCHEMA, ConfigError, load_settings
from wopibridge.config.reference import with_table

ROOT = Path(__file__).resolve().parent.parent


def test_defaults() -> None:
    settings = load_settings(None, env={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8880
    assert settings.server.public_url == "http://127.0.0.1:8880"
    assert settings.storage.root == Path("./data")
    assert settings.locks.url == "memory://"
    assert settings.security.token_ttl == 36000


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[server]\nport = 9000\n[locks]\nurl = "redis://localhost:6379/2"\n'
        '[apps.collabora]\ndiscovery_url = "http://c/hosting/discovery"\n'
    )
    settings = load_settings(
        config,
        env={
            "WOPIBRIDGE_SERVER_PORT": "9100",
            "WOPIBRIDGE_SERVER_PUBLIC_URL": "https://wopi.example.org/",
            "WOPIBRIDGE_APPS_COLLABORA_PROOF_KEYS": "require",
        },
    )
    assert settings.server.port == 9100
    assert settings.server.public_url == "https://wopi.example.org"
    assert settings.locks.url == "redis://localhost:6379/2"
    assert settings.apps["collabora"] == {
        "discovery_url": "http://c/hosting/discovery",
        "proof_keys": "require",
    }


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"WOPIBRIDGE_SERVER_PORT": "eighty"}, "server.port"),
        ({"WOPIBRIDGE_SERVER_PORT": "70000"}, "server.port"),
        ({"WOPIBRIDGE_LOCKS_URL": "mysql://x"}, "locks.url"),
        ({"WOPIBRIDGE_SERVER_PUBLIC_URL": "ftp://x"}, "server.public_url"),
        ({"WOPIBRIDGE_SECURITY_TOKEN_SECRET": "short"}, "security.token_secret"),
        ({"WOPIBRIDGE_SECURITY_TOKEN_TTL": "0"}, "security.token_ttl"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env=env)
    assert info.value.key == key


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key"):
        load_settings(config, env={})


def test_serve_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = -3\n")
    result = subprocess.run(
        [sys.executable, "-m", "wopibridge", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["key"] == "server.port"
    assert record["message"] == (
        "invalid configuration: server.port: must be an integer between 1 and 65535"
    )


def test_the_configuration_reference_is_generated_from_the_schema() -> None:
    """docs/configuration.md's table is the schema's: a key added, renamed or re-described in
    the code without regenerating the file fails here."""
    document = (ROOT / "docs" / "configuration.md").read_text()
    assert document == with_table(document), (
        "docs/configuration.md differs from the schema: "
        "python -m wopibridge.config.reference docs/configuration.md"
    )
    for section, keys in SCHEMA.items():
        for key in keys:
            variable = f"WOPIBRIDGE_{section}_{key}".upper()
            assert f"| `{section}.{key}` | `{variable}` |" in document


def test_the_reference_names_no_key_the_schema_lacks() -> None:
    known = {(s, k) for s, keys in SCHEMA.items() for k in keys}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named = set(
            re.findall(
                r"`(server|storage|locks|security|recovery|versions)\.([a-z_]+)`", path.read_text()
            )
        )
        assert named <= known, (path.name, named - known)


def test_deploy_example_is_valid() -> None:
    settings = load_settings(ROOT / "deploy" / "wopibridge.toml", env={})
    assert settings.server.public_url == "https://wopi.example.org"
    assert settings.locks.url.startswith("redis://")


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, keys in SCHEMA.items() for k in keys])
def test_every_key_refuses_a_wrong_type_naming_it(tmp_path: Path, section: str, key: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[{section}]\n{key} = [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert info.value.key == f"{section}.{key}"
    assert str(info.value).startswith(f"invalid configuration: {section}.{key}: ")
    assert "\n" not in str(info.value)


def test_environment_names_the_variable_and_refuses_unknown_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"WOPIBRIDGE_SECURITY_TOKEN_TTL": "soon"})
    assert str(info.value) == (
        "invalid configuration: security.token_ttl (WOPIBRIDGE_SECURITY_TOKEN_TTL): "
        "must be an integer"
    )
    for name in ("WOPIBRIDGE_SERVER_PROT", "WOPIBRIDGE_LOCK_URL", "WOPIBRIDGE_APPS_X"):
        with pytest.raises(ConfigError) as info:
            load_settings(None, env={name: "1"})
        assert info.value.key == name and "unknown environment variable" in str(info.value)
    settings = load_settings(None, env={"WOPIBRIDGE_APPS_COOL_LANG": "de", "OTHER_X": "1"})
    assert settings.apps == {"cool": {"lang": "de"}}


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    config = tmp_path / "site" / "c.toml"
    config.write_text(
        '[server]\nstate_dir = "st"\n[security]\niop_secret_file = "iop"\n'
        '[apps.pad]\ntype = "etherpad"\nurl = "http://p"\napikey_file = "k.txt"\n'
        '[storages.web]\ntype = "webdav"\nurl = "http://dav/x"\n'
        '[storages.more]\ntype = "local"\nroot = "more"\n'
    )
    settings = load_settings(config, env={"WOPIBRIDGE_STORAGE_ROOT": "from-env"})
    site = (tmp_path / "site").resolve()
    assert settings.server.state_dir == site / "st"
    assert settings.security.iop_secret_file == str(site / "iop")
    assert settings.storage.root == Path("from-env")  # the environment: the current folder
    assert settings.apps["pad"]["apikey_file"] == str(site / "k.txt")
    assert settings.storages["more"]["root"] == str(site / "more")
    assert settings.storages["web"]["url"] == "http://dav/x"
    defaults = load_settings(None, env={})
    assert defaults.storage.root == Path("./data")  # no file: the current folder
