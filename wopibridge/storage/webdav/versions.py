"""WebDAV file versions: the server's own, where it has them.

Nextcloud (and ownCloud 10) keep a version of a file on every upload and serve them in the
``versions`` DAV collection: ``PROPFIND {dav}/versions/{user}/versions/{fileid}`` lists them,
``GET`` on a member downloads one, and ``MOVE`` of a member to
``{dav}/versions/{user}/restore/target`` restores it (the server keeps the replaced content as a
version). The collection is found from the storage's URL (``{dav}/files/{user}``) and the
file's ``oc:fileid``; a server without it (the versions app off, another server) answers 404 or
405 there, and the API answers 501. oCIS is reached through CS3, where its versions are.

A version is used only after the file's own list named it, so a token for one file never
reaches another file's versions.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote, unquote, urlsplit

from wopibridge.errors import NotFound, NotImplementedOperation, VersionConflict
from wopibridge.storage.base import FileContent, FileStat
from wopibridge.storage.httpbody import HttpFileContent
from wopibridge.storage.versions import VersionInfo
from wopibridge.storage.webdav.client import DAV, DavEntry
from wopibridge.storage.webdav.ids import WebDavFiles

NC = "http://nextcloud.org/ns"
_NEXTCLOUD = re.compile(r"^(?P<dav>.+/remote\.php/dav)/files/(?P<user>[^/]+)$")

LIST_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:propfind xmlns:d="{DAV}" xmlns:nc="{NC}"><d:prop>'
    "<d:getetag/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>"
    "<nc:version-author/>"
    "</d:prop></d:propfind>"
).encode()


def nextcloud_versions(url: str) -> tuple[str, str] | None:
    """The DAV root and user of a Nextcloud-style files URL (``{dav}/files/{user}``)."""
    found = _NEXTCLOUD.match(url.rstrip("/"))
    return (found["dav"], unquote(found["user"])) if found else None


def _no_versions(name: str) -> NotImplementedOperation:
    return NotImplementedOperation(f"The storage {name} keeps no versions of its files")


class WebDavVersions(WebDavFiles):
    """The server's versions of the files below the collection URL."""

    def _versions_url(self, entry: DavEntry) -> str:
        found = nextcloud_versions(self.config.url)
        if found is None or not entry.fileid:
            raise _no_versions(self.name)
        dav, user = found
        return f"{dav}/versions/{quote(user, safe='')}/versions/{quote(entry.fileid, safe='')}"

    async def _listed(self, file_id: str) -> tuple[FileStat, str, list[VersionInfo]]:
        entry = await self._entry(await self._path_of(file_id))
        url = self._versions_url(entry)
        response = await self._dav.request(
            "PROPFIND",
            url,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            data=LIST_BODY,
            absolute=True,
        )
        if response.status in (404, 405, 501):
            response.release()
            raise _no_versions(self.name)
        root = await self._dav.multistatus(response)
        collection = unquote(urlsplit(url).path).rstrip("/")
        found: list[VersionInfo] = []
        for item in root.findall(f"{{{DAV}}}response"):
            href = unquote(urlsplit(item.findtext(f"{{{DAV}}}href") or "").path).rstrip("/")
            version = self._dav.parse_entry(item)
            if version is None or version.is_collection or href == collection:
                continue
            author = ""
            for prop in item.iter(f"{{{NC}}}version-author"):
                author = (prop.text or "").strip()
            found.append(
                VersionInfo(href.rpartition("/")[2], version.size, version.mtime_ns, author)
            )
        found.sort(key=lambda v: (v.mtime_ns, v.version_id), reverse=True)
        return self._make_stat(file_id, entry), url, found

    async def _version(self, file_id: str, version_id: str) -> tuple[FileStat, str, VersionInfo]:
        stat, url, versions = await self._listed(file_id)
        for version in versions:
            if version.version_id == version_id:
                return stat, f"{url}/{quote(version_id, safe='')}", version
        raise NotFound("Version not found")

    async def list_versions(self, file_id: str) -> list[VersionInfo]:
        return (await self._listed(file_id))[2]

    async def open_version(self, file_id: str, version_id: str) -> FileContent:
        current, url, version = await self._version(file_id, version_id)
        response = await self._dav.request("GET", url, stream=True, absolute=True)
        if response.status != 200:
            response.release()
            raise self._dav.error(response.status, what="read")
        stat = dataclasses.replace(
            current,
            size=version.size,
            mtime_ns=version.mtime_ns,
            version=f"{version.mtime_ns:x}.{version.size:x}",
            read_only_reason="A previous version is read-only",
        )
        return HttpFileContent(stat, response, self.name)

    async def restore_version(
        self, file_id: str, version_id: str, *, expected_version: str | None = None
    ) -> FileStat:
        """``MOVE`` to the restore target: the server keeps the replaced content."""
        current, url, _ = await self._version(file_id, version_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict("The file changed in storage")
        found = nextcloud_versions(self.config.url)
        assert found is not None  # _version found the collection
        dav, user = found
        target = f"{dav}/versions/{quote(user, safe='')}/restore/target"
        response = await self._dav.request(
            "MOVE", url, headers={"Destination": target}, absolute=True, idempotent=False
        )
        response.release()
        if response.status not in (200, 201, 204):
            raise self._dav.error(response.status, what="write")
        return await self.stat(file_id)
