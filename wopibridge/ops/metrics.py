"""Request counters and durations, exposed in the Prometheus text format at ``/metrics``.

With several worker processes each counts its own requests; :meth:`Metrics.snapshot` and
:meth:`Metrics.combined` let one worker answer for all of them (see :mod:`.workers`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

Snapshot = dict[str, Any]


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.counts: Counter[str] = Counter()
        self.kept_dropped: Counter[str] = Counter()

    def observe(self, operation: str, status: int, seconds: float) -> None:
        self.requests[(operation, status)] += 1
        self.seconds[operation] += seconds
        self.counts[operation] += 1

    def count_kept_dropped(self, reason: str) -> None:
        """A refused save was not kept, or a kept copy was removed (``duplicate``, ``quota``,
        ``expired``, ``disk_full``)."""
        self.kept_dropped[reason] += 1

    def snapshot(self) -> Snapshot:
        """The counters as plain JSON-ready data."""
        return {
            "requests": [[op, status, n] for (op, status), n in self.requests.items()],
            "seconds": dict(self.seconds),
            "counts": dict(self.counts),
            "kept_dropped": dict(self.kept_dropped),
        }

    @classmethod
    def combined(cls, snapshots: Iterable[Snapshot]) -> Metrics:
        """The sum of several processes' counters."""
        total = cls()
        for snap in snapshots:
            for op, status, n in snap["requests"]:
                total.requests[(str(op), int(status))] += int(n)
            for op, seconds in snap["seconds"].items():
                total.seconds[op] += float(seconds)
            for op, n in snap["counts"].items():
                total.counts[op] += int(n)
            for reason, n in snap.get("kept_dropped", {}).items():
                total.kept_dropped[str(reason)] += int(n)
        return total

    def render(self) -> str:
        lines = [
            "# HELP wopibridge_requests_total Requests answered, by operation and status.",
            "# TYPE wopibridge_requests_total counter",
        ]
        for (operation, status), count in sorted(self.requests.items()):
            lines.append(
                f'wopibridge_requests_total{{operation="{operation}",status="{status}"}} {count}'
            )
        lines += [
            "# HELP wopibridge_request_duration_seconds Time spent answering, by operation.",
            "# TYPE wopibridge_request_duration_seconds summary",
        ]
        for operation in sorted(self.counts):
            label = f'{{operation="{operation}"}}'
            lines.append(
                f"wopibridge_request_duration_seconds_sum{label} {self.seconds[operation]:.6f}"
            )
            lines.append(
                f"wopibridge_request_duration_seconds_count{label} {self.counts[operation]}"
            )
        lines += [
            "# HELP wopibridge_kept_copies_dropped_total Refused saves not kept, and kept copies"
            " removed, by reason.",
            "# TYPE wopibridge_kept_copies_dropped_total counter",
        ]
        for reason, count in sorted(self.kept_dropped.items()):
            lines.append(f'wopibridge_kept_copies_dropped_total{{reason="{reason}"}} {count}')
        return "\n".join(lines) + "\n"
