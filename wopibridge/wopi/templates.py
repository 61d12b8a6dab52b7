"""New documents' templates: the built-in blanks, and Collabora's ``TemplateSource``.

A new document opened in an editor that reads ``TemplateSource`` (Collabora) is created empty;
its edit token names the template (``template`` claim). While the file is still empty its
CheckFileInfo carries ``TemplateSource``: a URL under ``/wopi/templates/<ref>`` with a token
of its own, short-lived and good for that one template only (``purpose`` = ``template``; the
WOPI routes refuse it). The editor fetches the template there and fills the file with its
first PutFile, which WOPI allows on an unlocked empty file. With short tokens, each edit token
has one template handle, replaced (with a fresh lifetime) by each CheckFileInfo: an editor
polling CheckFileInfo does not pile up handles.

``<ref>`` is a built-in blank (``_blank.odt``; storage names cannot contain ``_``) or the
WOPI file id of a template on any configured storage, read as the user who opened it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from wopibridge.config import SETTINGS
from wopibridge.errors import BadRequest, NotFound
from wopibridge.security.keys import ACCESS, FILE_ID, TOKENS
from wopibridge.security.tokens import PURPOSE_CLAIM, AccessToken
from wopibridge.wopi import contents
from wopibridge.wopi.context import WopiRequest, token_from

BLANKS = Path(__file__).resolve().parent / "blankfiles"
BLANK_PREFIX = "_blank"
#: Extensions with a built-in blank (``tools/make_blanks.py`` made them).
BLANK_EXTENSIONS = (".odt", ".ods", ".odp", ".docx", ".xlsx", ".pptx", ".md", ".txt")
TEMPLATE_CLAIM = "template"
TEMPLATE_TOKEN_TTL = 300


def blank_ref(extension: str) -> str:
    """The reference of the built-in blank for an extension; ``BadRequest`` when none."""
    ext = extension.lower()
    if ext not in BLANK_EXTENSIONS:
        raise BadRequest(f"There is no blank template for {ext or 'files without extension'}")
    return BLANK_PREFIX + ext


def blank_path(ref: str) -> Path:
    """The file of a built-in blank reference (``_blank.odt``)."""
    ext = ref.removeprefix(BLANK_PREFIX)
    if not ref.startswith(BLANK_PREFIX) or ext not in BLANK_EXTENSIONS:
        raise NotFound("Template not found")
    return BLANKS / f"blank{ext}"


async def template_source(request: web.Request, access: AccessToken) -> str:
    """The ``TemplateSource`` URL for an empty file whose edit token names a template."""
    ref = access.extra[TEMPLATE_CLAIM]
    extra = {k: v for k, v in access.extra.items() if k != TEMPLATE_CLAIM}
    extra[PURPOSE_CLAIM] = "template"
    token, _ = await request.app[TOKENS].issue(
        file_id=ref,
        user_id=access.user_id,
        user_name=access.user_name,
        user_type=access.user_type,
        app=access.app,
        mode="view",
        ttl=TEMPLATE_TOKEN_TTL,
        extra=extra,
        derive_from="template\0" + token_from(request),
    )
    public = request.app[SETTINGS].server.public_url
    return f"{public}/wopi/templates/{quote(ref, safe='')}?access_token={quote(token, safe='')}"


async def get_template(request: web.Request) -> web.StreamResponse:
    """``GET /wopi/templates/<ref>``: the template bytes, for a template token only."""
    ref = request.match_info["ref"]
    access = await request.app[TOKENS].resolve(token_from(request), ref)
    if access.purpose != "template" or access.file_id != ref:
        raise NotFound("Template not found")
    if ref.startswith(BLANK_PREFIX):
        return web.FileResponse(
            blank_path(ref), headers={"Content-Type": "application/octet-stream"}
        )
    request[ACCESS] = access
    request[FILE_ID] = ref
    return await contents.get_file(WopiRequest.of(request))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/templates/{ref}", get_template, allow_head=False)
