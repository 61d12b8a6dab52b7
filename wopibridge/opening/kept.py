"""``GET /wopi/iop/kept?user=<user id>``: a user's kept copies, for a web UI.

A save that could not land on its file was kept instead (beside the file as a conflict copy, or
in the server's recovery folder; see :mod:`wopibridge.wopi.saves`). The host page tells the
user at their next open of that file; this lists everything still kept for them, newest first,
so that a files UI can show it too. Guarded by the iop secret like the other ``/wopi/iop``
calls. Recovery copies are named, never located: their path on the server is no business of a
client.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from wopibridge.errors import BadRequest
from wopibridge.jsonio import json_response
from wopibridge.opening.common import check_iop_secret
from wopibridge.wopi.saves.keeper import CONFLICTS

MAX_USER_ID = 256


async def kept_copies(request: web.Request) -> web.Response:
    check_iop_secret(request)
    user = request.query.get("user", "")
    if not user or len(user) > MAX_USER_ID:
        raise BadRequest(f"user must be a user id of 1 to {MAX_USER_ID} characters")
    rows = await request.app[CONFLICTS].of_user(user)
    copies = []
    for row in sorted(rows, key=lambda r: r.created, reverse=True):
        copy: dict[str, object] = {
            "name": row.name,
            "file_name": row.file_name,
            "where": row.place,
            "size": row.size,
            "kept_at": datetime.fromtimestamp(row.created, UTC).isoformat(),
            "sha256": row.digest,
        }
        if row.place == "storage":
            storage, _, file_id = row.location.partition(":")
            copy["storage"] = storage
            copy["file_id"] = file_id
        copies.append(copy)
    return json_response({"user": user, "kept": copies}, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wopi/iop/kept", kept_copies)
