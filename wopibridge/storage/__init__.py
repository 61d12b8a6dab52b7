"""Where files live: the Storage contract and its backends (local, WebDAV, CS3)."""
