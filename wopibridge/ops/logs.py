"""Where log lines go and how they look: ``server.log_format`` ``json`` (default) or ``text``.

In ``json``, every line written to stderr is one JSON object: ``time``, ``level``, ``logger``,
``message`` and the record's fields (the access log's ``op``, ``status``, ``trace_id``...;
``process`` with several workers; ``exc_info`` with a traceback). aiohttp's own records, the
warnings module and uncaught exceptions go through the same handler, so a log pipeline never
meets a line it cannot parse.

The access log writes a line per request, so its cost is the server's cost
(``bench/observability_bench.py``). Three things keep it small:

- the access log's lines do not go through a LogRecord when this module's handler is
  installed: :meth:`StderrHandler.write_line` formats them directly, in the same shape;
- the formatter is a few lines over the C JSON encoder, with the time string made once per
  second; python-json-logger, tried first, took twice as long per record;
- the logging module's documented optimisations: no caller lookup, no thread or process-name
  lookups (``process`` is kept when there are several workers);
- access lines are written to a buffer flushed by the event loop a moment later (50 ms), not
  one write per line; every other record is written at once (with the access lines before it),
  and the buffer is flushed at exit.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

from aiohttp.http_exceptions import HttpProcessingError

FORMATS = ("json", "text")
FLUSH_DELAY = 0.05

#: Attributes every LogRecord has: anything else on a record is a field of its own.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields."""

    def __init__(self, process: bool = False) -> None:
        super().__init__()
        self._process = process
        self.encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        self._second = -1
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(second))
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._process:
            data["process"] = record.process
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                data[key] = value
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return self.encode(data)


def formatter(log_format: str, process: bool = False) -> logging.Formatter:
    if log_format == "text":
        pid = "[%(process)d]" if process else ""
        return logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{pid} %(message)s")
    return JsonFormatter(process)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes records to stderr at once, and access lines through a buffer that the running
    event loop flushes shortly after."""

    def __init__(self, log_format: str = "json", process: bool = False) -> None:
        stream = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "w", closefd=False), 1 << 16),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=False,
        )
        super().__init__(stream)
        self.setFormatter(formatter(log_format, process))
        self._json = log_format == "json"
        self._process = os.getpid() if process else 0
        self._json_format = JsonFormatter()
        self._pending: asyncio.TimerHandle | None = None
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()

    def write_line(self, logger: str, message: str, fields: dict[str, Any]) -> None:
        """An INFO line of ``logger`` with ``fields``, as :meth:`format` would write its record,
        without making one (the access log's line per request)."""
        now = time.time()
        if self._json:
            data: dict[str, Any] = {
                "time": self._json_format.timestamp(now),
                "level": "INFO",
                "logger": logger,
                "message": message,
            }
            if self._process:
                data["process"] = os.getpid()
            data.update(fields)
            line = self._json_format.encode(data)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            pid = f"[{os.getpid()}]" if self._process else ""
            line = f"{stamp},{int(now % 1 * 1000):03d} INFO {logger}{pid} {message}"
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(line + "\n")
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Flush within :data:`FLUSH_DELAY` when an event loop runs in this thread (a forked
        worker starts afresh), at once otherwise."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._pending = self._pending_loop = None
            self.flush_now()
            return
        if self._pending is not None and self._pending_loop is loop:
            return  # already scheduled
        self._pending_loop = loop
        self._pending = loop.call_later(FLUSH_DELAY, self._scheduled)

    def flush(self) -> None:
        """Every record is written at once (with the access lines buffered before it)."""
        self.flush_now()

    def _scheduled(self) -> None:
        self._pending = self._pending_loop = None
        self.flush_now()

    def flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.stream and not self.stream.closed:
                self.stream.flush()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self.flush_now()
        super().close()


def configure_logging(level: str, log_format: str = "json", process: bool = False) -> None:
    """One stderr handler on the root logger, replacing any other, in ``log_format``."""
    logging._srcfile = None  # no caller lookup (the logging HOWTO's "Optimization")
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logProcesses = process
    handler = StderrHandler(log_format, process)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    access = logging.getLogger("wopibridge.access")  # its lines skip the LogRecord
    access.handlers = [handler]
    access.propagate = False
    logging.captureWarnings(True)
    quiet_malformed_requests()
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("wopibridge").critical("uncaught exception", exc_info=(kind, exc, tb))


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a request line over the size limit, a broken
    header) at ERROR with a traceback and the first bytes of the offending line, which may
    start an access token. Anyone can send such a request, so it is the client's fault, not
    the server's: the record becomes one WARNING line naming the error class, nothing more.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "malformed request from %s refused (%s, HTTP %d)"
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.args = (peer, type(exc).__name__, exc.code)
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequestFilter` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())
