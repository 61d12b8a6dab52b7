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
from weakref import WeakSet

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from wopibridge.config.redisurl import RedisTarget, parse_lock_url
from wopibridge.errors import Unavailable
from wopibridge.instruments import Instruments
from wopibridge.locks.pipeline import Pipeline

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


def _track_cluster_connections(cluster: RedisCluster, opened: WeakSet[Connection]) -> None:
    """Make every connection the Cluster client opens join ``opened``.

    redis-py drops the node objects of a failed node when it learns the new slot owners,
    and with them connections it never closed; :meth:`RedisConnection.close` closes those.
    """
    base: type[Connection] = cluster.connection_kwargs.get("connection_class", Connection)

    class Tracked(base):  # type: ignore[valid-type,misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            opened.add(self)

    cluster.connection_kwargs["connection_class"] = Tracked
    for node in cluster.nodes_manager.startup_nodes.values():
        node.connection_class = Tracked


def _build(target: RedisTarget, timeout: float) -> tuple[Client, Sentinel | None]:
    # No socket_timeout on data connections (redis-py 8 sets 5 s unless told): redis-py would
    # wrap every read in a timer and every write in a task of its own, which costs more than the
    # call, and would break the pipeline's idle reader; RedisConnection.call and the pipeline's
    # deadlines bound each call instead.
    common: dict[str, Any] = {
        "socket_timeout": None,
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
        sentinel = Sentinel(
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


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call nobody waits for any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()


class RedisConnection:
    def __init__(
        self, target: RedisTarget, timeout: float = 3.0, instruments: Instruments | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.client, self._sentinel = _build(target, timeout)
        self._opened: WeakSet[Connection] = WeakSet()
        if isinstance(self.client, RedisCluster):
            _track_cluster_connections(self.client, self._opened)
        self._pipeline = (
            None if isinstance(self.client, RedisCluster) else Pipeline(self.client, timeout)
        )
        self.reconnects = 0
        self.failovers = 0
        # the /metrics counters of the app's lock store (other clients count nothing)
        self._counted = (
            (
                instruments.redis_reconnects.labels(target.topology),
                instruments.redis_failovers.labels(target.topology),
            )
            if instruments is not None
            else None
        )
        self._failing = False
        self._primary = ""
        self._tasks: set[asyncio.Future[None]] = set()

    @property
    def topology(self) -> str:
        return self.target.topology

    @classmethod
    def from_url(cls, url: str, timeout: float = 3.0) -> RedisConnection:
        return cls(parse_lock_url(url), timeout)

    async def call(
        self, what: str, make: Callable[[], Awaitable[T]], within: float | None = None
    ) -> T:
        """Run one client call within the timeout; failures to reach Redis become 503.

        On timeout the call is left to finish in the background rather than cancelled: a
        redis-py call cancelled while it connects can drop a half-open connection, and the
        next call on a live Redis should not pay for the dead one. Background calls end when
        Redis answers or their connection breaks (TCP keepalive finds dead peers).
        """
        awaitable = make()
        try:
            if isinstance(awaitable, asyncio.Future):  # from the pipeline, which bounds it
                result: T = await awaitable
            else:
                future = asyncio.ensure_future(awaitable)
                future.add_done_callback(_consume)  # whoever stops waiting, timeout or not
                done, _ = await asyncio.wait((future,), timeout=within or self.timeout)
                if not done:
                    raise TimeoutError
                result = future.result()
        except TimeoutError:
            self._failing = True
            raise Unavailable(f"{what} (Redis) did not answer within {self.timeout:g} s") from None
        except (NoScriptError, Unavailable):
            raise
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failing = True
            raise Unavailable(f"{what} is unavailable", detail=f"Redis: {exc}") from None
        except Exception as exc:  # the client tripped over a topology change: still a 503
            log.warning("unexpected failure in the Redis client: %r", exc, exc_info=exc)
            self._failing = True
            raise Unavailable(f"{what} is unavailable", detail=f"Redis: {exc!r}") from None
        if self._failing:
            self._failing = False
            self.reconnects += 1
            if self._counted is not None:
                self._counted[0].inc()
            # off the request path: finding the primary may wait on a node still going down
            task = asyncio.ensure_future(self._note_primary())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
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
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await self.call(what, lambda: self._run(script, False, keys, args, replicas))
        except NoScriptError:  # the primary lost its script cache: send the source once
            # within what is left of the timeout, so the request still answers in time
            left = self.timeout - (loop.time() - started)
            return await self.call(
                what, lambda: self._run(script, True, keys, args, replicas), max(left, 0.001)
            )

    def _run(
        self, script: Script, source: bool, keys: Sequence[str], args: Sequence[Any], replicas: int
    ) -> Awaitable[Any]:
        code = ("EVAL", script.source) if source else ("EVALSHA", script.sha)
        command = (*code, len(keys), *keys, *args)
        if replicas:
            return self._acked(command, keys[0], replicas)
        if source:  # rare: not pipelined, so that call() bounds it by what time is left
            return self.client.execute_command(*command)
        return self.execute(*command)

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
        demoted = isinstance(acked, Exception) and "replica" in str(acked).lower()
        if demoted and not isinstance(self.client, RedisCluster):
            # The node this pool writes to was demoted (a second failover) and answers WAIT
            # with an error instead of READONLY, which would have made redis-py look for the
            # primary again: drop its connections so that the next call does.
            await self.client.connection_pool.disconnect()
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
        """One command, pipelined with the others on one connection (one server, Sentinel)."""
        if self._pipeline is not None:
            return self._pipeline.submit(*args)
        return self.client.execute_command(*args)

    async def _note_primary(self) -> None:
        """After a reconnect: count a failover when the primary changed."""
        try:
            primary = await self.primary()
        except Exception as exc:  # bookkeeping only: the next reconnect looks again
            log.debug("could not tell the Redis primary: %r", exc)
            return
        if self._primary and primary != self._primary:
            self.failovers += 1
            if self._counted is not None:
                self._counted[1].inc()
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
        if self._tasks:  # let them end (a cancelled redis-py connect leaves its socket open)
            _, late = await asyncio.wait(self._tasks, timeout=self.timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._pipeline is not None:
            await self._pipeline.close()
        await self.client.aclose()
        for connection in list(self._opened):
            await connection.disconnect()
        if self._sentinel is not None:
            await self._sentinel.aclose()
