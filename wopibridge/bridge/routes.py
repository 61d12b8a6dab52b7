"""The bridge's HTTP surface.

* ``POST /wopi/bridge/open?app=<name>&WOPISrc=<src>``: the browser's form POST of
  ``access_token`` (the ``app-url`` a bridged app gives the open endpoints). Loads the file into
  the editor, or joins the document already open, and answers 303 to the editor. A token minted
  for another app, or for secure view, is refused: the bridged editors show plain text.
* ``POST /wopi/bridge/<docid>?WOPISrc=..&access_token=..&close=true|false``: the save webhook
  CERN's CodiMD calls (with ``X-EFSS-Bridged-App``); any bridged editor or host page may call it
  when a user saves or leaves.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from wopibridge.bridge.docid import valid_document_id
from wopibridge.bridge.keys import BRIDGE
from wopibridge.errors import BadRequest, NotFound, Unauthorized
from wopibridge.jsonio import json_response
from wopibridge.security.keys import TOKENS
from wopibridge.wopi.context import token_from


async def open_document(request: web.Request) -> web.Response:
    if request.content_length and request.content_length > 64 * 1024:
        raise BadRequest("The open request is too large")
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    token = form.get("access_token") or token_from(request)
    access = await request.app[TOKENS].resolve(token)
    wopi_src = request.query.get("WOPISrc", "")
    if wopi_src and urlsplit(wopi_src).path.rstrip("/").rsplit("/", 1)[-1] != access.file_id:
        raise NotFound("File not found")
    app_name = request.query.get("app", "") or access.app
    if not app_name:
        raise BadRequest("Missing app")
    if access.app and access.app.lower() != app_name.lower():
        raise Unauthorized("This access token is for another app")
    if access.secure:  # a bridged editor hands the plain text to anyone holding the page
        raise BadRequest(f"{app_name} cannot show files in secure view")
    url = await request.app[BRIDGE].open(access, app_name)
    raise web.HTTPSeeOther(location=url)


async def save_webhook(request: web.Request) -> web.Response:
    docid = request.match_info["docid"]
    if not valid_document_id(docid):
        raise NotFound("This document is not open in the bridge")
    access = await request.app[TOKENS].resolve(token_from(request))
    close = request.query.get("close", "false").lower() == "true"
    await request.app[BRIDGE].notify(docid, access, close)
    message = "Saving; the document is closed for you" if close else "Saving"
    return json_response({"message": message}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/wopi/bridge/open", open_document)
    app.router.add_post("/wopi/bridge/{docid}", save_webhook)
