"""Fixtures: the real app over HTTP, on each lock store, with a test-owned redis-server."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.procs import RedisServer
from tests.support.topologies import ClusterSet, SentinelSet
from tests.support.wopi import IOP_SECRET, TOKEN_SECRET
from wopibridge.app import create_app
from wopibridge.config import Settings, load_settings

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """One primary, two replicas, three sentinels, shared by the tests that do not kill them."""
    topology = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def cluster_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSet]:
    """Three primaries with a replica each, shared by the tests that do not kill them."""
    topology = ClusterSet(tmp_path_factory.mktemp("cluster"))
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


@pytest.fixture(params=["memory", "redis"])
def lock_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(lock_url: str = "memory://", **sections: dict[str, Any]) -> Settings:
        raw: dict[str, dict[str, Any]] = {
            "server": {"state_dir": str(tmp_path / "state"), "port": 8880},
            "storage": {"root": str(tmp_path / "data")},
            "locks": {"url": lock_url, "prefix": f"test{next(_prefixes)}:"},
            "security": {"token_secret": TOKEN_SECRET, "iop_secret": IOP_SECRET},
        }
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        return load_settings(None, env={}, overrides=raw)

    return make


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
async def client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], lock_url: str, data_dir: Path
) -> AsyncIterator[TestClient[Any, Any]]:
    yield await aiohttp_client(create_app(make_settings(lock_url)))
