"""Where log lines go and how they look: ``server.log_format`` ``json`` (default) or ``text``.

In ``json``, every line written to stderr is one JSON object: ``time``, ``level``, ``logger``,
``message`` and the record's fields (the access log's ``op``, ``status``, ``trace_id``...;
``process`` with several workers; ``exc_info`` with a traceback). aiohttp's own records, the
warnings module and uncaught exceptions go through the same handler, so a log pipeline never
meets a line it cannot parse.

The access log writes a line per request, so its cost is the server's cost
(``bench/observability_bench.py``; the figures are in the README's "Operations"). What keeps
it small:

- the access log's lines do not go through a LogRecord when this module's handler is
  installed: :meth:`StderrHandler.write_line` formats them directly, in the same shape;
- JSON is encoded by :func:`wopibridge.jsonio.dumps` (orjson: 0.27 us an access line, against
  3.0 us with the standard library's encoder; python-json-logger, tried first, took twice as
  long as the standard encoder);
- the time string is made once per second, and the logging module's documented optimisations
  are on: no caller lookup, no thread or process-name lookups (``process`` is kept when there
  are several workers);
- access lines are queued as bytes and written together by the event loop a moment later
  (:data:`FLUSH_DELAY`), not one write per line; every other record is written at once, after
  the access lines queued before it, and the queue is written at exit.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import os
import sys
import time
import weakref
from types import TracebackType
from typing import Any, TextIO

from aiohttp.http_exceptions import HttpProcessingError

from wopibridge.jsonio import dumps

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
        return dumps(data).decode("utf-8")


def formatter(log_format: str, process: bool = False) -> logging.Formatter:
    if log_format == "text":
        pid = "[%(process)d]" if process else ""
        return logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{pid} %(message)s")
    return JsonFormatter(process)


#: Every live handler, so that a forked child can drop the lines its parent queued.
_HANDLERS: weakref.WeakSet[StderrHandler] = weakref.WeakSet()


def _after_fork() -> None:
    for handler in list(_HANDLERS):
        handler.forget_queue()


os.register_at_fork(after_in_child=_after_fork)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes records to stderr at once, and access lines through a queue that the running
    event loop writes out shortly after."""

    def __init__(self, log_format: str = "json", process: bool = False) -> None:
        # write-through text: a record reaches the byte buffer at once, so that the queued
        # access lines written to that buffer keep their place before or after it
        stream = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "w", closefd=False), 1 << 16),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )
        super().__init__(stream)
        self.setFormatter(formatter(log_format, process))
        self._json = log_format == "json"
        self._process = process
        self._json_format = JsonFormatter()
        # deque: append and popleft are atomic, so a line is never lost between threads
        self._queue: collections.deque[bytes] = collections.deque()
        self._pending: asyncio.TimerHandle | None = None
        self._pending_loop: asyncio.AbstractEventLoop | None = None
        _HANDLERS.add(self)

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
            line = dumps(data) + b"\n"
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            pid = f"[{os.getpid()}]" if self._process else ""
            text = f"{stamp},{int(now % 1 * 1000):03d} INFO {logger}{pid} {message}\n"
            line = text.encode("utf-8", "backslashreplace")
        self._queue.append(line)
        # asyncio.get_running_loop() makes a getpid() system call: only when nothing is pending
        pending = self._pending_loop
        if pending is None or pending.is_closed():
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            self._flush_soon(loop)

    def _flush_soon(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write the queue within :data:`FLUSH_DELAY` on ``loop``, at once without one."""
        if loop is None:
            self.flush_now()
            return
        with self.lock:  # type: ignore[union-attr]
            if self._pending is not None:
                self._pending.cancel()  # a timer of another loop, which may never run again
            self._pending_loop = loop
            self._pending = loop.call_later(FLUSH_DELAY, self._scheduled)

    def _scheduled(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending = self._pending_loop = None
        self.flush_now()

    def forget_queue(self) -> None:
        """In a forked child: the queued lines are the parent's to write, the timer its loop's."""
        self._queue.clear()
        self._pending = self._pending_loop = None

    def _write_queue(self) -> None:
        """The queued lines, to the byte buffer (under the handler's lock)."""
        queue = self._queue
        if queue and self.stream and not self.stream.closed:
            lines = [queue.popleft() for _ in range(len(queue))]
            self.stream.buffer.write(b"".join(lines))

    def emit(self, record: logging.LogRecord) -> None:
        """A record goes out at once, after the access lines queued before it."""
        with self.lock:  # type: ignore[union-attr]
            self._write_queue()
        super().emit(record)

    def flush(self) -> None:
        self.flush_now()

    def flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.stream and not self.stream.closed:
                self._write_queue()
                self.stream.flush()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending is not None:
                self._pending.cancel()
            self._pending = self._pending_loop = None
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
