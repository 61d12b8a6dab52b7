"""Who took a Collabora lock, so that a Collabora whose document crashed is not locked out.

Collabora makes one lock id per loaded document (``"cool-lock"`` + 8 hex), shared by all views
of it on that server, and sends its server's id (``X-COOL-WOPI-ServerId``) on every request
(``LockContext::initSupportsLocks``, ``WopiStorage::initHttpRequest``). When a document's process
crashes, Collabora loads the document again with a **new** lock id and sends LOCK; the old lock
still holds for up to 30 minutes, so without help the user gets the document read-only.

It is safe to hand the lock over when the LOCK comes from the **same Collabora server** (same
``X-COOL-WOPI-ServerId``) for the same file with another ``cool-lock`` id: that server keeps one
document per file, whose views all share one lock id, so a second id means the document that held
the first is gone, and with it the only writer that could use it. The same user and the same app
are required as well, so no other person's session ever takes a lock over. A restarted
Collabora (a new server id), another server of a cluster, or any other editor is never trusted
this way: the lock then expires as usual.

The record (lock id, user, app, server id) is kept in the app's lock store next to the lock,
under the lock's key with :data:`SUFFIX` (not the owner-lock token's suffix,
``locks.ownerlocks.TOKEN_SUFFIX``), for as long as the lock.
"""

from __future__ import annotations

import json
import logging

from wopibridge.locks.base import LOCK_TTL_SECONDS, LockStore
from wopibridge.security.tokens import AccessToken

log = logging.getLogger("wopibridge.locks")

SUFFIX = "\0editor"
PREFIX = "cool-lock"
SERVER_HEADER = "X-COOL-WOPI-ServerId"


def _record(lock_id: str, access: AccessToken, server: str) -> str:
    return json.dumps(
        {"lock": lock_id, "user": access.user_id, "app": access.app, "server": server}
    )


async def remember(
    store: LockStore, key: str, lock_id: str, access: AccessToken, server: str | None
) -> None:
    """After a granted LOCK: note who holds a Collabora lock (nothing for other editors)."""
    if not server or not lock_id.startswith(PREFIX):
        return
    value = _record(lock_id, access, server)
    owner_key = key + SUFFIX
    result = await store.lock(owner_key, value, LOCK_TTL_SECONDS)
    if not result.ok:
        await store.unlock(owner_key, result.current)
        await store.lock(owner_key, value, LOCK_TTL_SECONDS)


async def taken_over(
    locks: LockStore,
    store: LockStore,
    key: str,
    current: str,
    lock_id: str,
    access: AccessToken,
    server: str | None,
) -> bool:
    """Hand ``current`` over to ``lock_id`` when both are Collabora's and the record shows the
    same user, app and server holding ``current`` (see the module); ``True`` when it was."""
    if not server or not current.startswith(PREFIX) or not lock_id.startswith(PREFIX):
        return False
    try:
        record = json.loads(await store.get(key + SUFFIX) or "{}")
    except ValueError:
        return False
    if record != json.loads(_record(current, access, server)):
        return False
    result = await locks.unlock_and_relock(key, current, lock_id)
    if result.ok:
        log.info(
            "lock %s taken over by %s: the same Collabora server (%s) reloaded the document "
            "for the same user, so the old lock had no holder left",
            current,
            lock_id,
            server,
        )
    return result.ok
