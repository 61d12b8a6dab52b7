"""Short access tokens (``security.short_tokens``): handles for JWTs kept in the lock store.

Two instances share one real ``redis-server``: a handle minted by one works on the other and
is revoked everywhere when its file is deleted. Every URL the open endpoints hand out stays
under 2,048 characters, even when the user's Reva token (``TokenHeader``, 4 kB here) travels
sealed in the claims, which is what makes a plain JWT too long for Microsoft 365 and proxies.
"""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis

from tests.mesh.fakecs3 import FakeGateway, RunningGateway
from tests.support.procs import RedisServer, free_port
from wopibridge.app import create_app
from wopibridge.config import load_settings
from wopibridge.security.handles import MemoryHandleStore
from wopibridge.security.keys import TOKENS
from wopibridge.security.tokens import TokenCodec, is_handle

from .conftest import APPS, IOP, SECRET, app_tables, start, write_config
from .fakes import FakeCollabora, FakeMicrosoft, FakeOnlyOffice

MAX_URL = 2048


async def post_open(http: aiohttp.ClientSession, base: str, **body: Any) -> dict[str, Any]:
    body.setdefault("user", {"id": "ada@idp", "name": "Ada Lovelace"})
    async with http.post(
        f"{base}/wopi/open", json=body, headers={"Authorization": f"Bearer {IOP}"}
    ) as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def test_two_instances_share_handles_through_redis(
    tmp_path, aiohttp_server, signed_editors, signer
):
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    try:
        body = f'short_tokens = true\n\n[locks]\nurl = "{redis_server.url}"\n' + app_tables(
            signed_editors
        )
        shared = tmp_path / "site"
        base_a, app_a = await start(aiohttp_server, shared, body)
        # the second instance: same storage, state and Redis, its own port
        port_b = free_port()
        config_b = write_config(tmp_path / "b.toml", port_b, body)
        config_b.write_text(
            config_b.read_text()
            .replace(str(tmp_path / "state"), str(shared / "state"))
            .replace(str(tmp_path / "data"), str(shared / "data"))
        )
        app_b = create_app(load_settings(config_b, env={}))
        await aiohttp_server(app_b, host="127.0.0.1", port=port_b)
        base_b = f"http://127.0.0.1:{port_b}"
        (shared / "data" / "notes.docx").write_bytes(b"v1")

        async with aiohttp.ClientSession() as http:
            opened = await post_open(http, base_a, path="notes.docx", app="onlyoffice", mode="edit")
            handle = opened["form_parameters"]["access_token"]
            assert is_handle(handle) and len(handle) <= 64
            # the editor talks to instance B with a handle minted by A
            via_b = opened["app_url"].replace(
                base_a.replace(":", "%3A").replace("/", "%2F"),
                base_b.replace(":", "%3A").replace("/", "%2F"),
            )
            editor = FakeOnlyOffice(http, via_b, handle, signer)
            assert editor.wopisrc.startswith(base_b)
            info = await editor.open()
            assert info["UserCanWrite"] is True
            assert (await editor.save(b"v2")).status == 200
            assert (shared / "data" / "notes.docx").read_bytes() == b"v2"
            # the handle lives in Redis as long as the token
            client = aioredis.Redis.from_url(redis_server.url)
            ttl = await client.ttl(f"wopibridge:{{handles}}:handle:{handle}")
            await client.aclose()
            assert 36000 - 60 < ttl <= 36000
            # deleting the file on B revokes the handle on A too
            assert (await editor.close()).status == 200
            assert (await editor.override("DELETE")).status == 200
            async with http.get(
                f"{base_a}/wopi/files/{opened['file_id']}", params={"access_token": handle}
            ) as answer:
                assert answer.status == 401
            # an unknown handle is refused
            async with http.get(
                f"{base_a}/wopi/files/{opened['file_id']}",
                params={"access_token": "wbh" + secrets.token_urlsafe(32)},
            ) as answer:
                assert answer.status == 401
            # Redis gone: a handle cannot be checked, so the answer is 503, never a pass
            (shared / "data" / "later.docx").write_bytes(b"l")
            later = await post_open(http, base_b, path="later.docx", app="onlyoffice", mode="view")
            redis_server.stop()
            async with http.get(
                f"{base_a}/wopi/files/{later['file_id']}",
                params={"access_token": later["form_parameters"]["access_token"]},
            ) as answer:
                assert answer.status == 503
                assert (await answer.text()).startswith("The token store is unavailable")
            # a self-contained JWT (minted before the switch) needs no token store: it passes
            # the token check, and the request then waits on the file id map, which lives in
            # the same Redis with Redis locks (503 naming the map, not the token store)
            jwt_token, _ = app_a[TOKENS].mint(
                file_id=later["file_id"], user_id="ada@idp", user_name="Ada", app="onlyoffice"
            )
            async with http.get(
                f"{base_a}/wopi/files/{later['file_id']}", params={"access_token": jwt_token}
            ) as answer:
                text = await answer.text()
                assert answer.status == 503, text
                assert "token store" not in text and "id map" in text
    finally:
        redis_server.stop()


async def test_urls_stay_short_with_a_4kb_reva_token(
    tmp_path, aiohttp_server, signed_editors, signer
):
    reva_token = "eyJ" + secrets.token_urlsafe(3100)  # 4 kB, like a Reva JWT with scopes
    assert len(reva_token) >= 4096
    gateway = FakeGateway(root=tmp_path / "cs3", tokens={reva_token: "einstein"})
    (tmp_path / "cs3").mkdir()
    (tmp_path / "cs3" / "thesis.docx").write_bytes(b"chapter one")
    (tmp_path / "cs3" / "slides.odt").write_bytes(b"odt")
    running = RunningGateway(gateway)
    await running.start()
    try:
        storage = f'\n[storages.cernbox]\ntype = "cs3"\ngateway = "{running.address}"\n'
        for short in (False, True):
            body = f"short_tokens = {str(short).lower()}\n" + app_tables(signed_editors) + storage
            base, _ = await start(aiohttp_server, tmp_path / f"short-{short}", body)
            async with aiohttp.ClientSession() as http:
                urls: list[str] = []
                for app in APPS:
                    name = "slides.odt" if app == "collabora" else "thesis.docx"
                    for viewmode in (
                        "VIEW_MODE_READ_WRITE",
                        "VIEW_MODE_READ_ONLY",
                        "VIEW_MODE_VIEW_ONLY",
                        "VIEW_MODE_EMBEDDED",
                    ):
                        async with http.get(
                            f"{base}/wopi/iop/openinapp",
                            params={
                                "fileid": f"/{name}",
                                "endpoint": "cernbox",
                                "viewmode": viewmode,
                                "userid": "einstein@idp",
                                "appname": app,
                            },
                            headers={"Authorization": f"Bearer {IOP}", "TokenHeader": reva_token},
                        ) as response:
                            assert response.status == 200, await response.text()
                            answer = await response.json()
                        token = answer["form-parameters"]["access_token"]
                        urls.append(f"{answer['app-url']}&access_token={token}")
                        if short:
                            assert len(token) <= 64
                        else:  # the baseline: a self-contained JWT carries the sealed token
                            assert len(token) > 4096
                            assert reva_token not in token
                    if not short:
                        continue
                    # the editor works with the handle, reading through the user's credential
                    cls = {"collabora": FakeCollabora, "onlyoffice": FakeOnlyOffice}.get(
                        app, FakeMicrosoft
                    )
                    editor = cls(http, answer["app-url"], token, signer)
                    expected = b"odt" if app == "collabora" else b"chapter one"
                    assert await editor.get_file() == expected
                (tmp_path / f"short-{short}" / "data" / "local.docx").write_bytes(b"l")
                for app in APPS:
                    for mode in ("view", "edit", "secureview", "embedview"):
                        name = "local.docx"
                        opened = await post_open(http, base, path=name, app=app, mode=mode)
                        urls += [
                            opened["app_url"],
                            opened["host_url"],
                            f"{opened['app_url']}&access_token="
                            + opened["form_parameters"]["access_token"],
                        ]
                longest = max(len(url) for url in urls)
                if short:
                    assert longest < MAX_URL, longest
                else:
                    assert longest > MAX_URL  # what short tokens are for
    finally:
        await running.stop()


async def test_memory_handles_expire_and_are_revoked():
    now = [1000.0]
    store = MemoryHandleStore(clock=lambda: now[0])
    codec = TokenCodec(SECRET, 60, handles=store)
    handle, info = await codec.issue(file_id="local.a", user_id="u", user_name="U", mode="edit")
    other, _ = await codec.issue(file_id="local.b", user_id="u", user_name="U")
    assert is_handle(handle) and len(handle) <= 64
    assert (await codec.resolve(handle)).file_id == "local.a"
    # the store keeps the signed JWT, never bare claims
    raw = await store.get(handle)
    assert raw is not None
    assert jwt.decode(raw, SECRET, algorithms=["HS256"])["mode"] == "edit"
    await codec.revoke_file("local.a")
    with pytest.raises(Exception, match="revoked"):
        await codec.resolve(handle)
    assert (await codec.resolve(other)).file_id == "local.b"
    now[0] += 61
    with pytest.raises(Exception, match="expired"):
        await codec.resolve(other)
    # without a store, a handle is just an invalid token
    with pytest.raises(Exception, match="Invalid"):
        await TokenCodec(SECRET, 60).resolve(handle)
    assert info.mode == "edit"


async def test_memory_short_tokens_on_one_instance(
    tmp_path, aiohttp_server, signed_editors, signer
):
    base, _ = await start(
        aiohttp_server, tmp_path / "one", "short_tokens = true\n" + app_tables(signed_editors)
    )
    (tmp_path / "one" / "data" / "a.odt").write_bytes(b"a")
    async with aiohttp.ClientSession() as http:
        opened = await post_open(http, base, path="a.odt", app="collabora", mode="edit")
        handle = opened["form_parameters"]["access_token"]
        assert is_handle(handle)
        editor = FakeCollabora(http, opened["app_url"], handle, signer)
        await editor.open()
        saved = await editor.save(b"b")
        assert saved.status == 200
        # Save As hands out a handle too, for the new file
        answer = await editor.override(
            "PUT_RELATIVE", **{"X-WOPI-SuggestedTarget": ".odt", "X-WOPI-Size": "1"}
        )
        assert answer.status == 200
        new_token = answer.json()["Url"].split("access_token=")[1]
        assert is_handle(new_token)
        assert (await editor.close()).status == 200
        assert (await editor.override("DELETE")).status == 200
        assert (await editor.call("GET")).status == 401
