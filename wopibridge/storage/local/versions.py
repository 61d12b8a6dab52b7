"""Version history of the local storage: the previous content of a file is kept by the
rename that replaces it (:mod:`.keeping`), listed, opened and restored by the file's id.

Off unless :meth:`LocalVersions.keep_versions` was called (``versions.enabled`` and the
storage's own ``versions`` switch); then ``capabilities.versions`` says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

from wopibridge.errors import Forbidden, NotFound
from wopibridge.storage.base import Capabilities, FileContent, FileStat
from wopibridge.storage.local import keeping
from wopibridge.storage.local.reading import LocalContent
from wopibridge.storage.local.records import HIDDEN
from wopibridge.storage.local.tree import os_error
from wopibridge.storage.local.writing import LocalWriting, _commit
from wopibridge.storage.tempfiles import TempFile
from wopibridge.storage.versions import (
    NoEvents,
    SaveNote,
    VersionEvents,
    VersionInfo,
    VersionLimits,
    current_note,
    decide,
    noting,
)

log = logging.getLogger("wopibridge.storage.versions")


class LocalVersions(LocalWriting):
    """Saves that keep what they replace, by the file's id, under ``<root>/.wopibridge``."""

    capabilities = Capabilities(local_staging=True)
    version_limits: VersionLimits | None = None
    version_events: VersionEvents = NoEvents()
    _pruning: dict[str, asyncio.Task[None]]
    #: versions of a file this instance knows of (its last pruning pass, plus its saves since)
    _kept_counts: dict[str, int]

    def keep_versions(self, limits: VersionLimits, events: VersionEvents | None = None) -> None:
        """Turn versions on, within ``limits``; call before the storage is shared."""
        self.version_limits = limits
        self._pruning = {}
        self._kept_counts = {}
        if events is not None:
            self.version_events = events
        self.capabilities = dataclasses.replace(type(self).capabilities, versions=True)

    def _versions_of(self, file_id: str) -> Path:
        return self.root / HIDDEN / "versions" / file_id

    def _replace(
        self, file_id: str, staged: Path, path: Path, mtime_ns: int, previous: os.stat_result
    ) -> bool:
        limits = self.version_limits
        if limits is None:
            return super()._replace(file_id, staged, path, mtime_ns, previous)
        return self._replace_sync(file_id, staged, path, mtime_ns, previous, limits)

    def _landed(self, file_id: str, path: Path, kept: bool) -> None:
        limits = self.version_limits
        if kept and limits is not None:
            self.version_events.kept()
            self._prune_later(file_id, path, limits)

    def _prune_later(self, file_id: str, path: Path, limits: VersionLimits) -> None:
        """Apply the limits off the save's path: unlinking a dropped version waits on the
        filesystem's journal, which the editor need not wait for. One pass per file at once,
        and only once the versions this instance knows of exceed ``max_count`` by a tenth
        (then the extra ones go in one pass); listing applies the limits exactly."""
        known = self._kept_counts.get(file_id)
        if known is not None:
            self._kept_counts[file_id] = known = known + 1
            if known <= limits.max_count + max(1, limits.max_count // 10):
                return
        if file_id in self._pruning:
            return

        def run() -> None:
            try:
                kept = self._prune(
                    file_id, self._versions_of(file_id), limits, os.stat(path).st_ino
                )
                self._kept_counts[file_id] = kept
            except OSError as exc:
                log.warning("storage %s: versions of %s not pruned: %s", self.name, file_id, exc)

        task = asyncio.get_running_loop().create_task(asyncio.to_thread(run))
        self._pruning[file_id] = task
        task.add_done_callback(lambda _: self._pruning.pop(file_id, None))

    async def finish_pruning(self) -> None:
        """Wait for the pruning passes under way (at close, and in tests)."""
        while self._pruning:
            await asyncio.gather(*list(self._pruning.values()), return_exceptions=True)

    def _replace_sync(
        self,
        file_id: str,
        staged: Path,
        path: Path,
        mtime_ns: int,
        previous: os.stat_result,
        limits: VersionLimits,
    ) -> bool:
        keep, note = decide(keeping.read_note(path), current_note(), limits.autosave_window)
        keeping.write_note(staged, note)
        if not keep:
            _commit(staged, path, mtime_ns, False, True)
            return False
        os.chmod(staged, previous.st_mode & 0o7777)
        os.utime(staged, ns=(mtime_ns, mtime_ns))
        folder = self._versions_of(file_id)
        if not keeping.replace_keeping(staged, path, folder, previous.st_mtime_ns):
            log.warning(
                "storage %s: the versions folder of %s cannot be used (on another filesystem "
                "than the file, or not writable); the save landed without keeping the "
                "previous content",
                self.name,
                file_id,
            )
            return False
        return True

    def _prune(self, file_id: str, folder: Path, limits: VersionLimits, inode: int) -> int:
        """Drop what is beyond the limits; answers how many versions remain."""
        kept, dropped = keeping.prune(
            folder, limits.max_count, limits.max_age, limits.max_bytes, time.time_ns(), inode
        )
        for reason, count in dropped.items():
            log.info(
                "storage %s: %d version(s) of %s dropped (%s limit)",
                self.name,
                count,
                file_id,
                reason,
            )
            self.version_events.dropped(reason, count)
        return kept

    async def delete(self, file_id: str) -> None:
        """A deleted file takes its versions along: nothing could reach them any more, and
        they would hold their bytes for ever."""
        await super().delete(file_id)
        if self.version_limits is not None:
            await asyncio.to_thread(shutil.rmtree, self._versions_of(file_id), True)

    def _require_versions(self) -> VersionLimits:
        if self.version_limits is None:
            raise NotFound("This storage keeps no versions")
        return self.version_limits

    async def list_versions(self, file_id: str) -> list[VersionInfo]:
        limits = self._require_versions()
        _, st = await self._where(file_id)
        folder = self._versions_of(file_id)

        def scan() -> list[VersionInfo]:
            self._kept_counts[file_id] = self._prune(file_id, folder, limits, st.st_ino)
            return [entry.info for entry in keeping.entries(folder, st.st_ino)]

        return await asyncio.to_thread(scan)

    async def _version_path(self, file_id: str, version_id: str) -> Path:
        self._require_versions()
        await self._where(file_id)
        if not version_id.isdigit() or len(version_id) > 24:
            raise NotFound("Version not found")
        return self._versions_of(file_id) / version_id

    async def open_version(self, file_id: str, version_id: str) -> FileContent:
        path = await self._version_path(file_id, version_id)

        def _open() -> tuple[int, os.stat_result]:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            return fd, os.fstat(fd)

        try:
            fd, st = await asyncio.to_thread(_open)
        except FileNotFoundError:
            raise NotFound("Version not found") from None
        except OSError as exc:
            raise os_error(exc, "read") from None
        if st.st_mtime_ns != int(version_id):  # a save still under way, or one a crash cut
            os.close(fd)
            raise NotFound("Version not found")
        current = await self.stat(file_id)
        stat = dataclasses.replace(
            current,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            version=f"{st.st_mtime_ns:x}.{st.st_ino:x}.{st.st_size:x}",
            read_only_reason="A previous version is read-only",
        )
        return LocalContent(stat, fd)

    async def restore_version(
        self, file_id: str, version_id: str, *, expected_version: str | None = None
    ) -> FileStat:
        """Copy the version into a staged file (the version stays kept) and commit it: the
        replaced content is kept like any save's, so a restore loses nothing."""
        content = await self.open_version(file_id, version_id)
        current = await self.stat(file_id)
        if current.read_only_reason:
            await content.close()
            raise Forbidden(current.read_only_reason)
        folder = await self.staging_folder(file_id)
        try:
            temp = await TempFile.create(folder)
        except OSError as exc:
            await content.close()
            raise os_error(exc, "write") from None
        try:
            assert content.local_path is not None
            source = content.local_path
            await temp.in_thread(lambda fd: keeping.copy_into(source, fd))
            with noting(SaveNote(author=current_note().author, kind="restore")):
                return await self.commit(file_id, temp.path, expected_version=expected_version)
        except OSError as exc:
            raise os_error(exc, "write") from None
        finally:
            await content.close()
            temp.discard()
