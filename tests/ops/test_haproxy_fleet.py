"""The shipped ``deploy/fleet/haproxy.cfg``, run by Debian's HAProxy with only its addresses
(and certificate path) changed, in front of two instances on one folder and one Redis: a
rolling restart under load fails no request, and HAProxy starts under a 20,000 file limit."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.fleet import running_fleet
from tests.support.procs import RedisServer, free_port, wait_for_port
from tests.support.requires import require_binary
from tests.support.rolling import RoundRobin, restart
from tests.support.server import ServerProcess
from tests.support.wopi import open_remote

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "fleet" / "haproxy.cfg"


def _certificate(folder: Path) -> Path:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            require_binary("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    pem = folder / "wopi.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem


def localised(config: str, port: int, pem: Path, backends: list[int]) -> str:
    """The shipped configuration with this machine's addresses: the frontend's bind and
    certificate, and each ``server`` line's host:port (in order)."""
    config = config.replace("bind :443", f"bind 127.0.0.1:{port}")
    config = config.replace("/etc/haproxy/wopi.example.org.pem", str(pem))
    ports = iter(backends)
    config = re.sub(r"wopi-\d\.example\.org:8880", lambda _: f"127.0.0.1:{next(ports)}", config)
    assert next(ports, None) is None, "one address per server line"
    return config


@pytest.fixture
def haproxy_binary() -> str:
    return require_binary("haproxy")


def _start_haproxy(binary: str, config: Path, nofile: int) -> subprocess.Popen[bytes]:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return subprocess.Popen(
        [binary, "-db", "-f", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=limit,
    )


@pytest.fixture
def instances(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "report.docx").write_bytes(b"v1")
    sections = {"server": {"drain_seconds": 5}, "storage": {"root": str(data)}}
    with running_fleet(tmp_path / "fleet", redis_server.url, size=2, **sections) as fleet:
        yield fleet.servers


async def test_rolling_restart_through_the_shipped_haproxy_fails_no_request(
    tmp_path: Path, haproxy_binary: str, instances: list[ServerProcess]
) -> None:
    port = free_port()
    nowhere = free_port()  # the third server line: an instance that is down all along
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        localised(
            SHIPPED.read_text(),
            port,
            _certificate(tmp_path),
            [s.port for s in instances] + [nowhere],
        )
    )
    proxy = _start_haproxy(haproxy_binary, config, nofile=20000)
    try:
        wait_for_port(port, timeout=10)
        await asyncio.sleep(3)  # the checks find the third server down
        async with aiohttp.ClientSession() as session:
            src, token = await open_remote(session, instances[0].url, "report.docx")
        client = RoundRobin([f"https://127.0.0.1:{port}"], src, token)
        running = asyncio.create_task(client.run(minimum=400))
        for server in instances:
            await client.wait_for(client.sent + 60)
            await restart(server)
            await asyncio.sleep(3)  # the checks take it back in
        client.done = True
        await running
    finally:
        proxy.terminate()
        output = proxy.communicate(timeout=10)[0].decode(errors="replace")
    assert client.sent >= 400
    assert client.failures == [], (client.failures[:10], output[-2000:])
    for server in instances:
        assert "drained in" in server.log()


def test_the_shipped_haproxy_starts_under_a_20000_file_limit(
    tmp_path: Path, haproxy_binary: str
) -> None:
    """``maxconn`` asks for about twice its number in open files: 20,000 in the old file
    needed 40,020 and HAProxy refused to start."""
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(localised(SHIPPED.read_text(), port, _certificate(tmp_path), [1, 2, 3]))
    proxy = _start_haproxy(haproxy_binary, config, nofile=20000)
    try:
        wait_for_port(port, timeout=10)
        assert proxy.poll() is None
    finally:
        proxy.terminate()
        output = proxy.communicate(timeout=10)[0].decode(errors="replace")
    assert "Cannot raise FD limit" not in output, output
