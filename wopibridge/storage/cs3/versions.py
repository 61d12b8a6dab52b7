"""CS3 file versions: the gateway's own (``ListFileVersions``, ``InitiateFileDownload`` of a
version, ``RestoreFileVersion``), as Reva's ocdav serves them under ``/meta/<id>/v``.

The storage behind the gateway decides which saves leave a version (Reva's decomposed
filesystem keeps one per upload, EOS per its own policy); wopibridge lists what it kept. A
version's key (``<node id>.REV.<time>`` on oCIS) names it in the gateway; the API's version id
is the key in URL-safe base64, and a key is only used after the file's own list named it, so a
token for one file never reaches another file's versions.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

import cs3.storage.provider.v1beta1.provider_api_pb2 as sp
import cs3.storage.provider.v1beta1.resources_pb2 as spr

from wopibridge.errors import NotFound, Unavailable, VersionConflict
from wopibridge.storage.base import FileContent, FileStat
from wopibridge.storage.cs3.client import GatewayClient
from wopibridge.storage.versions import VersionInfo


def version_id(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def version_key(vid: str) -> str:
    try:
        return base64.urlsafe_b64decode(vid + "=" * (-len(vid) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotFound("Version not found") from None


async def listed(gateway: GatewayClient, ref: spr.Reference) -> list[spr.FileVersion]:
    """The file's versions as the gateway lists them, newest first."""
    response = await gateway.checked(
        "ListFileVersions", sp.ListFileVersionsRequest(ref=ref), what="read"
    )
    return sorted(response.versions, key=lambda v: (v.mtime, v.key), reverse=True)


def infos(versions: list[spr.FileVersion]) -> list[VersionInfo]:
    return [
        VersionInfo(version_id(v.key), int(v.size), int(v.mtime) * 1_000_000_000) for v in versions
    ]


async def find(gateway: GatewayClient, ref: spr.Reference, vid: str) -> spr.FileVersion:
    """The version ``vid`` of the file at ``ref`` (``NotFound`` unless the file lists it)."""
    key = version_key(vid)
    for version in await listed(gateway, ref):
        if version.key == key:
            return version
    raise NotFound("Version not found")


def download_ref(ref: spr.Reference, version: spr.FileVersion) -> spr.Reference:
    """How ocdav names a version for a download: the key as the opaque id."""
    rid = ref.resource_id
    return spr.Reference(
        resource_id=spr.ResourceId(
            storage_id=rid.storage_id, space_id=rid.space_id, opaque_id=version.key
        )
    )


def version_stat(current: FileStat, version: spr.FileVersion) -> FileStat:
    return dataclasses.replace(
        current,
        size=int(version.size),
        mtime_ns=int(version.mtime) * 1_000_000_000,
        version=version.etag.strip('"') or version.key,
        read_only_reason="A previous version is read-only",
    )


class Cs3Versions:
    """The version calls of :class:`~wopibridge.storage.cs3.storage.Cs3Storage`, which
    provides the gateway, references, stat and downloads."""

    gateway: GatewayClient
    name: str

    def _ref(self, file_id: str) -> spr.Reference:
        raise NotImplementedError

    async def stat(self, file_id: str) -> FileStat:
        raise NotImplementedError

    async def _download(
        self, ref: spr.Reference, stat: FileStat, *, pinned: bool = False
    ) -> FileContent | None:
        raise NotImplementedError

    async def _current_lock_id(self, ref: spr.Reference) -> str:
        raise NotImplementedError

    async def list_versions(self, file_id: str) -> list[VersionInfo]:
        return infos(await listed(self.gateway, self._ref(file_id)))

    async def open_version(self, file_id: str, version_id: str) -> FileContent:
        ref = self._ref(file_id)
        version = await find(self.gateway, ref, version_id)
        stat = version_stat(await self.stat(file_id), version)
        content = await self._download(download_ref(ref, version), stat)
        if content is None:  # a 412 without a condition: the data server is confused
            raise Unavailable(f"The storage {self.name} did not send the version")
        return content

    async def restore_version(
        self, file_id: str, version_id: str, *, expected_version: str | None = None
    ) -> FileStat:
        """``RestoreFileVersion``: the gateway keeps the replaced content as a version."""
        ref = self._ref(file_id)
        version = await find(self.gateway, ref, version_id)
        current = await self.stat(file_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict("The file changed in storage")
        await self.gateway.checked(
            "RestoreFileVersion",
            sp.RestoreFileVersionRequest(
                ref=ref, key=version.key, lock_id=await self._current_lock_id(ref)
            ),
            what="write",
        )
        return await self.stat(file_id)
