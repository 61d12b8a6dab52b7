"""The Redis client's counters for ``/metrics``: reconnects and failovers this process saw.

Kept apart from :mod:`.metrics` (request counters) on purpose: it reads two integers off the
one Redis client (:class:`wopibridge.locks.client.RedisConnection`) and renders them in the
Prometheus text format, nothing else. With several worker processes each worker has its own
client, so the figures are those of the worker that answers.
"""

from __future__ import annotations

from wopibridge.locks.client import RedisConnection


def render_redis(redis: RedisConnection | None) -> str:
    if redis is None:
        return ""
    label = f'{{topology="{redis.topology}"}}'
    return (
        "\n".join(
            [
                "# HELP wopibridge_redis_reconnects_total Redis calls that succeeded after calls "
                "had failed to reach Redis.",
                "# TYPE wopibridge_redis_reconnects_total counter",
                f"wopibridge_redis_reconnects_total{label} {redis.reconnects}",
                "# HELP wopibridge_redis_failovers_total Times the Redis primary in use changed.",
                "# TYPE wopibridge_redis_failovers_total counter",
                f"wopibridge_redis_failovers_total{label} {redis.failovers}",
            ]
        )
        + "\n"
    )
