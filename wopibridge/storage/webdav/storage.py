"""WebDAV storage: Nextcloud, ownCloud, Seafile, oCIS and OCM shares from other sites.

Everything goes through one shared aiohttp ``ClientSession`` (the app's), so connections are
pooled across requests and closed with the app. Bodies are streamed both ways: a GET hands the
response's chunks to the WOPI layer, a PUT sends the editor's chunks as they arrive
(``Transfer-Encoding: chunked``); nothing holds a whole file in memory.

Consistency rules:

* Reads are pinned to the state that was stat'ed: the GET carries ``If-Match`` with the etag
  the PROPFIND answered, so a save landing in between is seen as a change, never as a mix.
* Writes carry ``If-Match`` (the expected version, or ``*`` to require the file to exist) and
  creates carry ``If-None-Match: *``, so the server does the check-and-set atomically; a 412
  becomes ``VersionConflict`` or ``FileExists``. If the editor's stream fails, the request is
  aborted before its final chunk, so the server never sees a complete short body; servers with
  part-file uploads (Nextcloud, ownCloud, oCIS) then keep the old content.
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

from wopibridge.errors import Unavailable
from wopibridge.locks.base import LockStore
from wopibridge.storage.base import Capabilities, FileContent
from wopibridge.storage.httpbody import HttpFileContent
from wopibridge.storage.idmap import IdMap
from wopibridge.storage.remote import StreamsStagedFiles
from wopibridge.storage.webdav.client import STAT_BODY
from wopibridge.storage.webdav.config import WebDavConfig
from wopibridge.storage.webdav.meta import WebDavMeta
from wopibridge.storage.webdav.writing import WebDavWriting

log = logging.getLogger("wopibridge.storage.webdav")


class WebDavStorage(WebDavWriting, WebDavMeta, StreamsStagedFiles):
    """Files below one WebDAV collection URL."""

    capabilities = Capabilities(user_credential=True, shared_by_sites=True)

    def with_credential(self, credential: str | None) -> WebDavStorage:
        """A view of this storage that authenticates as the user (``auth = "user"``)."""
        if self.config.auth != "user" or credential == self._user_token:
            return self
        return WebDavStorage(
            self.name, self.config, self._session, user_token=credential, ids=self._ids
        )

    def lock_store(self, fallback: LockStore) -> LockStore:
        """WebDAV locks belong to desktop clients; WOPI locks stay in wopibridge's store."""
        return fallback

    async def start(self) -> None:
        log.info("storage %s: WebDAV at %s", self.name, self.config.url)

    async def open_read(self, file_id: str) -> FileContent:
        path = await self._path_of(file_id)
        for _ in range(3):
            stat = await self._stat_path(file_id, path)
            response = await self._dav.request(
                "GET", path, headers={"If-Match": f'"{stat.version}"'}, stream=True
            )
            if response.status == 200:
                return HttpFileContent(stat, response, self.name)
            response.release()
            if response.status != 412:
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
        """The session belongs to the app; the id map is ours."""
        await self._ids.close()


def build(
    name: str,
    table: Mapping[str, Any],
    session: aiohttp.ClientSession,
    ids: IdMap | None = None,
) -> WebDavStorage:
    return WebDavStorage(name, WebDavConfig.from_table(name, table), session, ids=ids)
