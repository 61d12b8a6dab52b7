"""The storage contract: every backend (local, WebDAV on wsgidav, CS3 on the gateway) passes it.

The WOPI layer relies on exactly these behaviours, whatever the storage behind a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from tests.mesh.conftest import Backend
from wopibridge.errors import FileExists, Forbidden, NotFound, VersionConflict
from wopibridge.storage.base import FileContent, canonical_time

URL_SAFE = re.compile(r"^[A-Za-z0-9_~-]{1,512}$")
UNICODE_NAME = "Ünïcødé 文件 ✓ · draft.docx"


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(content: FileContent) -> bytes:
    try:
        if content.local_path is not None:
            return content.local_path.read_bytes()
        assert content.chunks is not None
        return b"".join([block async for block in content.chunks])
    finally:
        await content.close()


def put(backend: Backend, name: str, data: bytes) -> None:
    path = backend.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def test_stat(backend: Backend) -> None:
    put(backend, "docs/report.docx", b"hello world")
    stat = await backend.storage.resolve("docs/report.docx")
    assert stat.name == "report.docx"
    assert stat.folder == "docs"
    assert stat.size == 11
    assert URL_SAFE.match(stat.file_id)
    assert stat.version and stat.identity
    assert stat.last_modified == canonical_time(stat.mtime_ns)
    real = os.stat(backend.root / "docs/report.docx").st_mtime
    assert abs(stat.mtime_ns / 1e9 - real) < 2
    again = await backend.storage.stat(stat.file_id)
    assert (again.file_id, again.version, again.identity) == (
        stat.file_id,
        stat.version,
        stat.identity,
    )
    assert (await backend.storage.resolve(stat.file_id)).identity == stat.identity


async def test_read_streams_the_content(backend: Backend) -> None:
    data = os.urandom(700_000)
    put(backend, "blob.bin", data)
    stat = await backend.storage.resolve("blob.bin")
    content = await backend.storage.open_read(stat.file_id)
    assert content.stat.version == stat.version
    assert content.chunks is not None or content.local_path is not None
    assert await read_all(content) == data


async def test_write_with_precondition(backend: Backend) -> None:
    put(backend, "a.txt", b"one")
    first = await backend.storage.resolve("a.txt")
    second = await backend.storage.write(
        first.file_id, chunks_of(b"tw", b"o"), expected_version=first.version
    )
    assert second.file_id == first.file_id
    assert second.version != first.version
    assert second.identity == first.identity
    assert (backend.root / "a.txt").read_bytes() == b"two"
    with pytest.raises(VersionConflict):
        await backend.storage.write(
            first.file_id, chunks_of(b"three"), expected_version=first.version
        )
    assert (backend.root / "a.txt").read_bytes() == b"two"
    third = await backend.storage.write(first.file_id, chunks_of(b"two"))
    assert third.version != second.version, "same bytes, but a new version"


async def test_interrupted_write_keeps_the_old_content(backend: Backend) -> None:
    put(backend, "keep.txt", b"precious")

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("the editor went away")

    stat = await backend.storage.resolve("keep.txt")
    with pytest.raises(Exception):  # noqa: B017 - any failure, as long as nothing is lost
        await backend.storage.write(stat.file_id, failing(), expected_version=stat.version)
    assert (backend.root / "keep.txt").read_bytes() == b"precious"
    assert (await backend.storage.stat(stat.file_id)).version == stat.version


async def test_create_without_overwrite(backend: Backend) -> None:
    put(backend, "dir/base.docx", b"base")
    base = await backend.storage.resolve("dir/base.docx")
    made = await backend.storage.create(base.file_id, "new.docx", chunks_of(b"new"))
    assert made.name == "new.docx" and made.folder == "dir" and made.size == 3
    assert made.file_id != base.file_id
    with pytest.raises(FileExists):
        await backend.storage.create(base.file_id, "new.docx", chunks_of(b"other"))
    assert (backend.root / "dir/new.docx").read_bytes() == b"new"
    replaced = await backend.storage.create(
        base.file_id, "new.docx", chunks_of(b"replaced"), overwrite=True
    )
    assert replaced.size == 8
    assert (backend.root / "dir/new.docx").read_bytes() == b"replaced"
    found = await backend.storage.find_sibling(base.file_id, "new.docx")
    assert found is not None and found.size == 8
    assert await backend.storage.find_sibling(base.file_id, "absent.docx") is None


async def test_rename_keeps_the_id(backend: Backend) -> None:
    put(backend, "old.docx", b"content")
    put(backend, "taken.docx", b"other")
    stat = await backend.storage.resolve("old.docx")
    renamed = await backend.storage.rename(stat.file_id, "new name.docx")
    assert renamed.name == "new name.docx"
    assert renamed.file_id == stat.file_id
    assert (await backend.storage.stat(stat.file_id)).name == "new name.docx"
    assert not (backend.root / "old.docx").exists()
    assert (backend.root / "new name.docx").read_bytes() == b"content"
    with pytest.raises(FileExists):
        await backend.storage.rename(stat.file_id, "taken.docx")
    assert (backend.root / "taken.docx").read_bytes() == b"other"


async def test_delete(backend: Backend) -> None:
    put(backend, "gone.txt", b"bye")
    stat = await backend.storage.resolve("gone.txt")
    await backend.storage.delete(stat.file_id)
    assert not (backend.root / "gone.txt").exists()
    with pytest.raises(NotFound):
        await backend.storage.stat(stat.file_id)
    with pytest.raises(NotFound):
        await backend.storage.delete(stat.file_id)


async def test_metadata(backend: Backend) -> None:
    put(backend, "m.docx", b"meta")
    stat = await backend.storage.resolve("m.docx")
    assert await backend.storage.get_meta(stat.file_id, "userinfo") is None
    await backend.storage.set_meta(stat.file_id, "userinfo", '{"theme": "dark", "é": 1}')
    await backend.storage.set_meta(stat.file_id, "lastwriter", "Marie Curie")
    assert await backend.storage.get_meta(stat.file_id, "userinfo") == '{"theme": "dark", "é": 1}'
    assert await backend.storage.get_meta(stat.file_id, "lastwriter") == "Marie Curie"
    await backend.storage.set_meta(stat.file_id, "lastwriter", "Lise Meitner")
    assert await backend.storage.get_meta(stat.file_id, "lastwriter") == "Lise Meitner"


async def test_unicode_names(backend: Backend) -> None:
    put(backend, f"Fächer/{UNICODE_NAME}", b"unicode")
    stat = await backend.storage.resolve(f"Fächer/{UNICODE_NAME}")
    assert stat.name == UNICODE_NAME and stat.folder == "Fächer"
    assert URL_SAFE.match(stat.file_id)
    assert await read_all(await backend.storage.open_read(stat.file_id)) == b"unicode"
    await backend.storage.write(stat.file_id, chunks_of(b"still unicode"))
    renamed = await backend.storage.rename(stat.file_id, "Ωmega ü.docx")
    assert renamed.name == "Ωmega ü.docx"
    assert (backend.root / "Fächer/Ωmega ü.docx").read_bytes() == b"still unicode"


async def test_missing_files(backend: Backend) -> None:
    put(backend, "exists.txt", b"x")
    stat = await backend.storage.resolve("exists.txt")
    (backend.root / "exists.txt").unlink()
    with pytest.raises(NotFound):
        await backend.storage.resolve("no/such/file.txt")
    with pytest.raises(NotFound):
        await backend.storage.stat(stat.file_id)
    with pytest.raises(NotFound):
        await backend.storage.open_read(stat.file_id)
    with pytest.raises(NotFound):
        await backend.storage.write(stat.file_id, chunks_of(b"y"))
    with pytest.raises(NotFound):
        await backend.storage.rename(stat.file_id, "other.txt")
    assert not (backend.root / "exists.txt").exists()
    with pytest.raises(NotFound):
        await backend.storage.stat("bm9uc2Vuc2U")


async def test_permission_denied(backend: Backend) -> None:
    if backend.readonly is None:
        pytest.skip("local: covered by tests/test_local_permissions.py, which drops root's rights")
    put(backend, "ro.txt", b"read only")
    stat = await backend.readonly.resolve("ro.txt")
    assert await read_all(await backend.readonly.open_read(stat.file_id)) == b"read only"
    with pytest.raises(Forbidden):
        await backend.readonly.write(stat.file_id, chunks_of(b"no"))
    with pytest.raises(Forbidden):
        await backend.readonly.delete(stat.file_id)
    assert (backend.root / "ro.txt").read_bytes() == b"read only"


@pytest.mark.slow
async def test_large_file_is_streamed(backend: Backend) -> None:
    """64 MiB through the storage both ways while Python allocates far less than that."""
    block = os.urandom(1024 * 1024)
    blocks = 64
    put(backend, "big.bin", b"")
    stat = await backend.storage.resolve("big.bin")

    async def source() -> AsyncIterator[bytes]:
        for _ in range(blocks):
            yield block

    tracemalloc.start()
    try:
        written = await backend.storage.write(stat.file_id, source())
        digest = hashlib.sha256()
        size = 0
        content = await backend.storage.open_read(stat.file_id)
        try:
            if content.local_path is not None:
                with content.local_path.open("rb") as handle:
                    while chunk := handle.read(1024 * 1024):
                        digest.update(chunk)
                        size += len(chunk)
            else:
                assert content.chunks is not None
                async for chunk in content.chunks:
                    digest.update(chunk)
                    size += len(chunk)
        finally:
            await content.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert written.size == size == blocks * len(block)
    assert digest.digest() == hashlib.sha256(block * blocks).digest()
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB"


async def test_metadata_keys_with_any_characters(backend: Backend) -> None:
    put(backend, "k.docx", b"k")
    stat = await backend.storage.resolve("k.docx")
    key = "userinfo:einstein@idp/ü"
    await backend.storage.set_meta(stat.file_id, key, "value")
    assert await backend.storage.get_meta(stat.file_id, key) == "value"
    assert await backend.storage.get_meta(stat.file_id, "userinfo:other@idp") is None
