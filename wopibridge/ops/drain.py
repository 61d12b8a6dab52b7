"""The drain: the time between SIGTERM and the moment an instance stops accepting.

A load balancer or Kubernetes only stops sending requests to an instance after its readiness
check fails, and that takes a probe interval or two. So a stopping instance first says it is
going (``/ready`` answers 503) while it still answers everything, for ``server.drain_seconds``.
Its answers meanwhile carry ``Connection: close``, so that clients holding a keep-alive
connection open a new one, which the balancer sends elsewhere.
"""

from __future__ import annotations

import time

from aiohttp import hdrs, web


class Drain:
    """Whether this instance is draining, and since when (``time.monotonic``)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        if self.since is None:
            self.since = time.monotonic()


DRAIN: web.AppKey[Drain] = web.AppKey("drain", Drain)


async def _close_while_draining(request: web.Request, response: web.StreamResponse) -> None:
    if request.app[DRAIN].draining:
        # The headers are already prepared when this signal runs: say it, and do it.
        response.headers[hdrs.CONNECTION] = "close"
        response.force_close()


def setup_drain(app: web.Application) -> None:
    app[DRAIN] = Drain()
    app.on_response_prepare.append(_close_while_draining)
