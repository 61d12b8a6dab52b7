"""``locks.url``: which Redis topology holds the locks and the bridge state, parsed once.

Part of the settings (which validate the value with it), and read again by the lock layer,
which builds its client from the same parsed form without re-reading the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

LOCK_URL_FORMS = (
    "memory://, redis://[user:password@]host:port/db, rediss://..., unix:///path?db=N, "
    "redis+sentinel://[user:password@]host:port[,host:port...]/service[/db] or "
    "redis+cluster://[user:password@]host:port[,host:port...]"
)


@dataclass(frozen=True)
class RedisTarget:
    """Where the locks and the bridge state live, read from ``locks.url``.

    ``topology`` is ``memory``, ``redis`` (one server: TCP, TLS or a Unix socket), ``sentinel``
    (``nodes`` are the sentinels, ``service`` the monitored primary's name) or ``cluster``
    (``nodes`` are seed nodes; the others are discovered).
    """

    topology: str
    nodes: tuple[tuple[str, int], ...] = ()
    path: str = ""
    service: str = ""
    db: int = 0
    username: str = ""
    password: str = ""
    tls: bool = False


def _nodes(netloc: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in netloc.split(","):
        host, sep, port_text = item.strip().rpartition(":")
        if not sep:
            host, port_text = port_text, "6379"
        host = host.strip("[]")
        if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{item!r} is not host:port; expected {LOCK_URL_FORMS}")
        nodes.append((host, int(port_text)))
    return tuple(nodes)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database {text!r} must be a number")
    return int(text)


def parse_lock_url(url: str) -> RedisTarget:
    """Parse ``locks.url``; a ``ValueError`` says what is wrong in one line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"expected one of {LOCK_URL_FORMS}")
    scheme = scheme.lower()
    if scheme == "memory":
        return RedisTarget("memory")
    if scheme == "unix":
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if not parts.path:
            raise ValueError("unix:// needs the socket path, e.g. unix:///run/redis.sock?db=0")
        return RedisTarget(
            "redis",
            path=parts.path,
            db=_db(query.get("db", ["0"])[0]),
            username=unquote(parts.username or ""),
            password=unquote(parts.password or query.get("password", [""])[0]),
        )
    kind = {
        "redis": "redis",
        "rediss": "redis",
        "redis+sentinel": "sentinel",
        "rediss+sentinel": "sentinel",
        "redis+cluster": "cluster",
        "rediss+cluster": "cluster",
    }.get(scheme)
    if kind is None:
        raise ValueError(f"unknown scheme {scheme}://; expected {LOCK_URL_FORMS}")
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    if not hosts:
        raise ValueError(f"no host in {scheme}://; expected {LOCK_URL_FORMS}")
    nodes = _nodes(hosts)
    segments = [s for s in path.split("/") if s]
    service, db = "", 0
    if kind == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError(f"{scheme}:// needs /<service>[/<db>] after the sentinels")
        service = unquote(segments[0])
        db = _db(segments[1]) if len(segments) == 2 else 0
    elif kind == "cluster":
        if segments and segments != ["0"]:
            raise ValueError("a Redis Cluster has only database 0: drop the path")
    else:
        if len(nodes) > 1:
            raise ValueError(f"{scheme}:// takes one host; use redis+sentinel:// for several")
        if len(segments) > 1:
            raise ValueError(f"expected {scheme}://host:port/<db>")
        db = _db(segments[0]) if segments else 0
    return RedisTarget(
        kind,
        nodes=nodes,
        service=service,
        db=db,
        username=unquote(username),
        password=unquote(password),
        tls=scheme.startswith("rediss"),
    )


#: ``locks.min_replicas = "auto"``: replicas that must hold a lock write before it is answered.
DEFAULT_MIN_REPLICAS = {"memory": 0, "redis": 0, "sentinel": 1, "cluster": 1}
