"""A seeded fuzz of interleaved PutFile, RenameFile, DeleteFile, Lock and Unlock over a fleet of
``wopibridge`` processes on one local folder, checked against the disk after every step.

Workers own disjoint sets of files and run at once, so steps on different files interleave on
every instance; within a step, one to three operations on one file are sent at the same time
to random instances (a save racing a rename, a delete racing a rename, a save racing an
unlock). After each step the folder is read directly:

- the file's id is carried by exactly one file (none once a delete was answered 200), whose
  bytes are the last body a PutFile was answered 200 for (one of them when two raced), and
  GetFile by the id through any instance returns those bytes;
- a body answered with anything but 200 is not in the file;

and at the end: every body a lock holder was refused is in a kept copy (beside the file or in
an instance's recovery folder), no file carries the id of a deleted file nor shares an id with
another one, and once every lock is released no ``.~lock.*#`` file is left.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fleet import Fleet, open_on, wopi
from tests.support.folder import backend_id, carried_id, carriers, documents, lock_files

#: Statuses an operation may answer in the fuzz (never a 5xx).
ALLOWED = {
    "PUT": {200, 404, 409},
    "RENAME_FILE": {200, 404, 409},
    "DELETE": {200, 404, 409},
    "LOCK": {200, 409, 404},
    "UNLOCK": {200, 409, 404},
}


@dataclass
class Doc:
    src: str
    token: str
    file_id: str
    content: bytes
    lock: str = ""
    deleted: bool = False


@dataclass
class Tally:
    operations: int = 0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    refused_with_lock: list[bytes] = field(default_factory=list)
    deleted_ids: set[str] = field(default_factory=set)

    def count(self, op: str, status: int) -> None:
        self.operations += 1
        per = self.statuses.setdefault(op, {})
        per[status] = per.get(status, 0) + 1


class FleetFuzz:
    def __init__(
        self, fleet: Fleet, data: Path, seed: int, operations: int, workers: int = 4
    ) -> None:
        self.fleet = fleet
        self.data = data
        self.rng = random.Random(seed)
        self.target = operations
        self.workers = workers
        self.tally = Tally()
        self._names = 0
        self._bodies = 0

    def _name(self) -> str:
        self._names += 1
        return f"doc{self._names}"

    async def _new_doc(self, session: aiohttp.ClientSession) -> Doc:
        name = self._name()
        (self.data / f"{name}.odt").write_bytes(b"v0 " + name.encode())
        src, token, _ = await open_on(
            session,
            self.fleet,
            self.rng.randrange(len(self.fleet)),
            f"{name}.odt",
            appname="collabora",
        )
        return Doc(src, token, backend_id(src), b"v0 " + name.encode())

    def _url(self, doc: Doc) -> str:
        return self.fleet.url_on(doc.src, self.rng.randrange(len(self.fleet)))

    async def _call(
        self, session: aiohttp.ClientSession, doc: Doc, op: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], bytes]:
        result = await wopi(
            session, self._url(doc), doc.token, op, headers, body, contents=op == "PUT"
        )
        self.tally.count(op, result[0])
        assert result[0] in ALLOWED[op], (op, result)
        return result

    def _plan(self, doc: Doc) -> list[tuple[str, dict[str, str], bytes | None]]:
        """The operations of one step on ``doc``: at most one that changes the lock, and a
        delete only on an unlocked file, so every answer has one right value."""
        held = {"X-WOPI-Lock": doc.lock} if doc.lock else {}
        roll = self.rng.random()
        if roll < 0.06 and not doc.lock:
            return [
                ("DELETE", {}, None),
                ("RENAME_FILE", {"X-WOPI-RequestedName": self._name()}, None),
            ]
        plan: list[tuple[str, dict[str, str], bytes | None]] = []
        if roll < (0.15 if doc.lock else 0.6):  # editors mostly save while they hold the lock
            if doc.lock:
                plan.append(("UNLOCK", {"X-WOPI-Lock": doc.lock}, None))
            else:
                plan.append(("LOCK", {"X-WOPI-Lock": f"L{self.rng.randrange(10**9)}"}, None))
        elif roll < 0.3 and doc.lock:
            plan.append(("LOCK", {"X-WOPI-Lock": "intruder"}, None))
        for _ in range(self.rng.randrange(1, 3)):
            # one rename at a time per file, as one editor session renames: two renames of
            # one file racing each other may leave a lock file at the name between, which
            # only the periodic sweep removes
            renaming = any(op == "RENAME_FILE" for op, _, _ in plan)
            if renaming or self.rng.random() < 0.65:
                self._bodies += 1
                plan.append(("PUT", dict(held), f"body {self._bodies} ".encode() * 3))
            else:
                name = {"X-WOPI-RequestedName": self._name(), **held}
                plan.append(("RENAME_FILE", name, None))
        return plan

    async def _step(self, session: aiohttp.ClientSession, doc: Doc) -> None:
        plan = self._plan(doc)
        results = await asyncio.gather(
            *(self._call(session, doc, op, headers, body) for op, headers, body in plan)
        )
        landed = [
            body
            for (op, _, body), (status, _, _) in zip(plan, results, strict=True)
            if op == "PUT" and status == 200
        ]
        for (op, headers, body), (status, answer, _) in zip(plan, results, strict=True):
            if op == "LOCK":
                if headers["X-WOPI-Lock"] == "intruder":
                    assert (status, answer.get("X-WOPI-Lock")) == (409, doc.lock)
                else:
                    assert status == 200, answer
                    doc.lock = headers["X-WOPI-Lock"]
            elif op == "UNLOCK":
                assert status == 200, answer
                doc.lock = ""
            elif op == "DELETE" and status == 200:
                doc.deleted = True
            elif op == "PUT" and status == 409 and headers.get("X-WOPI-Lock"):
                assert body is not None
                self.tally.refused_with_lock.append(body)
        held = carriers(self.data, doc.file_id)
        if doc.deleted:
            self.tally.deleted_ids.add(doc.file_id)
            assert held == [], (doc.file_id, held)
            status, _, _ = await wopi(session, self._url(doc), doc.token)
            assert status == 404
            return
        assert len(held) == 1, (doc.file_id, plan, results, held)
        content = held[0].read_bytes()
        if landed:
            assert content in landed, (plan, results)
            doc.content = content
        else:
            assert content == doc.content, (plan, results)
        for (op, _, body), (status, _, _) in zip(plan, results, strict=True):
            if op == "PUT" and status != 200:
                assert content != body, "a save answered as refused landed"
        status, _, got = await wopi(session, self._url(doc), doc.token, contents=True)
        assert (status, got) == (200, doc.content)

    async def _worker(self, session: aiohttp.ClientSession, docs: list[Doc]) -> None:
        while self.tally.operations < self.target:
            index = self.rng.randrange(len(docs))
            if docs[index].deleted:
                docs[index] = await self._new_doc(session)
            await self._step(session, docs[index])

    async def run(self) -> Tally:
        async with aiohttp.ClientSession() as session:
            pools = [[await self._new_doc(session) for _ in range(3)] for _ in range(self.workers)]
            await asyncio.gather(*(self._worker(session, docs) for docs in pools))
            for doc in (d for docs in pools for d in docs if d.lock and not d.deleted):
                status, _, _ = await wopi(
                    session, self._url(doc), doc.token, "UNLOCK", {"X-WOPI-Lock": doc.lock}
                )
                assert status == 200
            live = {d.file_id for docs in pools for d in docs if not d.deleted}
        # lock-file work runs a tenth of a second after the answer: give a busy machine time
        for _ in range(50):
            if not lock_files(self.data):
                break
            await asyncio.sleep(0.1)
        self.check_end(live)
        return self.tally

    def check_end(self, live: set[str]) -> None:
        left = {
            p.name: (p.read_bytes().split(b",")[-1], carried_id(p))
            for p in documents(self.data)
            if p.name.startswith(".~lock.")
        }
        assert not left, f"lock files no WOPI lock backs: {left}, {self.tally.deleted_ids}"
        ids = [carried_id(path) for path in documents(self.data)]
        present = [i for i in ids if i is not None]
        assert len(present) == len(set(present)), "two files carry one id"
        assert not set(present) & self.tally.deleted_ids, "a deleted file's id lives on"
        assert live <= set(present)
        kept = {p.read_bytes() for p in documents(self.data) if "(conflict " in p.name}
        for server in self.fleet.servers:
            recovery = server.workdir / "state" / "recovery"
            if recovery.is_dir():
                kept |= {p.read_bytes() for p in recovery.iterdir() if p.is_file()}
        lost = [body for body in self.tally.refused_with_lock if body not in kept]
        assert lost == [], f"{len(lost)} refused saves kept nowhere"
