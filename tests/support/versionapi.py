"""The version history API as a client uses it, and the scenario every storage must pass:
three saves through one instance, the history read, downloaded and restored through another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fleet import Fleet, wopi

#: the file's first content, then three saves
CONTENTS = (b"v1", b"second", b"third save", b"fourth and last")


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with session.request(
        method, url, params={"access_token": token}, headers=headers
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def versions_of(session: aiohttp.ClientSession, url: str, token: str) -> list[dict[str, Any]]:
    status, _, body = await call(session, "GET", url + "/versions", token)
    assert status == 200, body
    versions: list[dict[str, Any]] = json.loads(body)["versions"]
    return versions


async def save(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    body: bytes,
    lock: str,
    flags: dict[str, str] | None = None,
) -> None:
    headers = {"X-WOPI-Lock": lock, **(flags or {})}
    status, _, answer = await wopi(session, url, token, "PUT", headers, body, contents=True)
    assert status == 200, answer


async def three_saves_then_restore(
    session: aiohttp.ClientSession, fleet: Fleet, src: str, token: str, stored: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The file at ``src`` (stored at ``stored``) holds ``CONTENTS[0]``. Lock it, save the
    other three through instance 0; through instance 1: list (three, newest first, with their
    sizes), download each byte for byte, restore the oldest without the lock (409, nothing
    changes), then with it (the replaced content is the newest version). Answers the lists
    before and after the restore."""
    assert (await wopi(session, src, token, "LOCK", {"X-WOPI-Lock": "L"}))[0] == 200
    for body in CONTENTS[1:]:
        await save(session, src, token, body, "L")
    other = fleet.url_on(src, 1)
    versions = await versions_of(session, other, token)
    assert [v["size"] for v in versions] == [len(c) for c in reversed(CONTENTS[:3])]
    assert versions[0]["last_modified"] >= versions[1]["last_modified"]
    for version, expected in zip(versions, reversed(CONTENTS[:3]), strict=True):
        status, _, content = await call(
            session, "GET", f"{other}/versions/{version['id']}/contents", token
        )
        assert (status, content) == (200, expected)

    restore = f"{other}/versions/{versions[-1]['id']}/restore"
    status, headers, _ = await call(session, "POST", restore, token)
    assert (status, headers.get("X-WOPI-Lock")) == (409, "L"), "locked: the lock is needed"
    status, _, _ = await call(session, "POST", restore, token, **{"X-WOPI-Lock": "other"})
    assert status == 409
    assert stored.read_bytes() == CONTENTS[-1]
    assert await versions_of(session, other, token) == versions, "a refusal changes nothing"

    status, _, body = await call(session, "POST", restore, token, **{"X-WOPI-Lock": "L"})
    assert status == 200, body
    assert stored.read_bytes() == CONTENTS[0]
    after = await versions_of(session, src, token)
    status, _, content = await call(
        session, "GET", f"{other}/versions/{after[0]['id']}/contents", token
    )
    assert (status, content) == (200, CONTENTS[-1]), "the replaced content is the newest"
    return versions, after
