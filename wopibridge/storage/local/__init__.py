"""Local POSIX storage, one module per job: ``tree`` (paths, stat, OS errors), ``identity``
(finding a file by id), ``reading``, ``staging`` (temporary files), ``writing`` (atomic
replaces, creates, renames, deletes) and ``storage`` (:class:`LocalStorage`, which composes them
with the metadata and lifecycle calls)."""

from wopibridge.storage.local.storage import LocalStorage

__all__ = ["LocalStorage"]
