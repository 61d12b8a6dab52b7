"""The WebDAV protocol side of the WebDAV storage: requests with retries and credentials,
status mapping, and PROPFIND parsing. It knows URLs and XML, not WOPI files; the mapping of the
:class:`~wopibridge.storage.base.Storage` contract onto it is :mod:`.storage`.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp

from wopibridge.errors import (
    NotFound,
    NotImplementedOperation,
    Unauthorized,
    Unavailable,
    WopiError,
)
from wopibridge.storage.httpbody import Upload
from wopibridge.storage.remote import http_status_error
from wopibridge.storage.webdav.config import WebDavConfig

DAV = "DAV:"

OC = "http://owncloud.org/ns"

_RETRY_STATUS = frozenset({502, 503, 504})


STAT_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:propfind xmlns:d="{DAV}" xmlns:oc="{OC}"><d:prop>'
    "<d:resourcetype/><d:getetag/><d:getlastmodified/><d:getcontentlength/>"
    "<oc:fileid/><oc:owner-id/><d:lockdiscovery/>"
    "</d:prop></d:propfind>"
).encode()
#: What a look at a file's locks asks for: its locks, and its type (a folder is no file).
LOCKS_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:propfind xmlns:d="{DAV}"><d:prop><d:resourcetype/><d:lockdiscovery/></d:prop></d:propfind>'
).encode()


@dataclass(frozen=True, slots=True)
class ActiveLock:
    """One ``DAV:activelock`` of a ``lockdiscovery``: its token (``""`` when the server hides
    it), the ``DAV:owner`` as the text it holds, and the seconds left (``None``: infinite or
    not said)."""

    token: str
    owner: str
    timeout: float | None


@dataclass(slots=True)
class DavEntry:
    path: str
    is_collection: bool
    etag: str
    size: int
    mtime_ns: int
    fileid: str
    owner: str
    locked: bool = False
    #: the server marked its ETag weak (``W/"…"``): it must not go into ``If-Match``
    weak: bool = False
    locks: tuple[ActiveLock, ...] = ()
    #: the server answered ``lockdiscovery`` (an empty one says "no lock"; none says nothing)
    reports_locks: bool = False
    #: ``getlastmodified`` as sent, for ``If-Unmodified-Since``
    modified: str = ""


def _strip_etag(etag: str) -> str:
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def parse_timeout(value: str) -> float | None:
    """``Second-N`` as seconds; ``Infinite`` or nonsense as ``None``."""
    value = value.strip()
    if value.lower().startswith("second-") and value[7:].isdigit():
        return float(value[7:])
    return None


def owner_text(owner: ET.Element | None) -> str:
    """The text of a ``DAV:owner`` (its ``href`` or words), collapsed to one line."""
    if owner is None:
        return ""
    return " ".join("".join(owner.itertext()).split())


def parse_locks(discovery: ET.Element | None) -> tuple[ActiveLock, ...]:
    """The active locks of a ``DAV:lockdiscovery`` element."""
    if discovery is None:
        return ()
    found = []
    for active in discovery.findall(f"{{{DAV}}}activelock"):
        token = (active.findtext(f"{{{DAV}}}locktoken/{{{DAV}}}href") or "").strip()
        found.append(
            ActiveLock(
                token=token,
                owner=owner_text(active.find(f"{{{DAV}}}owner")),
                timeout=parse_timeout(active.findtext(f"{{{DAV}}}timeout") or ""),
            )
        )
    return tuple(found)


def _http_time_ns(value: str) -> int:
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError, IndexError):
        return 0


class DavClient:
    """Requests to one WebDAV collection as one identity (a service account or a user)."""

    def __init__(
        self,
        name: str,
        config: WebDavConfig,
        session: aiohttp.ClientSession,
        user_token: str | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.session = session
        self.base = config.url + "/"
        self._base_path = unquote(urlsplit(self.base).path)
        self._user_token = user_token
        # the same for every request of this client: built once (a lock's LOCK and UNLOCK
        # are two small requests, where what surrounds them shows)
        self._auth = config.auth_header(user_token)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.timeout, sock_read=config.timeout
        )

    def url(self, path: str) -> str:
        return self.base + quote(path, safe="/")

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra) if extra else {}
        if self._auth:
            headers["Authorization"] = self._auth
        elif self.config.auth == "user":
            raise Unauthorized(f"The storage {self.name} needs the user's credential")
        return headers

    def down(self, exc: BaseException | None = None) -> Unavailable:
        detail = f" ({type(exc).__name__})" if exc else ""
        return Unavailable(f"The storage {self.name} is unavailable{detail}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        idempotent: bool = True,
        stream: bool = False,
        absolute: bool = False,
        expect100: bool = False,
        upload: Upload | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request; retry idempotent ones while the server is unreachable.

        The caller owns the returned response and must release it. With ``upload``, ``data``
        is its body and a server that stops taking it counts as not answering.
        """
        timeout = self._stream_timeout if stream else self._timeout
        attempts = 1 + (self.config.retries if idempotent else 0)
        last: BaseException | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(0.1 * 2**attempt, 1.0))
            try:
                sending = self.session.request(
                    method,
                    path if absolute else self.url(path),
                    headers=self.headers(headers),
                    data=upload.body() if upload is not None else data,
                    timeout=timeout,
                    allow_redirects=False,
                    expect100=expect100,
                )
                if upload is not None:
                    response = await upload.guard(sending, self.config.timeout)
                else:
                    response = await sending
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last = exc
                continue
            if response.status in _RETRY_STATUS and attempt + 1 < attempts:
                response.release()
                last = None
                continue
            return response
        raise self.down(last)

    def error(self, status: int, *, what: str) -> WopiError:
        """The WOPI-facing error for a failed WebDAV answer."""
        known = http_status_error(self.name, status, what)
        if known is not None:
            return known
        if status == 401:
            return Unauthorized(f"The storage {self.name} did not accept the credentials")
        if status == 409:
            return NotFound("The folder does not exist")
        if status in (405, 501):
            return NotImplementedOperation(f"The storage {self.name} cannot {what} files")
        if status >= 500:
            return self.down()
        return Unavailable(f"The storage {self.name} answered {status} to {what}")

    def relative(self, href: str) -> str:
        path = unquote(urlsplit(href).path)
        if path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        return path.strip("/")

    def parse_entry(self, response: ET.Element) -> DavEntry | None:
        href = response.findtext(f"{{{DAV}}}href") or ""
        props: dict[str, ET.Element] = {}
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            status = propstat.findtext(f"{{{DAV}}}status") or ""
            if " 200 " not in status + " ":
                continue
            prop = propstat.find(f"{{{DAV}}}prop")
            if prop is not None:
                for child in prop:
                    props[child.tag] = child
        if not href:
            return None

        def text(tag: str) -> str:
            element = props.get(tag)
            return (element.text or "").strip() if element is not None else ""

        resourcetype = props.get(f"{{{DAV}}}resourcetype")
        is_collection = (
            resourcetype is not None and resourcetype.find(f"{{{DAV}}}collection") is not None
        )
        length = text(f"{{{DAV}}}getcontentlength")
        locks = parse_locks(props.get(f"{{{DAV}}}lockdiscovery"))
        etag = text(f"{{{DAV}}}getetag")
        return DavEntry(
            path=self.relative(href),
            is_collection=is_collection,
            etag=_strip_etag(etag),
            size=int(length) if length.isdigit() else 0,
            mtime_ns=_http_time_ns(text(f"{{{DAV}}}getlastmodified")),
            fileid=text(f"{{{OC}}}fileid"),
            owner=text(f"{{{OC}}}owner-id"),
            locked=bool(locks),
            weak=etag.startswith("W/"),
            locks=locks,
            reports_locks=f"{{{DAV}}}lockdiscovery" in props,
            modified=text(f"{{{DAV}}}getlastmodified"),
        )

    async def multistatus(self, response: aiohttp.ClientResponse) -> ET.Element:
        """The parsed 207 answer of a PROPFIND (released here); another status is its error."""
        try:
            if response.status != 207:
                raise self.error(response.status, what="read")
            payload = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self.down(exc) from None
        finally:
            response.release()
        try:
            return ET.fromstring(payload)
        except ET.ParseError:
            raise Unavailable(f"The storage {self.name} sent an unreadable answer") from None

    async def propfind(self, path: str, body: bytes = STAT_BODY) -> ET.Element:
        response = await self.request(
            "PROPFIND",
            path,
            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            data=body,
        )
        root = await self.multistatus(response)
        first = root.find(f"{{{DAV}}}response")
        if first is None:
            raise NotFound("File not found")
        return first
