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
    if (message.MessageId === "Host_PostmessageReady") { send(%(after_ready)s, {}); }
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
    (or ``after_ready``) once the host answered ``Host_PostmessageReady``."""

    base: str = ""
    docs: dict[str, bytes] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    posted: list[dict[str, str]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    file_info: list[dict[str, Any]] = field(default_factory=list)
    #: what the fake editor page posts once the host answered its handshake (the user
    #: closing the document; ``UI_FileVersions``: asking for the revision history)
    after_ready: str = "UI_Close"

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
        html = STAND_IN % {
            "host": json.dumps(info["PostMessageOrigin"]),
            "after_ready": json.dumps(state.after_ready),
        }
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


APPS = ("collabora", "onlyoffice", "msoffice")
SECRET = "token-secret-for-the-editor-tests"


def write_config(path: Path, port: int, body: str) -> Path:
    """A wopibridge config on ``port`` with its storage and state beside ``path``; ``body``
    goes on in the ``[security]`` table and may add tables of its own."""
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
state_dir = "{path.parent / "state"}"
max_upload_size = {MAX_UPLOAD}

[storage]
root = "{path.parent / "data"}"

[security]
token_secret = "{SECRET}"
iop_secret = "{IOP}"
{body}
"""
    )
    return path


def app_tables(discovery_server: DiscoveryServer) -> str:
    """An ``[apps.<name>]`` table for each office editor, on its discovery document."""
    return "".join(
        f'\n[apps.{name}]\ndiscovery_url = "{discovery_server.url(name)}"\n' for name in APPS
    )


async def start(aiohttp_server, folder: Path, body: str) -> tuple[str, web.Application]:
    """A wopibridge of ``write_config`` in ``folder`` (its files in ``folder / "data"``)."""
    folder.mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    port = free_port()
    app = create_app(load_settings(write_config(folder / "wopibridge.toml", port, body), env={}))
    await aiohttp_server(app, host="127.0.0.1", port=port)
    return f"http://127.0.0.1:{port}", app


@pytest.fixture
def signed_editors(discovery_server, signer):
    """The discovery server with the three office editors' documents signed by ``signer``."""
    for name in APPS:
        discovery_server.docs[name] = signed(discovery_server.docs[name], signer)
    return discovery_server


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


@pytest.fixture
async def bridge(tmp_path, signed_editors, aiohttp_server):
    discovery_server = signed_editors
    body = app_tables(discovery_server) + (
        f'\n[apps.cool]\ntype = "collabora"\ndiscovery_url = "{discovery_server.url("cool")}"\n'
        f'\n[apps.down]\ntype = "onlyoffice"\ndiscovery_url = "{discovery_server.url("down")}"\n'
    )
    base, app = await start(aiohttp_server, tmp_path, body)
    async with aiohttp.ClientSession() as http:
        yield Bridge(base, tmp_path / "data", tmp_path / "state", http, app)
