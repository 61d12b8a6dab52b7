"""Several real ``wopibridge serve`` processes over one storage and one Redis: a fleet.

Each instance has its own state folder and port, as pods behind a load balancer would; they
share the token secret (through the configuration), the data and the Redis. A WOPISrc names
the instance that minted it, so :meth:`Fleet.url_on` rewrites it to reach another one, as a
load balancer would send the request anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp

from tests.support.procs import wait_for_port
from tests.support.server import ServerProcess
from tests.support.wopi import IOP_SECRET

_fleets = itertools.count()


class Fleet:
    def __init__(
        self, workdir: Path, redis_url: str, size: int = 3, **sections: dict[str, Any]
    ) -> None:
        prefix = f"fleet{next(_fleets)}-{workdir.name}:"
        self.redis_url = redis_url
        self.servers = [
            ServerProcess(
                workdir / f"instance{i}",
                lock_url=redis_url,
                locks={"prefix": prefix},
                **sections,
            )
            for i in range(size)
        ]

    def start(self) -> None:
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            wait_for_port(server.port, timeout=30)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __getitem__(self, index: int) -> ServerProcess:
        return self.servers[index]

    def __len__(self) -> int:
        return len(self.servers)

    def url_on(self, wopi_src: str, index: int) -> str:
        """The same WOPISrc, reached through instance ``index``."""
        path = wopi_src.split("/wopi/files/", 1)[1]
        return f"{self.servers[index].url}/wopi/files/{path}"

    def logs(self) -> str:
        return "\n".join(server.log() for server in self.servers)


@contextmanager
def running_fleet(workdir: Path, redis_url: str, **kwargs: Any) -> Iterator[Fleet]:
    fleet = Fleet(workdir, redis_url, **kwargs)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


#: An editor whose sessions keep desktop lock files; its discovery is never reached.
COLLABORA = {"discovery_url": "http://127.0.0.1:9/hosting/discovery"}


@contextmanager
def local_fleet(workdir: Path, redis_url: str, data: Path, size: int = 2) -> Iterator[Fleet]:
    """``size`` instances over the folder ``data`` and one Redis, with Collabora configured
    (lock files on), logging warnings only; no traceback may reach their logs."""
    with running_fleet(
        workdir,
        redis_url,
        size=size,
        storage={"root": str(data)},
        server={"log_level": "WARNING"},
        **{"apps.collabora": COLLABORA},
    ) as fleet:
        yield fleet
        assert "Traceback" not in fleet.logs()


async def wopi(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    override: str | None = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    contents: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """One WOPI call: status, headers and body."""
    target = url + ("/contents" if contents else "")
    method = "POST" if override else "GET"
    all_headers = {**({"X-WOPI-Override": override} if override else {}), **(headers or {})}
    async with session.request(
        method, target, params={"access_token": token}, headers=all_headers, data=data
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def open_on(
    session: aiohttp.ClientSession,
    fleet: Fleet,
    index: int,
    ref: str,
    token_header: str = "",
    **params: str,
) -> tuple[str, str, dict[str, Any]]:
    """Open ``ref`` through instance ``index``: WOPISrc, token and the openinapp answer.
    ``token_header`` is the user's Reva token, as Reva sends it."""
    async with session.get(
        f"{fleet[index].url}/wopi/iop/openinapp",
        params={
            "fileid": ref,
            "viewmode": "VIEW_MODE_READ_WRITE",
            "userid": "u@idp",
            "username": "U",
            "appurl": "https://editor/x?",
            **params,
        },
        headers={
            "Authorization": f"Bearer {IOP_SECRET}",
            **({"TokenHeader": token_header} if token_header else {}),
        },
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    src = unquote(body["app-url"].split("WOPISrc=", 1)[1])
    return src, body["form-parameters"]["access_token"], body


async def one_winner_per_round(
    session: aiohttp.ClientSession,
    fleet: Fleet,
    src: str,
    token: str,
    rounds: int = 25,
    clients: int = 60,
) -> None:
    """``rounds`` rounds; in each, ``clients`` clients with their own connections send Lock
    with their own lock id, spread over the instances: exactly one gets 200, every other gets
    409 naming the winner's lock. The winner then unlocks, through the next instance."""
    size = len(fleet.servers)
    for round_ in range(rounds):

        async def lock(i: int, round_: int = round_) -> tuple[int, str]:
            async with aiohttp.ClientSession() as own:
                status, headers, _ = await wopi(
                    own,
                    fleet.url_on(src, i % size),
                    token,
                    "LOCK",
                    {"X-WOPI-Lock": f"R{round_}-C{i}"},
                )
                return status, headers.get("X-WOPI-Lock", "")

        results = await asyncio.gather(*(lock(i) for i in range(clients)))
        winners = [f"R{round_}-C{i}" for i, (status, _) in enumerate(results) if status == 200]
        assert len(winners) == 1, (round_, results)
        refused = [current for status, current in results if status == 409]
        assert len(refused) == clients - 1 and set(refused) == set(winners), (round_, results)
        status, _, _ = await wopi(
            session,
            fleet.url_on(src, round_ % size),
            token,
            "UNLOCK",
            {"X-WOPI-Lock": winners[0]},
        )
        assert status == 200


async def one_winner_across_sites(
    session: aiohttp.ClientSession,
    sites: list[tuple[Fleet, str, str]],
    rounds: int,
    clients: int,
    between: Callable[[str, str, str], Awaitable[None]] | None = None,
) -> None:
    """``rounds`` rounds; in each, ``clients`` clients (their own connections) send Lock with
    their own id, client ``i`` through site ``i % len(sites)`` (each site given as its fleet,
    WOPISrc and token) and, there, through its instances in turn: exactly one 200, every other
    409. ``between(url, token, held)`` runs while the winner holds the lock (with the *other*
    site's URL and token); the winner then unlocks through its site."""
    count = len(sites)
    for round_ in range(rounds):

        def target(i: int) -> tuple[str, str]:
            fleet, src, token = sites[i % count]
            return fleet.url_on(src, (i // count) % len(fleet)), token

        async def lock(i: int, round_: int = round_) -> int:
            url, token = target(i)
            async with aiohttp.ClientSession() as own:
                status, _, _ = await wopi(
                    own, url, token, "LOCK", {"X-WOPI-Lock": f"R{round_}-C{i}"}
                )
            return status

        results = await asyncio.gather(*(lock(i) for i in range(clients)))
        winners = [i for i, status in enumerate(results) if status == 200]
        assert len(winners) == 1 and results.count(409) == clients - 1, (round_, results)
        held = f"R{round_}-C{winners[0]}"
        if between is not None:
            await between(*target(winners[0] + 1), held)
        url, token = target(winners[0])
        status, _, _ = await wopi(session, url, token, "UNLOCK", {"X-WOPI-Lock": held})
        assert status == 200
