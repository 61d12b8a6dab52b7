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
