"""``wopibridge serve``: settings → app → listening socket."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from wopibridge.config import ConfigError, Settings, load_settings
from wopibridge.ops.accesslog import quiet_malformed_requests
from wopibridge.ops.server import run
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

    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"wopibridge: {exc}", file=sys.stderr)
        return 2
    process = "[%(process)d]" if settings.server.workers > 1 else ""
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{process} %(message)s",
    )
    quiet_malformed_requests()
    log = logging.getLogger("wopibridge")
    log.info(
        "listening on http://%s:%d (public URL %s)",
        settings.server.host,
        settings.server.port,
        settings.server.public_url,
    )
    try:
        if settings.server.workers > 1:
            return serve_workers(settings, lambda: create_app(settings))
        run(
            create_app(settings),
            host=settings.server.host,
            port=settings.server.port,
            header_timeout=settings.server.header_timeout,
            read_timeout=settings.server.read_timeout,
        )
    except ConfigError as exc:
        print(f"wopibridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"wopibridge: cannot listen on {settings.server.host}:{settings.server.port}: "
            f"{exc.strerror}",
            file=sys.stderr,
        )
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
