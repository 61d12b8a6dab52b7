"""A rate-limited log of refused shared-secret attempts, naming the peer.

A wrong iop secret is either a misconfigured web UI or someone guessing. Either way an operator
wants to know, and who: but a guesser sending thousands of requests a second must not flood
the log. The first failure from a peer is logged at once; after that at most one line per
``interval`` seconds sums up how many failures came from which peers meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger("wopibridge.security")

#: Peers remembered between two summary lines; past this, the rest is only counted.
MAX_PEERS = 1000


class FailureLog:
    def __init__(self, what: str, interval: float = 10.0) -> None:
        self.what = what
        self.interval = interval
        self.total = 0
        self._seen: set[str] = set()
        self._pending: Counter[str] = Counter()
        self._other = 0
        self._next_summary = 0.0

    def record(self, peer: str | None) -> None:
        """Count one failure from ``peer`` and log now or later, never more than the rate."""
        peer = peer or "unknown"
        self.total += 1
        now = time.monotonic()
        if peer not in self._seen and len(self._seen) < MAX_PEERS:
            self._seen.add(peer)
            log.warning("%s from %s refused", self.what, peer)
            self._next_summary = max(self._next_summary, now + self.interval)
            return
        if len(self._pending) < MAX_PEERS or peer in self._pending:
            self._pending[peer] += 1
        else:
            self._other += 1
        if now >= self._next_summary:
            self._flush(now)

    def _flush(self, now: float) -> None:
        top = ", ".join(f"{peer} ({count})" for peer, count in self._pending.most_common(5))
        count = sum(self._pending.values()) + self._other
        log.warning(
            "%s refused %d more times from %d peers: %s (%d in all since start)",
            self.what,
            count,
            len(self._pending) + (1 if self._other else 0),
            top or "-",
            self.total,
        )
        self._pending.clear()
        self._other = 0
        self._next_summary = now + self.interval
