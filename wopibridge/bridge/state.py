"""The bridge's shared state: which documents are open, who is in them, what was saved.

It lives in the lock store's backend (in-process, or Redis) so that with Redis every instance
sees the same documents: any instance can serve an open request for a document another one
loaded, and when the instance saving a document dies another one takes over from the stored
state. Three kinds of records per document:

* the document record (:class:`DocState`): written once by the open request that loads the
  document (``create`` only succeeds for the first), then only by the instance holding the
  document's save claim;
* the users of the document, added by open requests and removed by close webhooks on any
  instance, each change atomic on its own;
* the save claim: a lease one instance holds and renews while it keeps the document; it expires
  when that instance dies, and then another instance claims it. One document is thus saved by
  one instance at a time.

A pending save request (the CodiMD webhook) is a flag set by any instance and taken by the
claim holder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, runtime_checkable


@dataclass(slots=True)
class DocState:
    """One open document. Times are ``time.time()`` seconds."""

    docid: str
    app: str
    origin_file_id: str  # the WOPI file id that was opened
    file_id: str  # the WOPI file id saves go to (changes to the conflict copy after a conflict)
    identity: str  # the lock key of that file
    name: str  # its name, for conflict copies
    lock_id: str
    version: str  # the storage version the editor content is based on
    digest: str  # sha256 of the bytes last loaded from or written to the file
    ref: str  # the editor's document id
    meta: dict[str, str] = field(default_factory=dict)
    revision: str = ""  # the editor revision last seen
    dirty: bool = False
    writer_id: str = ""  # the last user with edit rights who opened it (conflict-copy name)
    writer_name: str = ""
    opened_at: float = 0.0
    last_save: float = 0.0
    last_activity: float = 0.0
    left_at: float = 0.0  # when the last user left; 0 while someone is in
    live_seen: bool = False  # the editor reported connected browsers at least once
    failures: int = 0
    next_try: float = 0.0
    # sha256 of a save under way: recorded before the file is written, so that when the record
    # of the write itself is lost (the instance died, or a failover rolled the record back), the
    # file's new version is still known to be the bridge's own and not a change made outside it
    pending: str = ""

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | bytes) -> DocState:
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@runtime_checkable
class BridgeStore(Protocol):
    async def create(self, state: DocState) -> bool:
        """Store a new document record; ``False`` (and nothing written) when one exists."""

    async def get(self, docid: str) -> DocState | None: ...

    async def put(self, state: DocState) -> None:
        """Replace an existing record (the claim holder's write)."""

    async def docids(self) -> list[str]:
        """Every open document."""

    async def add_user(self, docid: str, user_id: str, user_name: str) -> None: ...

    async def remove_user(self, docid: str, user_id: str) -> int:
        """Remove a user; return how many remain."""

    async def users(self, docid: str) -> dict[str, str]: ...

    async def delete_if_unused(self, docid: str) -> bool:
        """Drop the document (record, users, flags, claim) only if it has no users, atomically
        with the check; ``False`` when a user came back."""

    async def request_save(self, docid: str) -> None: ...

    async def take_save_request(self, docid: str) -> bool:
        """Whether a save was requested since the last call (and clear it)."""

    async def claim(self, docid: str, owner: str, ttl: float) -> bool:
        """Take the save claim, or renew it when ``owner`` holds it."""

    async def release(self, docid: str, owner: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
