"""The configured storages by name, and the mapping from WOPI file ids to them."""

from __future__ import annotations

from collections.abc import Mapping

from wopibridge.errors import NotFound
from wopibridge.storage import fileids
from wopibridge.storage.base import Storage


class StorageRegistry:
    """Looks up storages by name; ``default`` serves requests that name none."""

    def __init__(self, storages: Mapping[str, Storage], default: str) -> None:
        if default not in storages:
            raise ValueError(f"default storage {default!r} is not configured")
        self._storages = dict(storages)
        self.default_name = default

    @property
    def default(self) -> Storage:
        return self._storages[self.default_name]

    def names(self) -> list[str]:
        return list(self._storages)

    def get(self, name: str) -> Storage:
        try:
            return self._storages[name]
        except KeyError:
            raise NotFound(f"Unknown storage {name!r}") from None

    def for_file(self, wopi_file_id: str) -> tuple[Storage, str]:
        """The storage and backend id behind a WOPI file id (404 when either is unknown)."""
        name, backend_id = fileids.decode(wopi_file_id)
        storage = self._storages.get(name)
        if storage is None:
            raise NotFound("File not found")
        return storage, backend_id

    def wopi_id(self, storage: Storage, backend_id: str) -> str:
        return fileids.encode(storage.name, backend_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._storages.values())
