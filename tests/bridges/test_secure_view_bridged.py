"""Secure view and the bridged editors: they show plain text to whoever holds the page, so a
secure-view token never opens a document in them, and a token for another app (a secure-view
Collabora session) cannot be carried over to them."""

from __future__ import annotations

from tests.support.wopi import IOP_SECRET

from .fake_codimd import FakeCodiMD
from .harness import Host
from .test_codimd_bridge import codimd_table
from .test_codimd_client import start


async def post(host: Host, stat, *, mode: str, token_app: str) -> tuple[int, str]:
    """The browser's form POST to the bridge with a token minted for ``token_app``."""
    token = host.token(stat, mode=mode, app=token_app)
    response = await host.client.post(
        f"/wopi/bridge/open?app=codimd&WOPISrc=http%3A%2F%2Fx%2Fwopi%2Ffiles%2Flocal.{stat.file_id}",
        data={"access_token": token, "access_token_ttl": "0"},
        allow_redirects=False,
    )
    return response.status, await response.text()


async def test_bridged_editors_refuse_secure_view(aiohttp_server, make_host) -> None:
    fake = FakeCodiMD()
    await start(aiohttp_server, fake)
    host: Host = await make_host(codimd_table(fake))
    stat = await host.put_file("secret.md", b"# Secret\n")
    # a Collabora secure-view token carried over to CodiMD
    status, body = await post(host, stat, mode="secureview", token_app="collabora")
    assert status == 401 and "another app" in body
    status, body = await post(host, stat, mode="view", token_app="collabora")
    assert status == 401
    # a secure-view token for CodiMD itself
    status, body = await post(host, stat, mode="secureview", token_app="codimd")
    assert status == 400 and body == "codimd cannot show files in secure view"
    assert fake.notes == {}  # nothing reached the editor
    # and the open endpoints refuse to mint one
    answer = await host.client.post(
        "/wopi/open",
        json={"path": "secret.md", "app": "codimd", "mode": "secureview", "user": {"id": "u"}},
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert answer.status == 400
    answer = await host.client.get(
        "/wopi/iop/openinapp",
        params={
            "fileid": "secret.md",
            "viewmode": "VIEW_MODE_VIEW_ONLY",
            "userid": "u",
            "appname": "CodiMD",
        },
        headers={"Authorization": f"Bearer {IOP_SECRET}"},
    )
    assert answer.status == 400
    # an ordinary view still works
    status, _ = await post(host, stat, mode="view", token_app="CodiMD")
    assert status == 303
