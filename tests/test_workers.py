"""``server.workers``: several processes on one port, one supervisor, shared Redis locks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import RedisServer, children
from tests.support.server import ServerProcess
from tests.support.wopi import open_remote
from wopibridge.config import ConfigError, load_settings


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by whatever adopted it, maybe late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_more_than_one_worker_needs_redis_locks() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"WOPIBRIDGE_SERVER_WORKERS": "2"})
    assert caught.value.key == "server.workers"
    settings = load_settings(
        env={"WOPIBRIDGE_SERVER_WORKERS": "2", "WOPIBRIDGE_LOCKS_URL": "redis://127.0.0.1:1/0"}
    )
    assert settings.server.workers == 2


async def _session_round(base: str, iop: str, clients: int) -> tuple[int, int]:
    """Open one file, then ``clients`` connections each Lock it with their own id: one wins,
    and every request of the round is answered by some worker."""
    async with aiohttp.ClientSession() as session:
        url, token = await open_remote(session, base, "shared.docx", iop)

        async def lock(i: int) -> int:
            # a connection of its own, so the kernel spreads them over the workers
            async with (
                aiohttp.ClientSession() as own,
                own.post(
                    url,
                    params={"access_token": token},
                    headers={"X-WOPI-Override": "LOCK", "X-WOPI-Lock": f"L{i}"},
                ) as r,
            ):
                return r.status

        statuses = await asyncio.gather(*(lock(i) for i in range(clients)))
        async with session.post(
            url, params={"access_token": token}, headers={"X-WOPI-Override": "GET_LOCK"}
        ) as r:
            winner = r.headers["X-WOPI-Lock"]
        async with session.post(
            url,
            params={"access_token": token},
            headers={"X-WOPI-Override": "UNLOCK", "X-WOPI-Lock": winner},
        ) as r:
            assert r.status == 200
    return statuses.count(200), statuses.count(409)


def test_workers_share_secrets_locks_and_metrics_and_are_replaced(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    server = ServerProcess(
        tmp_path / "srv",
        lock_url=redis_server.url,
        server={"workers": 2},
        security={"token_secret": "", "iop_secret": ""},  # generated once, by the supervisor
    )
    (tmp_path / "srv" / "data").mkdir(parents=True)
    (tmp_path / "srv" / "data" / "shared.docx").write_bytes(b"doc")
    try:
        server.start()
        assert server.proc is not None
        supervisor = server.proc.pid
        _wait_for(lambda: server.log().count("worker listening") == 2)
        iop = (tmp_path / "srv" / "state" / "iop_secret").read_text().strip()

        won, refused = asyncio.run(_session_round(server.url, iop, 30))
        assert (won, refused) == (1, 29)

        def served_by() -> set[int]:
            records = [json.loads(line) for line in server.log().splitlines()]
            return {r["process"] for r in records if r["logger"] == "wopibridge.access"}

        # access lines reach the log within 50 ms of their request
        _wait_for(lambda: served_by() == set(children(supervisor)), timeout=5)

        victim = min(children(supervisor))
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: server.log().count("worker listening") == 3)
        assert len(children(supervisor)) == 2 and victim not in children(supervisor)
        assert asyncio.run(_session_round(server.url, iop, 10)) == (1, 9)

        text = urllib.request.urlopen(f"{server.url}/metrics").read().decode()
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        locks = sum(
            s.value
            for s in samples
            if s.name == "wopibridge_requests_total" and s.labels["operation"] == "Lock"
        )
        assert locks == 40, text  # the killed worker's requests included
        memory = [s for s in samples if s.name == "wopibridge_worker_resident_memory_bytes"]
        assert {s.labels["pid"] for s in memory} >= {str(p) for p in children(supervisor)}

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0
        server.proc = None
        assert "all workers stopped" in server.log()
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_workers_stop_when_their_supervisor_is_killed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    server = ServerProcess(tmp_path / "srv", lock_url=redis_server.url, server={"workers": 2})
    try:
        server.start()
        assert server.proc is not None
        supervisor = server.proc.pid
        _wait_for(lambda: len(children(supervisor)) == 2)
        workers = children(supervisor)
        server.kill()
        _wait_for(lambda: not any(_running(pid) for pid in workers))
        assert server.log().count("the supervisor is gone; stopping this worker") == 2
    finally:
        server.stop()


def test_a_configuration_error_in_the_workers_stops_the_server(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Storage tables are checked when each worker starts: the error ends the whole server
    with status 2 instead of a loop of workers dying and being replaced."""
    server = ServerProcess(
        tmp_path / "srv",
        lock_url=redis_server.url,
        server={"workers": 2},
        **{"storages.remote": {"type": "ftp"}},
    )
    try:
        server.start(wait=False)
        assert server.proc is not None
        assert server.proc.wait(timeout=20) == 2
        server.proc = None
        log = server.log()
        assert "invalid configuration: storages.remote" in log
        assert "starting another" not in log
    finally:
        server.stop()
