"""Per-request WOPI context: the verified access token bound to the file in the URL.

Every ``/wopi/files`` route is wrapped by :func:`wopibridge.wopi.routes.wopi_route`, which
calls :func:`bind_access` first, so no handler can forget the check. A
token for another file is answered 404 (the file does not exist for this token); a token in the
wrong mode is refused by :func:`require_edit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from wopibridge.errors import BadRequest, NotFound, Unauthorized
from wopibridge.locks.base import MAX_LOCK_LENGTH, LockStore
from wopibridge.security.keys import ACCESS, FILE_ID, TOKENS
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.factory import bind_request


def token_from(request: web.Request) -> str:
    """``access_token`` from the query (preferred) or ``Authorization: Bearer``."""
    token = request.query.get("access_token", "")
    if not token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    if not token:
        raise Unauthorized("Missing access token")
    return token


def version_purpose(version_id: str) -> str:
    """The purpose of a token that opens one version of a file, read-only, in an editor."""
    return f"version:{version_id}"


async def bind_access(request: web.Request, purpose: str = "") -> None:
    """Verify the request's token and bind it to the file in the URL (404 for another file).

    A token minted for one purpose (a TemplateSource download, one version) is good for
    nothing else: only routes that name that ``purpose`` take it."""
    file_id = request.match_info["file_id"]
    access = await request.app[TOKENS].resolve(token_from(request), file_id)
    if access.file_id != file_id or access.purpose not in ("", purpose):
        raise NotFound("File not found")
    request[ACCESS] = access
    request[FILE_ID] = file_id


@dataclass(slots=True)
class WopiRequest:
    """What every WOPI handler works with, resolved once per request (read, never changed:
    not ``frozen`` only because a frozen dataclass takes four times as long to make, on every
    request).
    """

    request: web.Request
    access: AccessToken
    file_id: str
    storage: Storage
    backend_id: str
    locks: LockStore

    @classmethod
    def of(cls, request: web.Request) -> WopiRequest:
        file_id = request[FILE_ID]
        access = request[ACCESS]
        storage, backend_id, locks = bind_request(request.app, access)
        return cls(
            request=request,
            access=access,
            file_id=file_id,
            storage=storage,
            backend_id=backend_id,
            locks=locks,
        )

    def require_edit(self) -> None:
        if not self.access.can_write:
            raise Unauthorized("This access token does not allow changes")

    async def stat(self) -> FileStat:
        return await self.storage.stat(self.backend_id)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def lock_header(self, name: str = "X-WOPI-Lock") -> str:
        """A lock id from a request header: required, non-empty, at most 1024 characters."""
        value = self.request.headers.get(name)
        if value is None:
            raise BadRequest(f"Missing {name} header")
        if not value:
            raise BadRequest(f"Empty {name} header")
        if len(value) > MAX_LOCK_LENGTH:
            raise BadRequest(f"{name} is longer than {MAX_LOCK_LENGTH} characters")
        return value
