"""``wopibridge serve``: settings → logging → app → listening socket.

Every message of ``serve``, a refused start included, is a log record on stderr in
``server.log_format`` (json when the settings themselves cannot be read).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from wopibridge.config import SCHEMA, ConfigError, Settings, load_settings
from wopibridge.ops.logs import configure_logging
from wopibridge.ops.workers import serve_workers
from wopibridge.validator import cli as validator_cli


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if args.host:
        overrides.setdefault("server", {})["host"] = args.host
    if args.port:
        overrides.setdefault("server", {})["port"] = args.port
    return load_settings(args.config, overrides=overrides)


def serve(args: argparse.Namespace) -> int:
    from wopibridge.app import create_app

    log = logging.getLogger("wopibridge")
    try:
        settings = _settings(args)
    except ConfigError as exc:
        configure_logging("INFO", SCHEMA["server"]["log_format"].default)
        log.error("%s", exc, extra={"key": exc.key})
        return 2
    server = settings.server
    configure_logging(server.log_level, server.log_format, process=server.workers > 1)
    log.info(
        "listening on http://%s:%d (public URL %s)",
        server.host,
        server.port,
        server.public_url,
    )
    try:
        if server.workers > 1:
            return serve_workers(settings, lambda: create_app(settings))
        web.run_app(
            create_app(settings),
            host=server.host,
            port=server.port,
            access_log=None,
            print=None,
        )
    except ConfigError as exc:
        log.error("%s", exc, extra={"key": exc.key})
        return 2
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", server.host, server.port, exc.strerror)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wopibridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the WOPI server")
    run.add_argument("--config", type=Path, help="TOML settings file")
    run.add_argument("--host", help="address to listen on (server.host)")
    run.add_argument("--port", type=int, help="port to listen on (server.port)")
    run.set_defaults(func=serve)
    validator_cli.add_parser(commands).set_defaults(func=validator_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
