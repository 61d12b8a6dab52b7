"""WebDAV storage: :mod:`.config` (the table), :mod:`.client` (the protocol), :mod:`.storage`
(the Storage contract mapped onto it: :mod:`.ids` finds files, :mod:`.writing` changes them,
:mod:`.meta` keeps their metadata)."""

from wopibridge.storage.webdav.config import WebDavConfig
from wopibridge.storage.webdav.ids import decode_id, encode_id
from wopibridge.storage.webdav.storage import WebDavStorage, build

__all__ = ["WebDavConfig", "WebDavStorage", "build", "decode_id", "encode_id"]
