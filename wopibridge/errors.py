"""One exception tree for everything a request can fail with, mapped to HTTP in one place.

Handlers, storages, lock stores and apps raise a :class:`WopiError` subclass that says *what*
went wrong; :func:`failure_response` is the only code that turns it into a response. That keeps
status codes consistent with the WOPI checklist and keeps tracebacks out of answers: an
unexpected exception is logged with its traceback and answered with a short sentence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from wopibridge.jsonio import json_response

log = logging.getLogger("wopibridge.errors")

#: Set by handlers of pages a person's browser opens (the host page): their failures are
#: answered with a styled page (``templates/error.html.j2``) rather than a line of text.
BROWSER_PAGE: web.RequestKey[bool] = web.RequestKey("browser_page", bool)

#: Page titles per status: what happened, in the words of the person who clicked a link.
PAGE_TITLES: Mapping[int, str] = {
    400: "This link is incomplete",
    401: "You cannot open this document",
    403: "You cannot open this document",
    404: "This link has expired",
    503: "This service is not available right now",
}
PAGE_HINT = "Go back to your files and open the document again."


class WopiError(Exception):
    """Base of every expected failure. ``status`` and ``message`` become the response.

    ``message`` is a short human sentence: Reva shows the body of a failed open to the user.
    It names the failing component and nothing of the inside: no host, port, path or
    exception text. Those go in ``detail``, which only the log gets.
    """

    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body

    def response(self) -> web.Response:
        if self.body is not None:
            return json_response(dict(self.body), status=self.status, headers=self.headers)
        return web.Response(text=self.message, status=self.status, headers=self.headers)


class BadRequest(WopiError):
    status = 400


class InvalidFileName(BadRequest):
    """A requested name cannot be used; WOPI wants the reason in a header."""

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"X-WOPI-InvalidFileNameError": message})


class Unauthorized(WopiError):
    status = 401


class Forbidden(WopiError):
    status = 403


class NotFound(WopiError):
    status = 404


class Conflict(WopiError):
    status = 409


class LockMismatch(Conflict):
    """A lock check failed. ``current`` is the lock on the file (``""`` when unlocked)."""

    def __init__(self, current: str, reason: str = "Lock mismatch") -> None:
        super().__init__(
            reason,
            headers={"X-WOPI-Lock": current, "X-WOPI-LockFailureReason": reason},
        )
        self.current = current


class VersionConflict(Conflict):
    """The stored file changed since the writer last saw it (an optimistic-write precondition)."""


class FileExists(Conflict):
    """A create-new found its target name taken."""


class PreconditionFailed(WopiError):
    status = 412


class PayloadTooLarge(WopiError):
    status = 413


class Locked(WopiError):
    """The storage itself refuses the write (a WebDAV lock, a desktop client's lock)."""

    status = 423


class ProofFailed(WopiError):
    """A proof-key signature did not verify; the WOPI validator expects 500 here."""

    status = 500


class NotImplementedOperation(WopiError):
    status = 501


class Unavailable(WopiError):
    """A dependency (storage, lock store, editor, discovery) cannot be reached."""

    status = 503


class InsufficientStorage(WopiError):
    status = 507


def failure_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The answer to ``exc`` raised by a handler: its WOPI status and a short sentence, never a
    traceback. aiohttp's own ``HTTPException`` and a connection the client reset are raised
    again, for aiohttp to answer or drop.

    The server's request middleware (:mod:`wopibridge.ops.accesslog`) calls this directly, so
    that the access log and the error mapping are one layer of the request path, not two.
    """
    if isinstance(exc, WopiError):
        if exc.detail:
            log.warning(
                "%s %s: %d %s (%s)",
                request.method,
                request.path,
                exc.status,
                exc.message,
                exc.detail,
            )
        if request.get(BROWSER_PAGE):
            return error_page(request, exc.status, exc.message)
        return exc.response()
    if isinstance(exc, web.HTTPException | ConnectionResetError):
        raise exc
    if isinstance(exc, json.JSONDecodeError):
        return web.Response(status=400, text="The request body is not valid JSON")
    log.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    if request.get(BROWSER_PAGE):
        return error_page(request, 500, "The server could not open this page.")
    return web.Response(status=500, text="Internal server error")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with its WOPI status and a short sentence (:func:`failure_response`),
    for an application without the server's request middleware."""
    try:
        return await handler(request)
    except Exception as exc:
        return failure_response(request, exc)


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A failure as a styled HTML page for a person (the message stays the short sentence
    the API would answer); plain text when the application has no templates."""
    title = PAGE_TITLES.get(status, "Something went wrong")
    if aiohttp_jinja2.APP_KEY not in request.app:
        return web.Response(status=status, text=f"{title}. {message}")
    context = {"status": status, "title": title, "message": message, "hint": PAGE_HINT}
    response = aiohttp_jinja2.render_template("error.html.j2", request, context, status=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'self'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
