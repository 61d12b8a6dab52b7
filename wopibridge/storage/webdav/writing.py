"""Writing WebDAV files: streamed PUTs with their preconditions, MOVE journalled in the id
map, DELETE; and telling a server-side lock from a dropped connection after a failed PUT.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping

import aiohttp

from wopibridge.errors import FileExists, NotFound, Unavailable, VersionConflict
from wopibridge.storage.base import FileStat
from wopibridge.storage.httpbody import Upload
from wopibridge.storage.idmap import journalled_move
from wopibridge.storage.names import check_path
from wopibridge.storage.names import check_plain_name as check_name
from wopibridge.storage.webdav.client import DAV
from wopibridge.storage.webdav.ids import WebDavFiles, encode_id
from wopibridge.storage.webdav.meta import META_NS


class WebDavWriting(WebDavFiles):
    """Every change to the collection's files."""

    async def _put(
        self, path: str, chunks: AsyncIterable[bytes], condition: Mapping[str, str]
    ) -> None:
        """Stream one PUT. A failing source aborts the request (no final chunk is sent)."""

        headers = {
            "Content-Type": "application/octet-stream",
            "Connection": "close",
            **condition,
        }
        try:
            response = await self._dav.request(
                "PUT",
                path,
                headers=headers,
                upload=Upload(chunks),
                idempotent=False,
                stream=True,
                expect100=True,
            )
        except Unavailable:
            await self._explain_broken_put(path)
            raise
        if response.status not in (200, 201, 204):
            # The server answered before reading the body: the connection cannot be reused.
            response.close()
            raise self._dav.error(response.status, what="write")
        response.release()

    async def _explain_broken_put(self, path: str) -> None:
        """A PUT ended in a connection error: raise ``Locked`` if the file is locked on the
        server (it answered 423 and dropped the connection before the answer was read);
        return if it is not, or if the server does not answer this either."""
        try:
            entry = await self._entry(path)
        except (Unavailable, NotFound):
            return
        if entry.locked or await self._refuses_writes(path):
            raise self._locked()

    async def _refuses_writes(self, path: str) -> bool:
        """Whether the server refuses a write to ``path`` for a lock: a PROPPATCH that only
        removes a property nobody sets answers 423 on a locked file, and changes nothing."""
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="{DAV}" '
            f'xmlns:m="{META_NS}"><d:remove><d:prop><m:x-lock-probe/></d:prop></d:remove>'
            "</d:propertyupdate>"
        ).encode()
        try:
            response = await self._dav.request(
                "PROPPATCH",
                path,
                headers={"Content-Type": "application/xml; charset=utf-8"},
                data=body,
            )
        except Unavailable:
            return False
        try:
            if response.status == 423:
                return True
            if response.status == 207:
                return b" 423 " in await response.read()
        except (TimeoutError, aiohttp.ClientError):
            return False
        finally:
            response.release()
        return False

    async def write(
        self,
        file_id: str,
        chunks: AsyncIterable[bytes],
        *,
        expected_version: str | None = None,
    ) -> FileStat:
        path = await self._path_of(file_id)
        # Some servers ignore If-Match on a missing resource and create it: look first.
        entry = await self._entry(path)
        current = self._make_stat(file_id, entry)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict("The file changed on the storage")
        if entry.locked:
            raise self._locked()
        condition = f'"{expected_version}"' if expected_version is not None else "*"
        await self._put(path, chunks, {"If-Match": condition})
        return await self._stat_path(file_id, path)

    async def create(
        self,
        sibling_of: str,
        name: str,
        chunks: AsyncIterable[bytes],
        *,
        overwrite: bool = False,
    ) -> FileStat:
        folder = (await self._path_of(sibling_of)).rpartition("/")[0]
        path = f"{folder}/{check_name(name)}" if folder else check_name(name)
        condition = {} if overwrite else {"If-None-Match": "*"}
        try:
            await self._put(path, chunks, condition)
        except VersionConflict:
            raise FileExists(f"A file named {name} already exists") from None
        return await self._stat_new(path)

    async def create_in(self, folder: str, name: str, chunks: AsyncIterable[bytes]) -> FileStat:
        path = f"{check_path(folder)}/{check_name(name)}" if folder else check_name(name)
        try:  # If-None-Match: * makes the server refuse an existing name atomically
            await self._put(path, chunks, {"If-None-Match": "*"})
        except VersionConflict:
            raise FileExists(f"A file named {name} already exists") from None
        return await self._stat_path(encode_id(path), path)

    async def _move(self, path: str, target: str, new_name: str) -> None:
        response = await self._dav.request(
            "MOVE",
            path,
            headers={"Destination": self._dav.url(target), "Overwrite": "F"},
            idempotent=False,
        )
        try:
            if response.status == 412:
                raise FileExists(f"A file named {new_name} already exists")
            if response.status not in (201, 204):
                raise self._dav.error(response.status, what="rename")
        finally:
            response.release()

    async def rename(self, file_id: str, new_name: str) -> FileStat:
        """MOVE, journalled in the id map: pending name, move, map; when the map cannot be
        updated the file is moved back and the map's error (507 or 503) is the answer."""
        path = await self._path_of(file_id)
        folder = path.rpartition("/")[0]
        target = f"{folder}/{check_name(new_name)}" if folder else check_name(new_name)
        if target == path:
            return await self._stat_path(file_id, path)
        await journalled_move(
            self._ids,
            file_id,
            path,
            target,
            lambda: self._move(path, target, new_name),
            lambda: self._move(target, path, new_name),
        )
        return await self._stat_path(file_id, target)

    async def delete(self, file_id: str) -> None:
        path = await self._path_of(file_id)
        await self._stat_path(file_id, path)  # refuse collections
        response = await self._dav.request("DELETE", path)
        try:
            if response.status not in (200, 204):
                raise self._dav.error(response.status, what="delete")
        finally:
            response.release()
        await self._ids.forget(file_id, path)
