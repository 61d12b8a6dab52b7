from __future__ import annotations

from collections.abc import Iterator

import pytest

from .etherpad_server import EtherpadServer


@pytest.fixture(scope="session")
def etherpad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtherpadServer]:
    server = EtherpadServer(tmp_path_factory.mktemp("etherpad"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_host(aiohttp_client, tmp_path):
    """``await make_host(apps)``: a wopibridge with the bridge and these ``[apps.*]`` tables."""
    from .harness import Host, bridge_settings, build_app

    async def make(apps, locks: str = "memory://", name: str = "a") -> Host:
        settings = bridge_settings(tmp_path / name, apps, locks)
        settings.storage.root.mkdir(parents=True, exist_ok=True)
        app = build_app(settings)
        client = await aiohttp_client(app)
        return Host(client=client, app=app, root=settings.storage.root)

    return make
