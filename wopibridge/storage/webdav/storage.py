"""WebDAV storage: Nextcloud, ownCloud, Seafile, oCIS and OCM shares from other sites.

Everything goes through one shared aiohttp ``ClientSession`` (the app's), so connections are
pooled across requests and closed with the app. Bodies are streamed both ways: a GET hands the
response's chunks to the WOPI layer, a PUT sends the editor's chunks as they arrive
(``Transfer-Encoding: chunked``); nothing holds a whole file in memory.

Consistency rules:

* Reads are pinned to the state that was stat'ed: the GET carries ``If-Match`` with the etag
  the PROPFIND answered, so a save landing in between is seen as a change, never as a mix.
* Versions: a file's version is its ETag's opaque part (``W/"x"`` and ``"x"`` are one
  version, so a weak ETag turning strong is no change), else ``getlastmodified`` + size for
  servers that report no ``getetag``. ETags that change on LOCK or PROPPATCH do not matter:
  every save compares the version of a PROPFIND made in the same request, and editors compare
  ``LastModifiedTime``. Reads send ``If-Match`` only with a strong ETag; with a weak one the
  GET's own ``ETag`` (or its length and ``Last-Modified``) must match the PROPFIND's, else it
  is read again. What each write sends (``If``, ``If-Match``, ``If-Unmodified-Since``) is in
  :mod:`.writing`; a 412 becomes ``VersionConflict``, ``FileExists`` or a lost lock.
* Locks: a WOPI lock on a file of this storage is a WebDAV ``LOCK`` on it (:mod:`.locks`,
  through :class:`~wopibridge.locks.ownerlocks.OwnerLockStore`), its token kept in the site's
  Redis so every instance saves, refreshes and releases with it. A server without class-2
  WebDAV (``OPTIONS`` without ``DAV: 2``, or ``LOCK`` answered 405/501), or ``locks = false``
  in the table, leaves WOPI locks in the site's store: said once at start, shown in ``/ready``.
* If the editor's stream fails, the request is aborted before its final chunk, so the
  server never sees a complete short body; servers with part-file uploads (Nextcloud,
  ownCloud, oCIS) then keep the old content.
* PUTs send ``Expect: 100-continue``: the server checks the conditions and its locks before
  the body is sent, so a refusal is a clean status, not a connection reset mid-upload. They
  also ask for ``Connection: close``: a server that refused without reading the body cannot
  safely reuse that connection (one TCP handshake per upload is nothing next to its body).
* A server-side lock (a desktop client's WebDAV LOCK) answers 423, mapped to ``Locked``. The
  PROPFIND before a write asks for ``lockdiscovery``, so a file locked there is refused before
  any byte is sent. A server may still answer while the body streams, then close or reset the
  connection before the client has read the answer (cheroot does: the unread body makes the
  kernel reset the connection, and the answer is lost). A PUT that ends in a connection error is
  therefore followed by a PROPFIND and, for servers that do not report locks there, a PROPPATCH
  that removes a property that does not exist (it changes nothing, yet a locked file refuses
  it with 423). A lock found that way is the answer (``Locked``); ``Unavailable`` is kept for a
  storage that really did not answer.
* Only idempotent calls (PROPFIND, PROPPATCH, GET before its body, DELETE) are retried, after
  connection failures and 502/503/504; a storage that stays down raises ``Unavailable`` naming it.

Ids: the backend id is the URL-safe base64 of the path below the configured URL, as first seen.
A rename made through wopibridge is recorded in the id map (:mod:`wopibridge.storage.idmap`:
shared by every instance through Redis when the locks are there), so the old id keeps naming
the file on every instance, and the new path is recognised as the same file. The rename is
journalled there first, as the local storage's is, so an instance killed in the middle leaves
an id that resolves. ``identity`` (the lock key) prefers the server's ``oc:fileid``, else the
path the id was minted for, so a lock follows a rename; it is prefixed with the owning site's
name, so every site that reaches the same share computes the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from wopibridge.errors import Unavailable, WopiError
from wopibridge.locks.base import LockStore
from wopibridge.locks.memory import MemoryLockStore
from wopibridge.locks.ownerlocks import OwnerLockStore
from wopibridge.storage.base import Capabilities, FileContent
from wopibridge.storage.httpbody import HttpFileContent
from wopibridge.storage.idmap import IdMap
from wopibridge.storage.remote import StreamsStagedFiles
from wopibridge.storage.webdav.client import STAT_BODY, DavEntry, _strip_etag
from wopibridge.storage.webdav.config import WebDavConfig
from wopibridge.storage.webdav.locks import WebDavOwnerLocks
from wopibridge.storage.webdav.lockstate import DavLockState
from wopibridge.storage.webdav.meta import WebDavMeta
from wopibridge.storage.webdav.versions import WebDavVersions, nextcloud_versions
from wopibridge.storage.webdav.writing import WebDavWriting

log = logging.getLogger("wopibridge.storage.webdav")


class WebDavStorage(WebDavWriting, WebDavVersions, WebDavMeta, StreamsStagedFiles):
    """Files below one WebDAV collection URL."""

    capabilities = Capabilities(user_credential=True, own_locks=True, shared_by_sites=True)
    #: a Nextcloud-style files URL with ``versions`` on (see :mod:`.versions`)
    versioned = replace(capabilities, versions=True)

    def _capabilities_for(self, config: WebDavConfig) -> Capabilities:
        if config.versions and nextcloud_versions(config.url) is not None:
            return self.versioned
        return type(self).capabilities

    def with_credential(self, credential: str | None) -> WebDavStorage:
        """A view of this storage that authenticates as the user (``auth = "user"``)."""
        if self.config.auth != "user" or credential == self._user_token:
            return self
        return WebDavStorage(
            self.name,
            self.config,
            self._session,
            user_token=credential,
            ids=self._ids,
            locking=self._locking,
        )

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WOPI locks held as WebDAV locks at the owner, under the site's store (``fallback``)
        that decides among this site's instances; the site's store alone with ``locks =
        false``."""
        if not self._locking.enabled:
            return fallback
        owner = WebDavOwnerLocks(self, self._locking)
        return OwnerLockStore(fallback, owner, self._locking.tokens, self._locking.site)

    def lock_mode(self) -> str:
        return self._locking.mode()

    async def start(self) -> None:
        log.info("storage %s: WebDAV at %s", self.name, self.config.url)
        if not self._locking.enabled:
            log.warning(
                "storage %s: locks = false; WOPI locks are kept in the site's lock store only",
                self.name,
            )
            return
        try:
            response = await self._dav.request("OPTIONS", self._dav.base, absolute=True)
        except WopiError:  # down, or no credential before a user's: LOCK's answer decides
            return
        classes = {c.strip() for c in response.headers.get("DAV", "").split(",")}
        response.release()
        if response.status < 400 and classes != {""} and "2" not in classes:
            self._locking.refuse(self.name, "the server offers no WebDAV locks (no DAV: 2)")

    @staticmethod
    def _same_state(entry: DavEntry, response: aiohttp.ClientResponse) -> bool:
        """Whether a GET sent without ``If-Match`` answered the state the PROPFIND saw."""
        etag = response.headers.get("ETag")
        if etag and entry.etag:
            return _strip_etag(etag) == entry.etag
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != entry.size:
            return False
        modified = response.headers.get("Last-Modified")
        return not (modified and entry.modified and modified != entry.modified)

    async def open_read(self, file_id: str) -> FileContent:
        path = await self._path_of(file_id)
        for _ in range(3):
            entry = await self._entry(path)
            stat = self._make_stat(file_id, entry)
            strong = bool(entry.etag) and not entry.weak
            headers = {"If-Match": f'"{entry.etag}"'} if strong else {}
            response = await self._dav.request("GET", path, headers=headers, stream=True)
            if response.status == 200 and (strong or self._same_state(entry, response)):
                return HttpFileContent(stat, response, self.name)
            response.release()
            if response.status not in (200, 412):
                raise self._dav.error(response.status, what="read")
        raise Unavailable(f"The file keeps changing on the storage {self.name}")

    async def check(self) -> None:
        """The server answers a PROPFIND of the root. Without a user's credential (``auth =
        "user"``) a 401 still proves it is up."""
        probe = self
        if self.config.auth == "user" and not self._user_token:
            probe = WebDavStorage(self.name, replace(self.config, auth="none"), self._session)
        response = await probe._dav.request(
            "PROPFIND",
            self._dav.base,
            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            data=STAT_BODY,
            absolute=True,
        )
        response.release()
        expected = (207, 401) if probe is not self else (207,)
        if response.status not in expected:
            raise Unavailable(f"The storage {self.name} answered {response.status}")

    async def lock_file_ids(self) -> list[str]:
        return []  # see Storage.lock_file_ids: no walk over the network

    async def close(self) -> None:
        """The session belongs to the app; the id map and the token store are ours."""
        await self._ids.close()
        await self._locking.tokens.close()


def build(
    name: str,
    table: Mapping[str, Any],
    session: aiohttp.ClientSession,
    ids: IdMap | None = None,
    tokens: LockStore | None = None,
    site: str = "",
) -> WebDavStorage:
    """``tokens``: where this site keeps its WebDAV lock tokens (seen by all its instances);
    ``site``: this site's name in the locks' owner (``server.public_url``)."""
    config = WebDavConfig.from_table(name, table)
    locking = None
    if tokens is not None:
        locking = DavLockState(tokens, site, enabled=config.locks)
    elif not config.locks:
        locking = DavLockState(MemoryLockStore(), site, enabled=False)
    return WebDavStorage(name, config, session, ids=ids, locking=locking)
