"""The XRootD protocol side of the XRootD storage: the client bindings' callbacks as asyncio
awaitables, and XRootD errors as WOPI errors. It knows server paths, not WOPI files.

The bindings (``pip install 'wopibridge[xrootd]'``, the ``xrootd`` wheel) send every request
asynchronously when given a ``callback``: the request goes out at once and the callback runs
later on one of the client library's own few worker threads. :func:`_submit` hands that
callback's answer to the event loop with ``call_soon_threadsafe``, so no request holds a
thread of ours while it waits, and the number of threads stays the library's, whatever the
load. Every request carries the storage's ``timeout``.

Errors: "no such file" is ``NotFound``; refusals are ``Forbidden``; a full server is
``InsufficientStorage``; a server that cannot be reached, or answers anything else, is
``Unavailable`` naming the storage, never the host or the server's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wopibridge.errors import (
    FileExists,
    Forbidden,
    InsufficientStorage,
    Locked,
    NotFound,
    Unavailable,
    WopiError,
)
from wopibridge.storage.xrootd.config import XrootdConfig

INSTALL_HINT = "the XRootD client is not installed: pip install 'wopibridge[xrootd]'"

# kXR error numbers (XProtocol.hh) the server answers with
_NOT_FOUND = {3011}
_EXISTS = {3018}
_FORBIDDEN = {3010, 3025}  # kXR_NotAuthorized, kXR_fsReadOnly
_FULL = {3009, 3021}  # kXR_NoSpace, kXR_overQuota
_LOCKED = {3003}  # kXR_FileLocked
#: how servers that answer kXR_FSError for it say that a path is read-only (read, not passed on)
_READ_ONLY = re.compile(r"read[/-]only|permission denied|not authorized", re.IGNORECASE)
_IS_DIRECTORY = {3016}
_NO_ATTRIBUTE = {3027, 3011}  # kXR_AttrNotFound (and ENOENT from older servers)

#: how long the client library tries to (re)connect before a request fails, at most
CONNECT_WINDOW = 5
#: seconds past a request's timeout after which its answer is no longer awaited
ANSWER_GRACE = 5


def load_bindings() -> Any:
    """The ``XRootD.client`` module; ``ValueError`` with the install hint when it is missing."""
    try:
        return importlib.import_module("XRootD.client")
    except ImportError:
        raise ValueError(INSTALL_HINT) from None


def configure_client(config: XrootdConfig) -> None:
    """Set the client library's environment before its first use: the authentication the
    table chose, and short connection windows so that a server that is down answers
    ``Unavailable`` within seconds and a server that is back is used again at once (the
    library's defaults wait two minutes and keep a failed connection dead for half an hour)."""
    for key, value in config.client_environment().items():
        os.environ[key] = value
    xrd = load_bindings()
    window = min(CONNECT_WINDOW, config.timeout)
    xrd.EnvPutInt("ConnectionWindow", window)
    xrd.EnvPutInt("ConnectionRetry", 1)
    xrd.EnvPutInt("StreamErrorWindow", 0)
    xrd.EnvPutInt("RequestTimeout", config.timeout)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered one request: ``ok``, its error number, its response."""

    ok: bool
    errno: int
    response: Any
    message: str = ""

    @property
    def missing(self) -> bool:
        return self.errno in _NOT_FOUND

    @property
    def exists(self) -> bool:
        return self.errno in _EXISTS


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)


async def _submit(
    send: Callable[[Callable[..., None]], Any], seconds: int, keep: object = None
) -> Answer:
    """Send one request with a callback; its answer, once the library has it.

    The library times requests out itself (``seconds``); should its answer never come, the
    wait ends a little later anyway, as a server that did not answer. ``keep`` (a block being
    written) stays referenced by the callback, which the library holds until the request is
    over: a caller that stops waiting cannot free it early."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Answer] = loop.create_future()

    def done(status: Any, response: Any, _hosts: Any = None, _keep: object = keep) -> None:
        answer = Answer(bool(status.ok), int(status.errno), response, str(status.message))
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, future, answer)

    status = send(done)
    if not status.ok:  # refused before anything was sent (bad arguments, no connection)
        return Answer(False, int(status.errno) or -1, None, str(status.message))
    try:
        return await asyncio.wait_for(future, seconds + ANSWER_GRACE)
    except TimeoutError:
        return Answer(False, 0, None, "no answer")


class XrdClient:
    """Requests to one XRootD server, on one ``FileSystem`` object the library pools."""

    def __init__(self, name: str, config: XrootdConfig) -> None:
        self.name = name
        self.config = config
        self._xrd = load_bindings()
        self._flags = importlib.import_module("XRootD.client.flags")
        self._fs = self._xrd.FileSystem(config.url)
        #: options every open carries (EOS: the application, ``eos.app=...``)
        self.opaque = ""

    @property
    def flags(self) -> Any:
        return self._flags

    def url(self, path: str) -> str:
        return f"{self.config.url}/{path}"

    def down(self) -> Unavailable:
        return Unavailable(f"The storage {self.name} is unavailable")

    def error(self, answer: Answer, *, what: str) -> WopiError:
        """The WOPI-facing error for a failed answer."""
        if answer.errno in _NOT_FOUND or answer.errno in _IS_DIRECTORY:
            return NotFound("File not found")
        if answer.errno in _EXISTS:
            return FileExists("A file with that name already exists")
        if answer.errno in _FORBIDDEN or _READ_ONLY.search(answer.message):
            return Forbidden(f"The storage {self.name} refused to {what} the file")
        if answer.errno in _FULL:
            return InsufficientStorage(f"The storage {self.name} is full")
        if answer.errno in _LOCKED:
            return Locked(f"The file is locked on the storage {self.name}")
        return self.down()

    async def fs(self, method: str, *args: Any) -> Answer:
        """One ``FileSystem`` request (``stat``, ``mv``, ``rm``, ``mkdir``, ``*_xattr``...)."""
        call = getattr(self._fs, method)
        timeout = self.config.timeout
        return await _submit(lambda done: call(*args, timeout=timeout, callback=done), timeout)

    async def checked(self, method: str, *args: Any, what: str) -> Any:
        answer = await self.fs(method, *args)
        if not answer.ok:
            raise self.error(answer, what=what)
        return answer.response

    def new_file(self) -> XrdFile:
        return XrdFile(self, self._xrd.File())

    async def get_attrs(self, path: str, names: list[str]) -> dict[str, str] | None:
        """The values of ``names`` on the file at ``path`` (absent ones left out); ``None``
        when the file does not exist."""
        answer = await self.fs("get_xattr", path, names)
        if not answer.ok:
            if answer.missing:
                return None
            raise self.error(answer, what="read")
        return attr_values(answer.response)

    async def set_attrs(self, path: str, attrs: list[tuple[str, str]], *, what: str) -> None:
        answer = await self.fs("set_xattr", path, attrs)
        _check_each(self, answer, what)

    async def del_attrs(self, path: str, names: list[str]) -> None:
        """Remove ``names``; names that are not there are no error."""
        answer = await self.fs("del_xattr", path, names)
        if not answer.ok:
            raise self.error(answer, what="annotate")
        for _name, status in answer.response or []:
            if not status.get("ok") and status.get("errno") not in _NO_ATTRIBUTE:
                raise self.down()

    async def list_attrs(self, path: str) -> dict[str, str]:
        answer = await self.fs("list_xattr", path)
        if not answer.ok:
            raise self.error(answer, what="read")
        return attr_values(answer.response)


def attr_values(response: Any) -> dict[str, str]:
    """The values of a ``get_xattr``/``list_xattr`` answer, leaving out absent names."""
    values: dict[str, str] = {}
    for name, value, status in response or []:
        if status.get("ok"):
            values[name] = value
    return values


def _check_each(client: XrdClient, answer: Answer, what: str) -> None:
    if not answer.ok:
        raise client.error(answer, what=what)
    for _name, status in answer.response or []:
        if not status.get("ok"):
            raise client.error(Answer(False, int(status.get("errno", -1)), None), what=what)


class XrdFile:
    """One open file of the server: open, read, write, close, its stat and attributes."""

    def __init__(self, client: XrdClient, handle: Any) -> None:
        self.client = client
        self._handle = handle
        self.is_open = False

    async def _call(self, method: str, *args: Any, keep: object = None) -> Answer:
        call = getattr(self._handle, method)
        timeout = self.client.config.timeout
        return await _submit(
            lambda done: call(*args, timeout=timeout, callback=done), timeout, keep
        )

    async def open(self, path: str, flags: int, mode: int = 0) -> Answer:
        url = self.client.url(path)
        if self.client.opaque:
            url = f"{url}?{self.client.opaque}"
        answer = await self._call("open", url, flags, mode)
        self.is_open = answer.ok
        return answer

    async def stat(self) -> Answer:
        return await self._call("stat", True)

    async def read(self, offset: int, size: int) -> Answer:
        return await self._call("read", offset, size)

    async def write(self, data: bytes, offset: int) -> Answer:
        """The library reads ``data`` after this call returns: the callback keeps it."""
        return await self._call("write", data, offset, len(data), keep=data)

    async def get_attrs(self, names: list[str]) -> dict[str, str]:
        answer = await self._call("get_xattr", names)
        if not answer.ok:
            raise self.client.error(answer, what="read")
        return attr_values(answer.response)

    async def close(self) -> Answer:
        if not self.is_open:
            return Answer(True, 0, None)
        self.is_open = False
        return await self._call("close")
