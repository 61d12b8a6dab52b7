"""Real Redis high-availability topologies from the ``redis-server`` binary, on free ports.

* :class:`SentinelSet`: one primary, two replicas and three sentinels watching it (failure
  detected after 1 s, so a failover takes a few seconds);
* :class:`ClusterSet`: a Cluster of three primaries with one replica each, created with
  ``redis-cli --cluster create`` (node timeout 1 s).

``start()`` returns only once the topology serves: the sentinels agree on the primary and know
each other and both replicas; every Cluster node reports ``cluster_state:ok``. ``stop()``
stops every process, including those a test killed and did not restart.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.support.procs import RedisServer, free_port, wait_for_port
from tests.support.requires import require_binary

SERVICE = "wopi"


def cli(port: int, *args: str, timeout: float = 5) -> str:
    """One ``redis-cli`` command against a local port; its output ('' when it failed)."""
    try:
        done = subprocess.run(
            [require_binary("redis-cli"), "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


def cluster_port() -> int:
    """A free port whose Cluster bus port (port + 10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout}s")


class Sentinel:
    """One ``redis-server <conf> --sentinel`` process."""

    def __init__(self, workdir: Path, primary_port: int) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 2\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [require_binary("redis-server"), str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None


class SentinelSet:
    def __init__(self, workdir: Path) -> None:
        self.primary = RedisServer(workdir / "primary")
        port = self.primary.port
        self.replicas = [
            RedisServer(workdir / f"replica{i}", ("--replicaof", "127.0.0.1", str(port)))
            for i in range(2)
        ]
        self.sentinels = [Sentinel(workdir / f"sentinel{i}", port) for i in range(3)]

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}"

    def primary_port(self, sentinel: Sentinel | None = None) -> int:
        """The primary's port as ``sentinel`` (the first) sees it (0 when it answers nothing)."""
        asked = sentinel or self.sentinels[0]
        out = cli(asked.port, "SENTINEL", "get-master-addr-by-name", SERVICE).split()
        return int(out[1]) if len(out) == 2 else 0

    def _settled(self) -> bool:
        for sentinel in self.sentinels:
            info = cli(sentinel.port, "INFO", "sentinel")
            if f"address=127.0.0.1:{self.primary_port()}" not in info:
                return False
            if "slaves=2" not in info or "sentinels=3" not in info:
                return False
        return True

    def start(self) -> None:
        for server in self.servers:
            server.workdir.mkdir(parents=True, exist_ok=True)
            server.start()
        for sentinel in self.sentinels:
            sentinel.start()
        _wait(self._settled, "sentinels agreeing on the primary and its replicas", 20)
        _wait(
            lambda: cli(self.primary.port, "INFO", "replication").count("state=online") == 2,
            "both replicas in sync",
            10,
        )

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary; return it (it stays down until restarted)."""
        port = self.primary_port()
        victim = next(s for s in self.servers if s.port == port)
        victim.kill()
        return victim

    def wait_failover(self, old_port: int, timeout: float = 30) -> None:
        _wait(lambda: self.primary_port() not in (0, old_port), "a new primary", timeout)

    def _serving(self) -> bool:
        """Every sentinel names the same primary, which answers as one with a replica online."""
        ports = {self.primary_port(sentinel) for sentinel in self.sentinels}
        if len(ports) != 1 or 0 in ports:
            return False
        info = cli(ports.pop(), "INFO", "replication")
        return "role:master" in info and "state=online" in info

    def wait_serving(self, timeout: float = 30) -> None:
        """Wait until the set serves writes that a replica acknowledges again (after a failover
        the sentinels may still disagree, or the promoted primary have no replica in sync)."""
        _wait(self._serving, "a primary every sentinel names, with a replica online", timeout)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()


class ClusterSet:
    def __init__(self, workdir: Path, primaries: int = 3, replicas: int = 1) -> None:
        self.replicas_per_primary = replicas
        self.nodes = []
        for i in range(primaries * (1 + replicas)):
            node_dir = workdir / f"node{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            node = RedisServer(
                node_dir,
                (
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout",
                    "1000",
                ),
            )
            node.port = cluster_port()
            self.nodes.append(node)

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def _ok(self, nodes: list[RedisServer]) -> bool:
        return all("cluster_state:ok" in cli(n.port, "CLUSTER", "INFO") for n in nodes)

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [
                require_binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_primary),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}")
        _wait(lambda: self._ok(self.nodes), "cluster_state:ok on every node", 30)
        _wait(self._replicas_synced, "every replica in sync", 15)

    def _replicas_synced(self) -> bool:
        return all(
            "master_link_status:up" in info
            for info in (cli(n.port, "INFO", "replication") for n in self.nodes)
            if "role:slave" in info
        )

    def primary_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        slot = int(cli(self.live()[0].port, "CLUSTER", "KEYSLOT", key).strip())
        for line in cli(self.live()[0].port, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no primary serves slot {slot}")

    def wait_failover(self, key: str, old: RedisServer, timeout: float = 30) -> None:
        """Wait until another node serves ``key`` (the replica of ``old`` was promoted)."""

        def moved() -> bool:
            try:
                return self.primary_of(key) is not old and self._ok(self.live())
            except (LookupError, ValueError):
                return False

        _wait(moved, "a promoted replica serving the slot", timeout)

    def rejoin(self, node: RedisServer, timeout: float = 30) -> None:
        """Restart a killed node (as Kubernetes reschedules a pod): it comes back as a replica
        of the primary that replaced it."""
        node.start()
        _wait(
            lambda: "master_link_status:up" in cli(node.port, "INFO", "replication"),
            "the restarted node replicating",
            timeout,
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
