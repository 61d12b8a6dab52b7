"""Building the storages from the configuration, and the user's credential inside tokens."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.mesh.conftest import CS3_TOKEN, DAV_PASSWORD, DAV_USER, DavServer
from tests.mesh.fakecs3 import RunningGateway
from wopibridge.config import ConfigError, load_settings
from wopibridge.errors import NotFound, Unauthorized
from wopibridge.security.crypto import CREDENTIAL_CLAIM, CredentialBox
from wopibridge.security.tokens import TokenCodec
from wopibridge.storage.cs3 import Cs3Storage
from wopibridge.storage.webdav import WebDavStorage

SECRET = "a-token-secret-of-enough-length-0123456789"


def test_sealed_credential_round_trip() -> None:
    box = CredentialBox(SECRET)
    sealed = box.seal("reva-token-value", context="cernbox")
    assert "reva-token-value" not in sealed
    assert box.open(sealed, context="cernbox") == "reva-token-value"
    assert box.seal("reva-token-value", context="cernbox") != sealed, "fresh nonce each time"
    with pytest.raises(Unauthorized):
        box.open(sealed, context="nextcloud")
    with pytest.raises(Unauthorized):
        CredentialBox("another-secret-entirely-0000").open(sealed, context="cernbox")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(Unauthorized):
        box.open(tampered, context="cernbox")
    with pytest.raises(Unauthorized):
        box.open("short", context="cernbox")


def settings_with(tmp_path: Path, storages: dict[str, dict[str, object]]):  # type: ignore[no-untyped-def]
    env = {
        "WOPIBRIDGE_STORAGE_ROOT": str(tmp_path / "data"),
        "WOPIBRIDGE_SERVER_STATE_DIR": str(tmp_path / "state"),
    }
    for name, table in storages.items():
        for key, value in table.items():
            env[f"WOPIBRIDGE_STORAGES_{name.upper()}_{key.upper()}"] = str(value)
    return load_settings(None, env=env)


async def test_registry_from_settings(
    tmp_path: Path,
    http: aiohttp.ClientSession,
    dav_server: DavServer,
    dav_root: Path,
    cs3_gateway: RunningGateway,
) -> None:
    pytest.importorskip("wopibridge.storage.local")
    from wopibridge.storage.factory import build_registry

    settings = settings_with(
        tmp_path,
        {
            "nextcloud": {
                "type": "webdav",
                "url": f"{dav_server.url}/{dav_root.name}",
                "auth": "basic",
                "username": DAV_USER,
                "password": DAV_PASSWORD,
            },
            "cernbox": {"type": "cs3", "gateway": cs3_gateway.address},
        },
    )
    registry = build_registry(settings, http, SECRET)
    try:
        assert sorted(registry.names()) == ["cernbox", "local", "nextcloud"]
        assert registry.default_name == "local"
        assert isinstance(registry.get("nextcloud"), WebDavStorage)
        assert isinstance(registry.get("cernbox"), Cs3Storage)

        (cs3_gateway.gateway.root / "paper.docx").write_bytes(b"cs3 bytes")
        storage = registry.bound("cernbox", CS3_TOKEN)
        stat = await storage.resolve("paper.docx")
        wopi_id = registry.wopi_id(storage, stat.file_id)
        extra = registry.seal_credential("cernbox", CS3_TOKEN)
        assert CS3_TOKEN not in str(extra)
        codec = TokenCodec(SECRET, 3600)
        token, _ = codec.mint(
            file_id=wopi_id, user_id="einstein", user_name="Albert", mode="edit", extra=extra
        )
        assert CS3_TOKEN not in token
        access = codec.verify(token)
        bound, backend_id = registry.for_access(access)
        assert backend_id == stat.file_id
        assert (await bound.stat(backend_id)).size == 9
        unbound, _ = registry.for_file(wopi_id)
        with pytest.raises(Unauthorized):
            await unbound.stat(backend_id)
        forged = dict(access.extra)
        forged[CREDENTIAL_CLAIM] = registry.seal_credential("nextcloud", CS3_TOKEN)[
            CREDENTIAL_CLAIM
        ]
        token, _ = codec.mint(file_id=wopi_id, user_id="x", user_name="x", extra=forged)
        with pytest.raises(Unauthorized):
            registry.for_access(codec.verify(token))
        with pytest.raises(NotFound):
            registry.get("nowhere")

        # openinapp: endpoint names a storage, or is Reva's storage id behind the gateway.
        assert registry.pick("", "a/b.docx") == (registry.default, "a/b.docx")
        assert registry.pick("nextcloud", "x.docx") == (registry.get("nextcloud"), "x.docx")
        rid = stat.identity.rsplit(":", 1)[-1]
        endpoint, _, opaque = rid.partition("!")
        picked, ref = registry.pick(endpoint, opaque)
        assert picked is registry.get("cernbox") and ref == rid
        assert (await registry.bound("cernbox", CS3_TOKEN).resolve(ref)).file_id == stat.file_id
    finally:
        await registry.close()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"type": "ftp"}, "storages.bad.type"),
        ({"type": "webdav", "url": "nope"}, "storages.bad.url"),
        ({"type": "cs3", "gateway": "nope"}, "storages.bad.gateway"),
        ({"type": "local"}, "storages.bad.root"),
    ],
)
async def test_bad_storage_configuration(
    tmp_path: Path, http: aiohttp.ClientSession, table: dict[str, str], key: str
) -> None:
    pytest.importorskip("wopibridge.storage.local")
    from wopibridge.storage.factory import build_registry

    settings = settings_with(tmp_path, {"bad": table})
    with pytest.raises(ConfigError) as info:
        build_registry(settings, http, SECRET)
    assert info.value.key == key
    assert str(info.value).startswith(f"invalid configuration: {key}: ")
