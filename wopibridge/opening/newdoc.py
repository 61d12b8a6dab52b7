"""New documents: create a file from a template, never overwriting, and open it for editing.

The template is a built-in blank for the name's extension (``wopibridge/wopi/blankfiles``) or a
file on any configured storage. The new file takes the first free name of ``name``,
``name (1)``, ``name (2)``… (as Save As names them); each attempt is an atomic
create-if-absent on the storage, so two users creating "Report.docx" at once get two files.

How it is filled depends on the editor:

- an editor that reads ``TemplateSource`` (Collabora) gets an empty file and an edit token
  naming the template; CheckFileInfo then hands it the template under a token of its own and
  its first PutFile fills the file (:mod:`wopibridge.wopi.templates`);
- every other editor (OnlyOffice, Microsoft, the bridged ones) gets the file created with the
  template's content, opened with the ``editnew`` action where discovery lists one.

A request that is refused creates nothing: every check that can be made before the file
exists is made first, and a failure after it was created (the token store or the editor's
discovery down) removes it again (:func:`removed_on_failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from wopibridge.apps.base import EditorApp
from wopibridge.errors import BadRequest, Conflict, FileExists, WopiError
from wopibridge.storage.base import FileStat, Storage
from wopibridge.storage.factory import STORAGES
from wopibridge.wopi.names import check_editor_name, split_ext, variants
from wopibridge.wopi.templates import TEMPLATE_CLAIM, blank_path, blank_ref

log = logging.getLogger("wopibridge.newdoc")


@dataclass(frozen=True, slots=True)
class Template:
    """Where a new document's content comes from: a built-in blank, or a storage file."""

    blank: str = ""  # "_blank.odt"
    storage: Storage | None = None
    backend_id: str = ""
    wopi_id: str = ""

    @property
    def ref(self) -> str:
        return self.blank or self.wopi_id


@dataclass(frozen=True, slots=True)
class Created:
    stat: FileStat
    #: Claims the edit token carries (the template, for a ``TemplateSource`` editor).
    extra: dict[str, str]


async def resolve_template(
    app: web.Application, spec: object, extension: str, credential: str | None = None
) -> Template:
    """``None``/``"blank"``: the built-in blank; ``{"path", "storage"?}`` or ``{"file_id"}``:
    a file on a configured storage (read with the user's credential where it takes one)."""
    if spec is None or spec == "blank":
        return Template(blank=blank_ref(extension))
    if not isinstance(spec, dict):
        raise BadRequest('template must be "blank" or an object with path or file_id')
    registry = app[STORAGES]
    path, file_id = spec.get("path"), spec.get("file_id")
    if bool(path) == bool(file_id) or not isinstance(path or file_id, str):
        raise BadRequest("template needs either path or file_id")
    if file_id:
        storage, backend_id = registry.for_file(str(file_id))
        storage = registry.bound(storage.name, credential)
        stat = await storage.stat(backend_id)
    else:
        name = spec.get("storage") or ""
        if not isinstance(name, str):
            raise BadRequest("template.storage must be a string")
        storage = registry.bound(name or registry.default.name, credential)
        stat = await storage.resolve(str(path))
        backend_id = stat.file_id
    return Template(
        storage=storage, backend_id=backend_id, wopi_id=registry.wopi_id(storage, backend_id)
    )


def _blank_chunks(path: Path) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        yield await asyncio.to_thread(path.read_bytes)  # a few kilobytes, shipped with us

    return chunks


def _storage_chunks(template: Template) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        assert template.storage is not None
        content = await template.storage.open_read(template.backend_id)
        try:
            async for chunk in content.stream():
                yield chunk
        finally:
            await content.close()

    return chunks


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def create_document(
    storage: Storage, folder: str, name: str, template: Template, editor: EditorApp | None
) -> Created:
    """Create the new file under the first free variant of ``name`` in ``folder``. ``editor``
    is the configured app it is for, if any (one that reads ``TemplateSource`` gets an empty
    file and the template's reference)."""
    check_editor_name(name)
    reads_template = editor is not None and editor.reads_template_source
    if template.blank and reads_template:
        source: Callable[[], AsyncIterator[bytes]] = _nothing
        extra = {TEMPLATE_CLAIM: template.ref}
    elif template.blank:
        source, extra = _blank_chunks(blank_path(template.blank)), {}
    elif reads_template:
        source, extra = _nothing, {TEMPLATE_CLAIM: template.ref}
    else:
        source, extra = _storage_chunks(template), {}
    for candidate in variants(name):
        try:
            stat = await storage.create_in(folder, candidate, source())
        except FileExists:
            continue
        return Created(stat, extra)
    raise Conflict(f"No free name like {split_ext(name)[0]!r} is left in this folder")


@contextlib.asynccontextmanager
async def removed_on_failure(storage: Storage, created: Created) -> AsyncIterator[Created]:
    """The new file, removed again when what follows its creation fails: the answer that
    would have named it is an error, so nobody could ever open it."""
    try:
        yield created
    except Exception:
        try:
            await storage.delete(created.stat.file_id)
        except (WopiError, OSError) as exc:
            log.warning(
                "the new file %s stays although its open failed: %s", created.stat.name, exc
            )
        raise
