"""A stopping listener resets nobody: connections queued before the stop are served, a
connection tried after it is refused (which a client retries elsewhere), never reset.

Real sockets on the loopback; the kernel's own handshakes and resets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import aiohttp
from aiohttp import web

from tests.support.procs import free_port
from wopibridge.ops.listeners import refuse_new_handshakes, stop_sites_quietly


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def _queued_client(port: int) -> socket.socket:
    """A client whose handshake completed: it sits in the listener's accept queue."""
    client = socket.create_connection(("127.0.0.1", port), timeout=2)
    client.sendall(b"ping")
    return client


def test_a_plain_close_resets_a_queued_connection_and_the_filter_lets_it_be_accepted() -> None:
    # The hazard, shown first: a listener that closes resets what waits in its queue.
    plain = _listener()
    waiting = _queued_client(plain.getsockname()[1])
    plain.close()
    try:
        got = waiting.recv(1)
    except ConnectionResetError:
        got = b"reset"
    finally:
        waiting.close()
    assert got == b"reset"

    # With the filter on first, the queued connection is still there to be accepted.
    listener = _listener()
    waiting = _queued_client(listener.getsockname()[1])
    assert refuse_new_handshakes(listener)
    accepted, _ = listener.accept()
    listener.close()
    try:
        assert accepted.recv(4) == b"ping"
        accepted.sendall(b"pong")
        assert waiting.recv(4) == b"pong"
    finally:
        accepted.close()
        waiting.close()


def test_a_connect_after_the_filter_is_refused_once_the_listener_is_gone() -> None:
    listener = _listener()
    port = listener.getsockname()[1]
    assert refuse_new_handshakes(listener)
    outcome: list[BaseException | str] = []

    def connect() -> None:
        client = socket.socket()
        client.settimeout(5)
        try:
            client.connect(("127.0.0.1", port))
            outcome.append("connected")
        except OSError as exc:
            outcome.append(exc)
        finally:
            client.close()

    started = time.monotonic()
    thread = threading.Thread(target=connect)
    thread.start()
    time.sleep(0.3)  # the SYN was dropped: the client waits for its retransmission
    assert not outcome, outcome
    listener.close()
    thread.join(6)
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionRefusedError), outcome
    assert time.monotonic() - started < 5


async def test_stopping_one_of_two_sites_on_a_port_fails_no_connection() -> None:
    """Two sites share a port (``SO_REUSEPORT``), as a worker pair does; fresh connections keep
    coming while one site stops quietly, again and again: every request is answered."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    keeper = web.AppRunner(app)
    await keeper.setup()
    port = free_port()
    stays = web.TCPSite(keeper, "127.0.0.1", port, reuse_port=True)
    await stays.start()
    failures: list[str] = []
    answered = 0
    done = False

    async def client() -> None:
        nonlocal answered
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not done:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/") as resp:
                        assert resp.status == 200 and await resp.text() == "hello"
                        answered += 1
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

    clients = [asyncio.create_task(client()) for _ in range(4)]
    try:
        for _ in range(10):
            goes = web.TCPSite(keeper, "127.0.0.1", port, reuse_port=True)
            await goes.start()
            await asyncio.sleep(0.05)
            await stop_sites_quietly([goes])
    finally:
        done = True
        await asyncio.gather(*clients)
        await keeper.cleanup()
    assert failures == [], failures[:5]
    assert answered > 40
