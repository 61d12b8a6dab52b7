"""``GET /``: a status page for the operator who opens the server's address in a browser.

It shows the version, the storages and the lock store (each with the answer of the same checks
as ``/ready``), the editors with their discovery state, and links to the health endpoints and
the documentation. It shows no secret, no URL that could carry credentials (the lock store is
named by its scheme, editors by their discovery's origin) and no file name. ``/docs`` answers
the README that ships in the installed package's metadata.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from wopibridge import __version__
from wopibridge.apps.keys import DISCOVERY, EDITORS
from wopibridge.config import SETTINGS
from wopibridge.errors import NotFound
from wopibridge.ops.endpoints import run_checks
from wopibridge.storage.factory import STORAGES, lock_modes


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _lock_store(url: str) -> str:
    scheme = urlsplit(url).scheme
    return {"memory": "in process (memory://)"}.get(scheme, f"Redis ({scheme}://)")


async def status_page(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    checks = await run_checks(app)
    storages = []
    modes = lock_modes(app[STORAGES])
    for storage in app[STORAGES]:
        kind = str(settings.storages.get(storage.name, {}).get("type", "local"))
        storages.append(
            {
                "name": storage.name,
                "type": kind,
                "state": checks[f"storage:{storage.name}"],
                "locks": modes.get(storage.name, ""),
            }
        )
    discovery = app[DISCOVERY].status() if DISCOVERY in app else {}
    editors = []
    for editor in app[EDITORS]:
        table = settings.apps.get(editor.name, {})
        editors.append(
            {
                "name": editor.name,
                "type": str(table.get("type", editor.name)),
                "where": _origin(str(table.get("url") or table.get("discovery_url") or "")),
                "state": "bridged by wopibridge"
                if editor.bridged
                else discovery.get(editor.name.lower(), "not configured"),
            }
        )
    context: dict[str, Any] = {
        "version": __version__,
        "public_url": settings.server.public_url,
        "workers": settings.server.workers,
        "storages": storages,
        "locks": {"kind": _lock_store(settings.locks.url), "state": checks["locks"]},
        "editors": editors,
        "healthy": all(state == "ok" for state in checks.values()),
    }
    response = aiohttp_jinja2.render_template("status.html.j2", request, context)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def docs(request: web.Request) -> web.Response:
    """The README of the installed version (package metadata), as text."""
    try:
        text = metadata.metadata("wopibridge").get_payload()  # type: ignore[attr-defined]
    except metadata.PackageNotFoundError:
        text = ""
    if not text:
        raise NotFound("The documentation is not installed with this copy of wopibridge")
    return web.Response(text=str(text), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", status_page)
    app.router.add_get("/docs", docs)
