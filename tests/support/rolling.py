"""Rolling restarts under load: a WOPI client that never stops sending, and a restart that
waits for the drain and the new start."""

from __future__ import annotations

import asyncio
import signal
import ssl
import time

import aiohttp

from tests.support.server import ServerProcess

#: CheckFileInfo, Lock and Unlock, in turn: a read, and two writes to the lock store.
CYCLE = (None, "LOCK", "UNLOCK")
#: A request that took this long waited for a dropped SYN's retransmission (one second).
HELD = 0.9


class RoundRobin:
    """Sends CheckFileInfo/Lock/Unlock to ``urls`` in turn, one at a time, until ``done`` and at
    least ``minimum`` requests. A refused connection (the instance is not listening) is retried
    on the next URL; anything else that is not a 200 is a failure, with what it was."""

    def __init__(self, urls: list[str], wopi_src: str, token: str, pause: float = 0.01) -> None:
        self.path = wopi_src.split("/wopi/files/", 1)[1]
        self.urls = urls
        self.token = token
        self.pause = pause
        self.sent = 0
        self.refused_retries = 0
        #: Requests answered after a wait for a connection of a second or so: their handshake
        #: came while an instance was stopping, and its SYN was dropped rather than reset
        #: (``wopibridge.ops.listeners``); the client's retransmission went on to a listener.
        self.held = 0
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}
        self.done = False

    async def wait_for(self, count: int) -> None:
        while self.sent < count:
            await asyncio.sleep(0.05)

    async def run(self, minimum: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            turn = 0
            while not (self.done and self.sent >= minimum):
                override = CYCLE[self.sent % len(CYCLE)]
                await self._one(session, turn, override)
                turn += 1
                await asyncio.sleep(self.pause)

    async def _one(self, session: aiohttp.ClientSession, turn: int, override: str | None) -> None:
        headers = {"X-WOPI-Override": override, "X-WOPI-Lock": "rolling"} if override else {}
        for attempt in range(len(self.urls) * 20):
            base = self.urls[(turn + attempt) % len(self.urls)]
            url = f"{base}/wopi/files/{self.path}"
            started = time.monotonic()
            try:
                async with session.request(
                    "POST" if override else "GET",
                    url,
                    params={"access_token": self.token},
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:
                    body = await resp.read()
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ConnectionRefusedError):
                    self.refused_retries += 1
                    await asyncio.sleep(0.05 if attempt >= len(self.urls) else 0)
                    continue
                self.failures.append(f"{override or 'GET'} {base}: {exc!r}")
                break
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.append(f"{override or 'GET'} {base}: {exc!r}")
                break
            if time.monotonic() - started >= HELD:
                self.held += 1
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
            if resp.status != 200:
                self.failures.append(f"{override or 'GET'} {base}: {resp.status} {body[:200]!r}")
            break
        else:
            self.failures.append(f"{override or 'GET'}: every instance refused")
        self.sent += 1


async def ready_within(
    session: aiohttp.ClientSession, base: str, status: int, within: float, since: float
) -> float:
    """Poll ``/ready`` on a fresh connection each time until it answers ``status``; fail if
    that takes more than ``within`` seconds after ``since``. Answers how long it took."""
    while True:
        try:
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{base}/ready") as resp:
                if resp.status == status:
                    return time.monotonic() - since
        except aiohttp.ClientError:
            pass  # not listening yet, or going away
        if time.monotonic() - since > within:
            raise AssertionError(f"/ready did not answer {status} within {within} s")
        await asyncio.sleep(0.05)


async def restart(server: ServerProcess, stop_within: float = 30.0) -> None:
    """SIGTERM ``server``, wait for its exit (0), start it again and wait until it is ready."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.proc.wait, stop_within)
    assert code == 0, server.log()[-3000:]
    server.proc = None
    server.start(wait=False)
    async with aiohttp.ClientSession() as session:
        await ready_within(session, server.url, 200, within=40.0, since=time.monotonic())
