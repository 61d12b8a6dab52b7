"""CS3 storage (Reva, CERNBox, oCIS): :mod:`.config` (the table and ids), :mod:`.client` (the
gateway over gRPC), :mod:`.storage` (the Storage contract mapped onto it), :mod:`.locks`."""

from wopibridge.storage.cs3.config import Cs3Config, encode_resource_id, parse_reva_id
from wopibridge.storage.cs3.locks import Cs3LockStore
from wopibridge.storage.cs3.storage import Cs3Storage, build

__all__ = [
    "Cs3Config",
    "Cs3LockStore",
    "Cs3Storage",
    "build",
    "encode_resource_id",
    "parse_reva_id",
]
