"""WOPI file ids: ``<storage name>.<backend id>``.

The editor treats the id as opaque; wopibridge needs it to say which configured storage a file
lives on. Both parts are URL-safe (storage names are ``[a-z0-9-]``, backend ids are URL-safe by
contract), so the id needs no escaping inside a WOPISrc. A backend id may run to 6,000
characters: WebDAV ids are the base64 of a path, and a deep path of long names is still a file.
"""

from __future__ import annotations

import re

from wopibridge.errors import NotFound

_STORAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_BACKEND_ID = re.compile(r"^[A-Za-z0-9_~-]{1,6000}$")


def valid_storage_name(name: str) -> bool:
    return bool(_STORAGE_NAME.match(name))


def encode(storage: str, backend_id: str) -> str:
    return f"{storage}.{backend_id}"


def decode(file_id: str) -> tuple[str, str]:
    """Split a WOPI file id; anything malformed is an unknown file (404)."""
    storage, sep, backend_id = file_id.partition(".")
    if not sep or not _STORAGE_NAME.match(storage) or not _BACKEND_ID.match(backend_id):
        raise NotFound("File not found")
    return storage, backend_id
