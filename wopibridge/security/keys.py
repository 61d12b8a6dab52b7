"""The security layer's keys: the secrets and token codec on the app, the verified token and
the file id it was bound to on each request."""

from __future__ import annotations

from aiohttp import web

from wopibridge.security.secrets import Secrets
from wopibridge.security.tokens import AccessToken, TokenCodec

SECRETS: web.AppKey[Secrets] = web.AppKey("secrets")
TOKENS: web.AppKey[TokenCodec] = web.AppKey("tokens")

ACCESS: web.RequestKey[AccessToken] = web.RequestKey("access")
FILE_ID: web.RequestKey[str] = web.RequestKey("file_id")
