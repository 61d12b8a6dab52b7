"""Where log lines go and how they look: ``server.log_format`` ``json`` (default) or ``text``.

In ``json``, every line written to stderr is one JSON object: ``time``, ``level``, ``logger``,
``message`` and the record's fields (the access log's ``op``, ``status``, ``trace_id``...;
``process`` with several workers; ``exc_info`` with a traceback). aiohttp's own records, the
warnings module and uncaught exceptions go through the same handler, so a log pipeline never
meets a line it cannot parse. The formatter is python-json-logger's.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from pythonjsonlogger.json import JsonFormatter

from wopibridge.ops.accesslog import quiet_malformed_requests

FORMATS = ("json", "text")


def formatter(log_format: str, process: bool = False) -> logging.Formatter:
    if log_format == "text":
        pid = "[%(process)d]" if process else ""
        return logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{pid} %(message)s")
    fields = ["asctime", "levelname", "name", "message"] + (["process"] if process else [])
    return JsonFormatter(
        fields,
        style="%",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def configure_logging(level: str, log_format: str = "json", process: bool = False) -> None:
    """One stderr handler on the root logger, replacing any other, in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    quiet_malformed_requests()
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("wopibridge").critical("uncaught exception", exc_info=(kind, exc, tb))
