"""Opening one previous version of a file read-only in an editor:
``POST {WOPISrc}/versions/{id}/open`` on the file's access token (view or edit; not secure
view, whose bytes must not leave the editor it was opened in).

The version gets its own WOPISrc, ``{WOPISrc}/versions/{id}``, and its own view token, good
for that version only (:func:`wopibridge.wopi.context.version_purpose`): the token cannot
read the current file, nor restore. Answer 200::

    {"app": "...", "app_url": "<editor URL with the version's WOPISrc>",
     "form_parameters": {"access_token": "...", "access_token_ttl": <ms>},
     "host_url": "<short-lived link to a host page showing the version>"}
"""

from __future__ import annotations

from aiohttp import web

from wopibridge.apps.base import OpenRequest
from wopibridge.apps.keys import EDITORS
from wopibridge.config import SETTINGS
from wopibridge.jsonio import json_response
from wopibridge.opening.hostpage import HostLinks, HostPage
from wopibridge.security.keys import SECRETS, TOKENS
from wopibridge.security.tokens import PURPOSE_CLAIM
from wopibridge.wopi.context import WopiRequest, bind_access, version_purpose
from wopibridge.wopi.versions import version_stat


async def open_version(request: web.Request) -> web.Response:
    await bind_access(request)
    wopi = WopiRequest.of(request)
    access = wopi.access
    version_id = request.match_info["version_id"]
    stat = await version_stat(wopi, version_id)  # secure view and storages without: refused
    editors = request.app[EDITORS]
    editor = editors.get(access.app) if access.app else editors.choose(stat.extension, edit=False)
    extra = {**access.extra, PURPOSE_CLAIM: version_purpose(version_id)}
    raw, info = await request.app[TOKENS].issue(
        file_id=wopi.file_id,
        user_id=access.user_id,
        user_name=access.user_name,
        user_type=access.user_type,
        app=editor.name,
        mode="view",
        extra=extra,
    )
    public = request.app[SETTINGS].server.public_url
    wopi_src = f"{public}/wopi/files/{wopi.file_id}/versions/{version_id}"
    app_url = await editor.editor_url(OpenRequest(wopi_src, stat, info, raw, "view", action="view"))
    link = HostLinks(request.app[SECRETS].token_secret).mint(
        HostPage(
            app_url=app_url,
            access_token=raw,
            access_token_ttl=info.ttl_ms,
            title=f"{stat.name} ({stat.last_modified})",
            app=editor.name,
            load_timeout=editor.load_timeout,
        )
    )
    return json_response(
        {
            "app": editor.name,
            "app_url": app_url,
            "form_parameters": {"access_token": raw, "access_token_ttl": info.ttl_ms},
            "host_url": f"{public}/wopi/host?link={link}",
        },
        headers={"Cache-Control": "no-store"},
    )
