"""A FAKE CodiMD/HedgeDoc server: no CodiMD or HedgeDoc can be installed here.

It implements exactly the calls EDITORS.md lists for the bridge, and nothing else:

* ``POST /new`` with ``Content-Type: text/markdown`` (``?mode=locked`` for a read-only note):
  creates a note with a random id, answers ``302`` with the note in ``Location``;
* ``PUT /api/notes/<id>`` with ``{"content": md}`` and ``Authorization: Bearer <key>``: CERN's
  API, only when the fake is started with ``api_key``; wrong key 401;
* ``GET /<id>/download``: the note's Markdown;
* ``POST /uploadimage`` (multipart field ``image``): stores the image and answers
  ``{"link": "<base>/uploads/upload_<hex>.<ext>"}``; ``GET /uploads/<name>`` serves it;
* ``GET /<id>`` and ``GET /<id>/publish``: the pages browsers land on;
* any body larger than ``max_body`` answers 413, as CodiMD does.

Users' edits are simulated with :meth:`FakeCodiMD.edit`, which changes a note's content the way
typing in the browser does.
"""

from __future__ import annotations

import posixpath
import secrets
from dataclasses import dataclass, field

from aiohttp import web

NOTES: web.AppKey[FakeCodiMD] = web.AppKey("fake_codimd")


@dataclass
class Note:
    content: str
    locked: bool = False


@dataclass
class FakeCodiMD:
    api_key: str = ""
    max_body: int = 1024 * 1024
    base_url: str = ""
    notes: dict[str, Note] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    failing_downloads: int = 0  # answer this many downloads with 500, as a crashed CodiMD

    def edit(self, note: str, content: str) -> None:
        self.notes[note].content = content

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body * 2)
        app[NOTES] = self
        app.router.add_post("/new", _new)
        app.router.add_put("/api/notes/{note}", _put_note)
        app.router.add_post("/uploadimage", _upload)
        app.router.add_get("/uploads/{name}", _uploaded)
        app.router.add_get("/{note}/download", _download)
        app.router.add_get("/{note}/publish", _page)
        app.router.add_get("/{note}", _page)
        return app


def _fake(request: web.Request) -> FakeCodiMD:
    fake = request.app[NOTES]
    fake.calls.append(f"{request.method} {request.path_qs}")
    return fake


async def _body(request: web.Request, fake: FakeCodiMD) -> bytes:
    if (request.content_length or 0) > fake.max_body:
        raise web.HTTPRequestEntityTooLarge(
            max_size=fake.max_body, actual_size=request.content_length or 0
        )
    body = await request.read()
    if len(body) > fake.max_body:
        raise web.HTTPRequestEntityTooLarge(max_size=fake.max_body, actual_size=len(body))
    return body


async def _new(request: web.Request) -> web.Response:
    fake = _fake(request)
    if not request.content_type.startswith("text/markdown"):
        raise web.HTTPBadRequest(text="expected text/markdown")
    body = await _body(request, fake)
    note = secrets.token_urlsafe(12)
    fake.notes[note] = Note(body.decode(), locked=request.query.get("mode") == "locked")
    raise web.HTTPFound(location=f"{fake.base_url}/{note}")


async def _put_note(request: web.Request) -> web.Response:
    fake = _fake(request)
    if not fake.api_key:
        raise web.HTTPNotFound()
    if request.headers.get("Authorization") != f"Bearer {fake.api_key}":
        raise web.HTTPUnauthorized()
    body = await _body(request, fake)
    import json

    content = json.loads(body)["content"]
    fake.notes[request.match_info["note"]] = Note(content)
    return web.json_response({"status": "ok"})


async def _upload(request: web.Request) -> web.Response:
    fake = _fake(request)
    if (request.content_length or 0) > fake.max_body:
        raise web.HTTPRequestEntityTooLarge(
            max_size=fake.max_body, actual_size=request.content_length or 0
        )
    form = await request.post()
    image = form.get("image")
    if not isinstance(image, web.FileField):
        raise web.HTTPBadRequest(text="no image")
    ext = posixpath.splitext(image.filename)[1].lower() or ".png"
    name = f"upload_{secrets.token_hex(16)}{ext}"
    fake.uploads[name] = image.file.read()
    return web.json_response({"link": f"{fake.base_url}/uploads/{name}"})


async def _uploaded(request: web.Request) -> web.Response:
    fake = _fake(request)
    body = fake.uploads.get(request.match_info["name"])
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type="application/octet-stream")


async def _download(request: web.Request) -> web.Response:
    fake = _fake(request)
    if fake.failing_downloads > 0:
        fake.failing_downloads -= 1
        raise web.HTTPInternalServerError()
    note = fake.notes.get(request.match_info["note"])
    if note is None:
        raise web.HTTPNotFound()
    return web.Response(text=note.content, content_type="text/markdown")


async def _page(request: web.Request) -> web.Response:
    fake = _fake(request)
    if request.match_info["note"] not in fake.notes:
        raise web.HTTPNotFound()
    return web.Response(text="<html>note</html>", content_type="text/html")
