"""WebDAV storage: :mod:`.config` (the table), :mod:`.client` (the protocol), :mod:`.storage`
(the Storage contract mapped onto it)."""

from wopibridge.storage.webdav.config import WebDavConfig
from wopibridge.storage.webdav.storage import WebDavStorage, build, decode_id, encode_id

__all__ = ["WebDavConfig", "WebDavStorage", "build", "decode_id", "encode_id"]
