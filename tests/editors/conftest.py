"""Shared pieces of the editor tests: the real discovery documents served over HTTP, and a
running wopibridge (``bridge``) configured with the three office editors.

``discovery_server`` is a small aiohttp server that serves the fixture documents copied from
the editors (see ``tests/fixtures/discovery/SOURCE.txt``) at ``/<name>/hosting/discovery``.
Each document can be switched to failing (HTTP 503) or dropped to count refetches; that is how
the tests make an editor unreachable without any real editor running.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.procs import free_port
from wopibridge.app import create_app
from wopibridge.config import load_settings

from .fakes import ProofSigner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


STAND_IN = """<!DOCTYPE html><html><body><p>stand-in editor</p><script>
var host = %(host)s;
function send(id, values) {
  window.parent.postMessage(JSON.stringify({MessageId: id, SendTime: Date.now(),
                                            Values: values}), host);
}
window.addEventListener("message", function (event) {
  if (event.origin !== host) { return; }
  fetch("/seen", {method: "POST", body: event.data}).then(function () {
    var message = JSON.parse(event.data);
    if (message.MessageId === "Host_PostmessageReady") { send("UI_Close", {}); }
  });
});
send("App_LoadingStatus", {Status: "Frame_Ready"});
</script></body></html>"""


@dataclass
class DiscoveryServer:
    """The editors' side: discovery documents, and for the ``cool`` document (Collabora's,
    pointing at this server) a **fake** Collabora page at ``cool.html``. Like Collabora, the
    fake takes the form POST, calls CheckFileInfo with the posted token, and talks PostMessage
    only to the ``PostMessageOrigin`` it was given: ``App_LoadingStatus``, then ``UI_Close``
    once the host answered ``Host_PostmessageReady``."""

    base: str = ""
    docs: dict[str, bytes] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    posted: list[dict[str, str]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    file_info: list[dict[str, Any]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}/hosting/discovery"


@pytest.fixture
async def discovery_server(aiohttp_server) -> DiscoveryServer:
    state = DiscoveryServer(
        docs={
            "collabora": fixture_bytes("collabora-runtime.xml"),
            "onlyoffice": fixture_bytes("onlyoffice-runtime.xml"),
            "msoffice": fixture_bytes("msoffice-oos.xml"),
            "template": fixture_bytes("collabora-template.xml"),
            "proofkey": fixture_bytes("collabora-proof-key.xml"),
        }
    )

    async def discovery(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state.hits[name] = state.hits.get(name, 0) + 1
        if name == "cool":
            body = fixture_bytes("collabora-runtime.xml")
            body = body.replace(b"http://collabora.test:9980", state.base.encode())
            return web.Response(body=body, content_type="text/xml")
        if name in state.failing or name not in state.docs:
            return web.Response(status=503, text="down")
        return web.Response(body=state.docs[name], content_type="text/xml")

    async def cool(request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        wopisrc = request.query["WOPISrc"]
        state.posted.append({**fields, "WOPISrc": wopisrc})
        token = fields["access_token"]
        async with (
            aiohttp.ClientSession() as http,
            http.get(wopisrc, params={"access_token": token}) as answer,
        ):
            info = await answer.json()
        state.file_info.append(info)
        html = STAND_IN % {"host": json.dumps(info["PostMessageOrigin"])}
        return web.Response(text=html, content_type="text/html")

    async def seen(request: web.Request) -> web.Response:
        state.seen.append(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{name}/hosting/discovery", discovery)
    app.router.add_post("/browser/{build}/cool.html", cool)
    app.router.add_post("/seen", seen)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = str(server.make_url("")).rstrip("/")
    return state


IOP = "iop-secret-for-the-editor-tests"
#: The editor tests' upload limit (small, so that a save over it is cheap to send).
MAX_UPLOAD = 4 * 1024 * 1024
PROOF = re.compile(rb"<proof-key[^>]*/>", re.S)


@pytest.fixture(scope="module")
def signer() -> ProofSigner:
    return ProofSigner()


def signed(doc: bytes, signer: ProofSigner) -> bytes:
    element = signer.discovery_element().encode()
    doc = PROOF.sub(b"", doc)
    return doc.replace(b"</wopi-discovery>", element + b"\n</wopi-discovery>")


class Bridge:
    def __init__(self, base: str, root: Path, state: Path, http: aiohttp.ClientSession, app):
        self.app = app
        self.base = base
        self.root = root
        self.state = state
        self.http = http

    async def open(self, path: str, app: str, mode: str = "edit", **extra) -> dict:
        body = {
            "path": path,
            "app": app,
            "mode": mode,
            "user": {"id": "ada@idp", "name": "Ada Lovelace", "type": "regular"},
            **extra,
        }
        async with self.http.post(
            f"{self.base}/wopi/open", json=body, headers={"Authorization": f"Bearer {IOP}"}
        ) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def editor(
        self, cls, path: str, app: str, signer: ProofSigner | None, mode: str = "edit", **kwargs
    ):
        opened = await self.open(path, app, mode)
        token = opened["form_parameters"]["access_token"]
        return cls(self.http, opened["app_url"], token, signer, **kwargs), opened


async def start_bridge(tmp_path: Path, aiohttp_server, apps: str) -> tuple[str, web.Application]:
    """A wopibridge on the local storage ``tmp_path/data`` with the ``[apps.*]`` tables given;
    its base URL and app."""
    root, state = tmp_path / "data", tmp_path / "state"
    root.mkdir()
    port = free_port()
    config = tmp_path / "wopibridge.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
state_dir = "{state}"
max_upload_size = {MAX_UPLOAD}

[storage]
root = "{root}"

[security]
token_secret = "token-secret-for-the-editor-tests"
iop_secret = "{IOP}"
{apps}"""
    )
    app = create_app(load_settings(config, env={}))
    await aiohttp_server(app, host="127.0.0.1", port=port)
    return f"http://127.0.0.1:{port}", app


@pytest.fixture
async def bridge(tmp_path, discovery_server, aiohttp_server, signer):
    for name in ("collabora", "onlyoffice", "msoffice"):
        discovery_server.docs[name] = signed(discovery_server.docs[name], signer)
    apps = f"""
[apps.collabora]
discovery_url = "{discovery_server.url("collabora")}"

[apps.onlyoffice]
discovery_url = "{discovery_server.url("onlyoffice")}"

[apps.msoffice]
discovery_url = "{discovery_server.url("msoffice")}"

[apps.cool]
type = "collabora"
discovery_url = "{discovery_server.url("cool")}"

[apps.down]
type = "onlyoffice"
discovery_url = "{discovery_server.url("down")}"
"""
    base, app = await start_bridge(tmp_path, aiohttp_server, apps)
    async with aiohttp.ClientSession() as http:
        yield Bridge(base, tmp_path / "data", tmp_path / "state", http, app)
