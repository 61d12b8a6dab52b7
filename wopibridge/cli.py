"""The ``wopibridge`` command: ``serve`` (settings → logging → checked app → bound socket) and
``validate``.

``serve`` starts the application before it claims the port, so a bad setting is reported as
one line naming its key, a port in use as "cannot listen", and "listening on" is logged only
once the socket is bound: what the operator reads is what happened. Every message of
``serve``, a refused start included, is a log record on stderr in ``server.log_format`` (json
when the settings themselves cannot be read).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from wopibridge import __version__
from wopibridge.config import SCHEMA, ConfigError, Settings, load_settings
from wopibridge.ops import eventloop
from wopibridge.ops.logs import configure_logging
from wopibridge.ops.shutdown import ListenError, run_app
from wopibridge.ops.workers import serve_workers
from wopibridge.validator import cli as validator_cli

DESCRIPTION = (
    "A WOPI host for research and education clouds: office editors (Collabora, OnlyOffice, "
    "Microsoft 365) and collaborative editors (Etherpad, CodiMD) on local, WebDAV and CS3 "
    "storage, opened from Reva's openinapp or any web UI."
)
SERVE_EPILOG = """\
Every setting of the TOML file can also be given by an environment variable
WOPIBRIDGE_<SECTION>_<KEY>, which wins over the file (--host and --port win over both), e.g.
  WOPIBRIDGE_SERVER_PORT=8880  WOPIBRIDGE_LOCKS_URL=redis://127.0.0.1:6379/0
  WOPIBRIDGE_STORAGE_ROOT=/srv/files  WOPIBRIDGE_SECURITY_IOP_SECRET_FILE=/etc/wopi/iop
Named tables: WOPIBRIDGE_APPS_<NAME>_<KEY> and WOPIBRIDGE_STORAGES_<NAME>_<KEY>.
A WOPIBRIDGE_* variable that names no setting is refused. Relative paths in the file are
relative to the file's folder. Without a file: files in ./data, secrets in ./state,
listening on 127.0.0.1:8880."""

log = logging.getLogger("wopibridge")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if args.host:
        overrides.setdefault("server", {})["host"] = args.host
    if args.port:
        overrides.setdefault("server", {})["port"] = args.port
    return load_settings(args.config, overrides=overrides)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ConfigError as exc:
        configure_logging("INFO", SCHEMA["server"]["log_format"].default)
        _refused(exc)
        return 2
    server = settings.server
    configure_logging(server.log_level, server.log_format, process=server.workers > 1)
    if server.workers > 1:
        from wopibridge.app import create_app

        try:
            return serve_workers(settings, lambda: create_app(settings))
        except ConfigError as exc:
            _refused(exc)
            return 2
        except OSError as exc:
            log.error("%s", _listen_problem(settings, exc))
            return 1
    return eventloop.run(_serve_one(settings), server.event_loop)


def _refused(exc: ConfigError) -> None:
    log.error("%s", exc, extra={"key": exc.key})


def _listen_problem(settings: Settings, exc: OSError) -> str:
    where = f"{settings.server.host}:{settings.server.port}"
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"cannot listen on {where}: {reason}"


async def _serve_one(settings: Settings) -> int:
    """One process: start the app (every setting checked, every resource opened), bind, log,
    serve until SIGINT/SIGTERM, then stop gracefully (:mod:`wopibridge.ops.shutdown`)."""
    from wopibridge.app import create_app

    try:
        app = create_app(settings)
        await run_app(app, settings.server, on_listen=lambda: _listening(settings))
    except ConfigError as exc:
        _refused(exc)
        return 2
    except ListenError as exc:
        log.error("%s", _listen_problem(settings, exc))
        return 1
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        log.error("cannot start: %s%s", exc.strerror or exc, name)
        return 1
    log.info("stopped")
    return 0


def _listening(settings: Settings) -> None:
    log.info(
        "listening on http://%s:%d (public URL %s, event loop %s)",
        settings.server.host,
        settings.server.port,
        settings.server.public_url,
        eventloop.running_loop_name(),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wopibridge", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"wopibridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "serve",
        help="run the WOPI server",
        description="Run the WOPI server.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", type=Path, help="TOML settings file")
    run.add_argument("--host", help="address to listen on (server.host)")
    run.add_argument("--port", type=int, help="port to listen on (server.port)")
    run.set_defaults(func=serve)
    validator_cli.add_parser(commands).set_defaults(func=validator_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``wopibridge validate --list | head``): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
