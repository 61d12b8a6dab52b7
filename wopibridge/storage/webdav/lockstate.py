"""What every view of one WebDAV storage shares about its WebDAV locks: where this site keeps
their tokens, whether the server takes locks at all, and which file each lock key names.

The WOPI lock key is the file's identity (``<site>:<oc:fileid or first path>``); a WebDAV
``LOCK`` needs the file's current URL. Every WOPI lock call stats the file first on the same
instance, so the identity → file id pairs seen by the latest stats are remembered here (a
bounded map), and a kept token carries the path its lock was taken on: any instance of the
site can refresh, use and release a lock another one took.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from wopibridge.locks.base import LockStore
from wopibridge.locks.kepttokens import TOKEN_SUFFIX

log = logging.getLogger("wopibridge.storage.webdav")

_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class KeptToken:
    """A WebDAV lock token this site holds, and the path it was taken on."""

    token: str
    path: str

    def encode(self) -> str:
        return f"{self.token} {quote(self.path, safe='/')}"

    @classmethod
    def decode(cls, value: str) -> KeptToken | None:
        token, _, path = value.partition(" ")
        return cls(token, unquote(path)) if token and path else None


@dataclass
class DavLockState:
    """Shared by a storage and all its per-user views.

    ``tokens`` is a lock store seen by every instance of this site (Redis, or the process'
    memory with ``memory://``); ``site`` names this site (``server.public_url``) in the lock
    owner; ``enabled`` is the table's ``locks`` switch; ``refused`` says why the server's locks
    are not used (``""`` while they are).
    """

    tokens: LockStore
    site: str
    enabled: bool = True
    refused: str = ""
    _files: OrderedDict[str, str] = field(default_factory=OrderedDict)

    @property
    def active(self) -> bool:
        return self.enabled and not self.refused

    def mode(self) -> str:
        """One line for ``/ready`` and the status page."""
        if not self.enabled:
            return "site lock store only (locks = false)"
        if self.refused:
            return f"site lock store only ({self.refused})"
        return "WebDAV LOCK at the owner"

    def refuse(self, name: str, why: str) -> None:
        """The server does not take locks: say so once, use the site's store from now on."""
        if not self.refused:
            self.refused = why
            log.warning(
                "storage %s: %s; WOPI locks are kept in the site's lock store only "
                "(other sites and WebDAV clients will not see them)",
                name,
                why,
            )

    def seen(self, identity: str, file_id: str) -> None:
        self._files[identity] = file_id
        self._files.move_to_end(identity)
        while len(self._files) > _REMEMBERED:
            self._files.popitem(last=False)

    def file_of(self, identity: str) -> str | None:
        return self._files.get(identity)

    async def kept(self, identity: str) -> KeptToken | None:
        """The token this site keeps for ``identity``, if any."""
        if not self.active:
            return None
        return KeptToken.decode(await self.tokens.get(identity + TOKEN_SUFFIX))

    async def replace(self, identity: str, old: KeptToken, new: KeptToken, ttl: float) -> None:
        """Swap the kept token (a lock taken again at a file's new path after a rename)."""
        marker = identity + TOKEN_SUFFIX
        await self.tokens.unlock(marker, old.encode())
        await self.tokens.lock(marker, new.encode(), ttl)

    async def forget(self, identity: str, kept: KeptToken) -> None:
        await self.tokens.unlock(identity + TOKEN_SUFFIX, kept.encode())
