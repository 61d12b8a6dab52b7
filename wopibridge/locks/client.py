"""The one Redis client of the process: locks and bridge state, on any topology of ``locks.url``.

It is redis-py's asyncio client (hiredis parses the replies): a plain :class:`redis.asyncio.Redis`
for one server, one that follows the primary through the sentinels for Sentinel, and
:class:`redis.asyncio.RedisCluster` for Cluster. This module adds what the WOPI layer needs on
top of it:

* **a bound on every call** (``locks.timeout``): a call that cannot finish in time, because
  the primary is gone and no new one is elected yet, raises ``Unavailable`` (503) instead of
  hanging or surfacing a client exception as a 500;
* **scripts by SHA**: :meth:`RedisConnection.script` sends EVALSHA and, on NOSCRIPT (a new
  primary after a failover, a restart, SCRIPT FLUSH), the full source once;
* **acknowledged writes** (``min_replicas``): the script and ``WAIT`` go in one pipeline on one
  connection (``WAIT`` counts that connection's writes), to the node owning the key;
* **what operators see**: the topology and the node in use (``/ready``), and counters of
  reconnects (a call succeeding after calls failed to reach Redis) and failovers (the primary
  found after a reconnect is not the one used before).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from wopibridge.errors import Unavailable
from wopibridge.lockurl import RedisTarget

log = logging.getLogger("wopibridge.redis")
#: TCP keepalive: a peer gone without a word (host down, partition) is found in about 20 s.
KEEPALIVE = (
    {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 2}
    if hasattr(socket, "TCP_KEEPIDLE")
    else {}
)
T = TypeVar("T")
Client = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1, defined once at module level by its user."""

    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


class ReplicasMissing(Exception):
    """Fewer replicas than required acknowledged a write within the timeout."""


def _build(target: RedisTarget, timeout: float) -> tuple[Client, Sentinel | None]:
    # No socket_timeout: redis-py would wrap every read in a timer of its own, which costs
    # more than the call; RedisConnection.call bounds the whole call instead, and a read
    # cancelled there closes its connection.
    common: dict[str, Any] = {
        "socket_connect_timeout": min(timeout, 2.0),
        "username": target.username or None,
        "password": target.password or None,
    }
    if target.topology == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            ssl=target.tls,
            retry=Retry(NoBackoff(), 2),
            **common,
        )
        return cluster, None
    retry = Retry(NoBackoff(), 1)  # one more try on a fresh connection after a broken one
    if target.topology == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={
                "socket_connect_timeout": common["socket_connect_timeout"],
                "socket_timeout": timeout,
            },
            retry=retry,
            ssl=target.tls,
            **common,
        )
        return sentinel.master_for(target.service, db=target.db), sentinel
    if target.path:
        client = aioredis.Redis(unix_socket_path=target.path, db=target.db, retry=retry, **common)
    else:
        host, port = target.nodes[0]
        client = aioredis.Redis(
            host=host, port=port, db=target.db, ssl=target.tls, retry=retry, **common
        )
    return client, None


class _Batcher:
    """Sends the commands issued in one turn of the event loop as one pipeline.

    Concurrent WOPI requests each make one Redis call; sent one by one, each pays redis-py's
    per-call costs (pool checkout, retry wrapper, one socket write and one wake-up). Collected
    over one loop turn, they share one connection, one write and one read loop. Each command
    keeps its own reply or error; a lone command goes out as a plain call.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                replies: list[Any] = [await self._client.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
            else:
                pipe = self._client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller learns it
            replies = [exc] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller gave up (timeout, cancellation)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call nobody waits for any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()


class RedisConnection:
    def __init__(self, target: RedisTarget, timeout: float = 3.0) -> None:
        self.target = target
        self.timeout = timeout
        self.client, self._sentinel = _build(target, timeout)
        self._batcher = None if isinstance(self.client, RedisCluster) else _Batcher(self.client)
        self.reconnects = 0
        self.failovers = 0
        self._failing = False
        self._primary = ""

    @property
    def topology(self) -> str:
        return self.target.topology

    @classmethod
    def from_url(cls, url: str, timeout: float = 3.0) -> RedisConnection:
        from wopibridge.lockurl import parse_lock_url

        return cls(parse_lock_url(url), timeout)

    async def call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """Run one client call within the timeout; failures to reach Redis become 503.

        On timeout the call is left to finish in the background rather than cancelled: a
        redis-py call cancelled while it connects can drop a half-open connection, and the
        next call on a live Redis should not pay for the dead one. Background calls end when
        Redis answers or their connection breaks (TCP keepalive finds dead peers).
        """
        future = asyncio.ensure_future(make())
        if not future.done():
            future.add_done_callback(_consume)  # whoever stops waiting for it, timeout or not
            done, _ = await asyncio.wait((future,), timeout=self.timeout)
            if not done:
                self._failing = True
                raise Unavailable(f"{what} (Redis) did not answer within {self.timeout:g} s")
        try:
            result = future.result()
        except (NoScriptError, Unavailable):
            raise
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failing = True
            raise Unavailable(f"{what} (Redis) is unreachable: {exc}") from None
        except Exception as exc:  # the client tripped over a topology change: still a 503
            log.warning("unexpected failure in the Redis client: %r", exc, exc_info=exc)
            self._failing = True
            raise Unavailable(f"{what} (Redis) failed: {type(exc).__name__}") from None
        if self._failing:
            self._failing = False
            self.reconnects += 1
            await self._note_primary()
        return result

    async def script(
        self,
        what: str,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        replicas: int = 0,
    ) -> Any:
        """Run ``script`` atomically; with ``replicas``, answer only once that many replicas
        hold its writes (else ``Unavailable``)."""
        try:
            return await self.call(what, lambda: self._run(script, False, keys, args, replicas))
        except NoScriptError:  # the primary lost its script cache: send the source once
            return await self.call(what, lambda: self._run(script, True, keys, args, replicas))

    def _run(
        self, script: Script, source: bool, keys: Sequence[str], args: Sequence[Any], replicas: int
    ) -> Awaitable[Any]:
        code = ("EVAL", script.source) if source else ("EVALSHA", script.sha)
        command = (*code, len(keys), *keys, *args)
        if not replicas:
            return self.execute(*command)
        return self._acked(command, keys[0], replicas)

    async def _acked(self, command: tuple[Any, ...], key: str, replicas: int) -> Any:
        """The command and ``WAIT replicas`` on one connection to the node owning ``key``."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()  # the slot table, once (and again after a failure)
            node = self.client.get_node_from_key(key)
            pipe: Any = self.client.pipeline(transaction=False)
            pipe.execute_command(*command, target_nodes=node)
            pipe.execute_command("WAIT", replicas, int(self.timeout * 500), target_nodes=node)
        else:
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command(*command)
            pipe.execute_command("WAIT", replicas, int(self.timeout * 500))
        if not isinstance(self.client, RedisCluster):
            reply, acked = await pipe.execute(raise_on_error=False)
        else:
            # No redirection: a redirected script would run on another connection than WAIT.
            reply, acked = await pipe.execute(raise_on_error=False, allow_redirections=False)
        if isinstance(self.client, RedisCluster) and isinstance(reply, Exception):
            # The slot moved or its node is gone (a failover): one keyed call through the
            # client lets redis-py learn the new slot owners; this call still answers 503.
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                await self.client.execute_command("EXISTS", key)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < replicas:
            raise Unavailable(
                f"the lock write reached {acked} of the {replicas} replicas required "
                "(locks.min_replicas) in time"
            )
        return reply

    def execute(self, *args: Any) -> Awaitable[Any]:
        """One command, batched with the others of this loop turn (one server, Sentinel)."""
        if self._batcher is not None:
            return self._batcher.submit(*args)
        return self.client.execute_command(*args)

    async def _note_primary(self) -> None:
        """After a reconnect: count a failover when the primary changed."""
        try:
            primary = await self.primary()
        except (RedisError, RedisClusterException, OSError):
            return
        if self._primary and primary != self._primary:
            self.failovers += 1
            log.warning("Redis primary changed: %s -> %s", self._primary, primary)
        self._primary = primary

    async def primary(self) -> str:
        """The node(s) written to: ``host:port`` of the primary, or of every Cluster primary."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()
            return ",".join(sorted(node.name for node in self.client.get_primaries()))
        if self._sentinel is not None:
            host, port = await self._sentinel.discover_master(self.target.service)
            return f"{host}:{port}"
        if self.target.path:
            return self.target.path
        host, port = self.target.nodes[0]
        return f"{host}:{port}"

    async def ping(self, what: str) -> None:
        """Readiness: Redis answers; also notes which primary it is (``describe``)."""
        await self.call(what, self.client.ping)
        await self._note_primary()

    def describe(self) -> dict[str, str]:
        """For ``/ready``: the topology and the node last used."""
        return {"topology": self.topology, "node": self._primary or "?"}

    async def close(self) -> None:
        await self.client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()
