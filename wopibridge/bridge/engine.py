"""The bridge engine: open documents in an editor, save them back, let go of them.

One :class:`Bridge` per wopibridge instance. Its loop wakes every ``tick`` seconds, walks the
open documents in the shared state and processes those whose save claim it holds or can take
(see :mod:`wopibridge.bridge.state`). Processing a document:

1. every ``poll_interval``: ask the editor for its revision and connected browsers; a new
   revision marks the document dirty;
2. refresh the WOPI lock (the bridge holds it like any editor, under its own lock id);
3. save when dirty and ``save_interval`` passed since the last save, or at once when the last
   user left or a save was requested (CodiMD's webhook);
4. once the last user left and everything is saved, wait ``unlock_delay``, then drop the
   document and release the lock.

A save goes through the same Storage and LockStore objects as WOPI's PutFile, under the same
rule: only while the bridge's lock holds the file. Unchanged content (same digest) is never
written. When the lock was lost or the file changed outside the bridge, the content goes to a
conflict copy next to the file and later saves follow it there; nothing is ever dropped. A
save that fails otherwise is retried with exponential backoff. The reads and writes of the
files themselves are in :mod:`wopibridge.bridge.files`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import ClientSession

from wopibridge.apps.bridged import BridgedEditor, Loaded
from wopibridge.bridge.docid import document_id, lock_id
from wopibridge.bridge.files import digest_of, read_file, write_save
from wopibridge.bridge.state import BridgeStore, DocState
from wopibridge.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    WopiError,
)
from wopibridge.instruments import Instruments
from wopibridge.locks.base import LockStore
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.registry import StorageRegistry

log = logging.getLogger("wopibridge.bridge")

LOCK_REFRESH_SECONDS = 300.0
MAX_BACKOFF_SECONDS = 300.0
#: The longest pause between sweeps while the state store fails. A Sentinel or Cluster
#: failover takes a few seconds; a pause that grew to 30 s over it held every bridged save for
#: up to 30 s after the store was back. A failed sweep costs one refused call.
MAX_SWEEP_PAUSE = 3.0


@dataclass
class Bridge:
    editors: Mapping[str, BridgedEditor]
    store: BridgeStore
    storages: StorageRegistry
    locks: LockStore
    http: ClientSession
    key: bytes
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)
    instruments: Instruments | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _polled: dict[str, float] = field(default_factory=dict)
    _refreshed: dict[str, float] = field(default_factory=dict)
    _held: set[str] = field(default_factory=set)

    @property
    def tick(self) -> float:
        return min([1.0, *(e.config.poll_interval for e in self.editors.values())])

    @property
    def lease(self) -> float:
        """How long a save claim outlives its holder's last sign of life."""
        return max(5 * self.tick, 3.0)

    @property
    def held(self) -> frozenset[str]:
        """The documents this instance is saving now."""
        return frozenset(self._held)

    def wake(self) -> None:
        self._wake.set()

    def editor(self, name: str) -> BridgedEditor:
        # Reva's ``appname`` is a display name ("Etherpad"); configured names are lower case.
        editor = self.editors.get(name) or self.editors.get(name.lower())
        if editor is None:
            raise NotFound(f"No bridged app is called {name!r}")
        return editor

    # --- opening -------------------------------------------------------------------------

    async def open(self, access: AccessToken, app_name: str) -> str:
        """Load the file into the editor (or join the open document); the editor URL."""
        editor = self.editor(app_name)
        storage, backend_id = self.storages.for_file(access.file_id)
        stat = await storage.stat(backend_id)
        if not editor.handles(stat.extension):
            raise BadRequest(f"{editor.name} does not open {stat.extension or 'these'} files")
        if stat.size > editor.config.max_size:
            raise PayloadTooLarge(f"The file is too large for {editor.name}")
        docid = document_id(self.key, editor.name, stat.identity)
        user = access.user_name or access.user_id
        state = await self.store.get(docid)
        if not access.can_write:
            live = Loaded(state.ref, dict(state.meta)) if state is not None else None
            content = b""
            if live is None:
                content, stat = await read_file(
                    storage, backend_id, editor.config.max_size, editor.name
                )
            return await editor.view_url(self.http, docid, stat.name, content, live, user)
        if state is not None:
            await self.store.add_user(docid, access.user_id, user)
            state = await self.store.get(docid)
            if state is not None:
                self.wake()
                return editor.edit_url(Loaded(state.ref, dict(state.meta)), user)
        content, stat = await read_file(storage, backend_id, editor.config.max_size, editor.name)
        loaded = await editor.load(self.http, docid, stat.name, content)
        revision = await editor.revision(self.http, loaded)
        lock = lock_id(docid)
        result = await self.locks.lock(stat.identity, lock)
        if not result.ok:
            raise Conflict(
                "The file is being edited in another application; try again when it is closed"
            )
        now = time.time()
        await self.store.add_user(docid, access.user_id, user)
        created = await self.store.create(
            DocState(
                docid=docid,
                app=editor.name,
                origin_file_id=access.file_id,
                file_id=access.file_id,
                identity=stat.identity,
                name=stat.name,
                lock_id=lock,
                version=stat.version,
                digest=digest_of(content),
                ref=loaded.ref,
                meta=dict(loaded.meta),
                revision=revision,
                writer_id=access.user_id,
                writer_name=user,
                opened_at=now,
                last_save=now,
                last_activity=now,
            )
        )
        self.wake()
        if not created:
            # Another instance loaded the same file at the same moment: join its document.
            winner = await self.store.get(docid)
            if winner is not None:
                return editor.edit_url(Loaded(winner.ref, dict(winner.meta)), user)
        log.info("bridge opened %s in %s as %s", access.file_id, editor.name, docid)
        return editor.edit_url(loaded, user)

    async def notify(self, docid: str, access: AccessToken, close: bool) -> DocState:
        """A save webhook: a user saved or closed; save soon, and at once if they were last."""
        state = await self.store.get(docid)
        if state is None or access.file_id not in (state.origin_file_id, state.file_id):
            raise NotFound("This document is not open in the bridge")
        if close:
            await self.store.remove_user(docid, access.user_id)
        await self.store.request_save(docid)
        self.wake()
        return state

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.sweep()
                failures = 0
            except WopiError as exc:
                failures += 1
                log.warning("bridge sweep failed: %s", exc.message)
            except Exception:
                failures += 1
                log.exception("bridge sweep failed")
            # While the state store is down, look again less and less often, but never less
            # than every MAX_SWEEP_PAUSE: saves resume within seconds of a failover's end.
            pause = self.tick
            if failures:
                pause = min(MAX_SWEEP_PAUSE, self.tick * 2.0 ** min(failures, 8))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
            self._wake.clear()

    async def sweep(self) -> None:
        for docid in await self.store.docids():
            if not await self.store.claim(docid, self.instance, self.lease):
                self._forget(docid)
                continue
            self._held.add(docid)
            try:
                await self.process(docid)
            except WopiError as exc:
                log.warning("bridge document %s: %s", docid, exc.message)
        if self.instruments is not None:
            self.instruments.open_sessions.set(len(self._held))

    def _count_save(self, outcome: str) -> None:
        if self.instruments is not None:
            self.instruments.bridge_saves.labels(outcome).inc()

    def _forget(self, docid: str) -> None:
        self._held.discard(docid)
        self._polled.pop(docid, None)
        self._refreshed.pop(docid, None)

    async def process(self, docid: str, *, final: bool = False) -> None:
        state = await self.store.get(docid)
        if state is None:
            self._forget(docid)
            return
        editor = self.editors.get(state.app)
        if editor is None:
            log.error("document %s belongs to app %r, which is not configured", docid, state.app)
            return
        cfg = editor.config
        now = time.time()
        loaded = Loaded(state.ref, dict(state.meta))
        users = await self.store.users(docid)
        requested = await self.store.take_save_request(docid) or final

        if final or now - self._polled.get(docid, 0.0) >= cfg.poll_interval:
            self._polled[docid] = now
            try:
                revision = await editor.revision(self.http, loaded)
                if revision != state.revision:
                    state.revision = revision
                    state.dirty = True
                    state.last_activity = now
                live = await editor.live_users(self.http, loaded)
            except WopiError as exc:
                log.warning("bridge document %s: editor check failed: %s", docid, exc.message)
                live = None
            if live:
                state.live_seen = True
                state.last_activity = now
            elif live == 0 and state.live_seen:
                # Every browser left the pad: the users are gone even without a webhook.
                state.live_seen = False
                for user_id in users:
                    await self.store.remove_user(docid, user_id)
                users = {}

        if users and now - state.last_activity > cfg.idle_timeout:
            log.info(
                "bridge document %s idle for %.0fs: treating it as closed", docid, cfg.idle_timeout
            )
            for user_id in users:
                await self.store.remove_user(docid, user_id)
            users = {}
        if users:
            state.left_at = 0.0
        elif not state.left_at:
            state.left_at = now
            requested = True

        if now - self._refreshed.get(docid, 0.0) >= LOCK_REFRESH_SECONDS:
            await self._refresh_lock(state)
            self._refreshed[docid] = now

        # With nobody left there is no reason to wait for the interval.
        due = not users or now - state.last_save >= cfg.save_interval
        if (requested or (state.dirty and due)) and (now >= state.next_try or final):
            await self.save(state, editor, loaded)

        if not users and not state.dirty and not final and now - state.left_at >= cfg.unlock_delay:
            await self._finish(state)
            return
        await self.store.put(state)

    async def _refresh_lock(self, state: DocState) -> None:
        result = await self.locks.refresh(state.identity, state.lock_id)
        if result.ok:
            return
        if result.current == "":
            # Expired (e.g. nobody refreshed while instances changed hands): take it again.
            await self.locks.lock(state.identity, state.lock_id)
        else:
            log.warning("bridge document %s lost its lock on %s", state.docid, state.file_id)

    async def save(self, state: DocState, editor: BridgedEditor, loaded: Loaded) -> None:
        now = time.time()
        try:
            content = await editor.fetch(self.http, loaded, state.name)
            digest = digest_of(content)
            if digest != state.digest:
                outcome = await write_save(
                    state,
                    content,
                    self.storages,
                    self.locks,
                    self.instruments,
                    self.store,
                    editor.config.max_size,
                    digest,
                )
                self._count_save(outcome)
                state.digest = digest
                log.info(
                    "bridge saved %s (%d bytes) to %s", state.docid, len(content), state.file_id
                )
        except WopiError as exc:
            self._count_save("failed")
            state.dirty = True
            state.failures += 1
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(state.failures, 12))
            state.next_try = now + delay
            log.warning(
                "bridge save of %s failed (%s); retry %d in %.0fs",
                state.docid,
                exc.message,
                state.failures,
                delay,
            )
            return
        state.dirty = False
        state.last_save = now
        state.failures = 0
        state.next_try = 0.0

    async def _finish(self, state: DocState) -> None:
        if not await self.store.delete_if_unused(state.docid):
            return  # someone opened it again meanwhile
        await self.locks.unlock(state.identity, state.lock_id)
        self._forget(state.docid)
        log.info("bridge closed %s and released the lock on %s", state.docid, state.file_id)

    async def shutdown(self) -> None:
        """Save what this instance holds and hand its documents over to the others."""
        for docid in list(self._held):
            try:
                await self.process(docid, final=True)
            except WopiError as exc:
                log.warning("bridge document %s not saved at shutdown: %s", docid, exc.message)
            with contextlib.suppress(WopiError):
                await self.store.release(docid, self.instance)
            self._forget(docid)
