"""A small :class:`~wopibridge.security.proof.source.ProofKeySource`: ``<proof-key>`` from a
discovery URL.

Each configured app may name ``discovery_url`` in its ``[apps.<name>]`` table. The document is
fetched on first use, kept for ``ttl`` seconds, and refetched on demand (after a signature
failed) at most once every ``min_refresh`` seconds per app, so a rotated key is picked up
without a restart while a flood of forged requests cannot turn into a flood of fetches.

Only the proof key is read here. The full discovery cache (actions and ``urlsrc``) implements
the same protocol and replaces this source when it is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from wopibridge.errors import Unavailable
from wopibridge.security.proof.source import ProofKeyAttrs

log = logging.getLogger("wopibridge.proofkeys")

#: Discovery documents are small (Microsoft's, the largest, is about 100 kB).
MAX_DISCOVERY_BYTES = 4 * 1024 * 1024
_ATTRS = ("value", "modulus", "exponent", "oldvalue", "oldmodulus", "oldexponent")


def parse_proof_key(document: bytes) -> ProofKeyAttrs | None:
    """The ``<proof-key>`` attributes of a discovery document, ``None`` when it has none.

    The parser is expat through ElementTree, which does not resolve external entities.
    """
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise ValueError(f"discovery is not well-formed XML ({exc})") from None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "proof-key":
            return ProofKeyAttrs(**{name: element.get(name, "") for name in _ATTRS})
    return None


@dataclass
class _Entry:
    keys: ProofKeyAttrs | None
    fetched: float


class HttpProofKeySource:
    """Fetches and caches each app's ``<proof-key>``; see the module docstring."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        apps: Mapping[str, Mapping[str, Any]],
        *,
        ttl: float = 3600.0,
        min_refresh: float = 10.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._urls = {
            name.lower(): str(table["discovery_url"])
            for name, table in apps.items()
            if table.get("discovery_url")
        }
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._attempted: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def proof_keys(self, app: str, *, refresh: bool = False) -> ProofKeyAttrs | None:
        name = app.lower()
        url = self._urls.get(name)
        if url is None:
            return None
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            entry = self._cache.get(name)
            now = self._clock()
            attempted = self._attempted.get(name)
            recently_tried = attempted is not None and now - attempted < self._min_refresh
            if entry is not None and (
                recently_tried or (not refresh and now - entry.fetched < self._ttl)
            ):
                return entry.keys
            if entry is None and recently_tried:
                raise Unavailable("Discovery was unreachable moments ago")
            self._attempted[name] = now
            try:
                keys = await self._fetch(url)
            except Unavailable:
                if entry is not None and not refresh:
                    log.warning("discovery of %s unreachable, keeping cached keys", name)
                    return entry.keys
                raise
            self._cache[name] = _Entry(keys, now)
            log.info("proof keys of %s loaded from %s", name, url)
            return keys

    async def _fetch(self, url: str) -> ProofKeyAttrs | None:
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if response.status != 200:
                    raise Unavailable(f"Discovery answered {response.status}")
                body = await response.content.read(MAX_DISCOVERY_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"Discovery cannot be reached ({type(exc).__name__})") from None
        if len(body) > MAX_DISCOVERY_BYTES:
            raise Unavailable("Discovery document is too large")
        try:
            return parse_proof_key(body)
        except ValueError as exc:
            raise Unavailable(str(exc)) from None
