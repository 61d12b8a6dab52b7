"""The collaborative-editing bridge: CodiMD and Etherpad edit mesh files through wopibridge.

``setup_bridge(app)`` is all the foundation calls: it builds the bridged editors named in the
``[apps.<name>]`` tables (``kind = "etherpad"`` or ``"codimd"``, or a table simply named so),
adds the routes, and appends a cleanup context that opens the bridge state store (in-process
or Redis, following ``locks.url``), the editors' HTTP client session and the save loop, and on
shutdown saves what this instance holds and hands its documents to the other instances.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["setup_bridge"]


def setup_bridge(app: web.Application) -> None:
    """Add the bridge to ``app`` (call from ``create_app`` after the foundation's resources)."""
    # Imported here: the editor clients import the bridge's leaf modules, so the package
    # itself must not import them at load time.
    from wopibridge.bridge.setup import setup_bridge as setup

    setup(app)
