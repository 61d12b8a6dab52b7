"""Shared pieces of the editor tests: the real discovery documents, served over HTTP.

``discovery_server`` is a small aiohttp server that serves the fixture documents copied from
the editors (see ``tests/fixtures/discovery/SOURCE.txt``) at ``/<name>/hosting/discovery``.
Each document can be switched to failing (HTTP 503) or dropped to count refetches; that is how
the tests make an editor unreachable without any real editor running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class DiscoveryServer:
    base: str = ""
    docs: dict[str, bytes] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)

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
        if name in state.failing or name not in state.docs:
            return web.Response(status=503, text="down")
        return web.Response(body=state.docs[name], content_type="text/xml")

    app = web.Application()
    app.router.add_get("/{name}/hosting/discovery", discovery)
    server = await aiohttp_server(app)
    state.base = str(server.make_url("")).rstrip("/")
    return state
