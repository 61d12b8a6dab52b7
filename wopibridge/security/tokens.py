"""Access tokens: signed JWTs that bind one user, one app and one mode to one file.

The mode is a claim: ``edit``, ``view`` or ``secureview`` (view with download, print, copy and
export turned off), so nothing in a URL or a form can change what a token allows.

With ``security.short_tokens`` the token handed out is a short random *handle* for the JWT,
kept in a :class:`~wopibridge.security.handles.HandleStore` for the token's lifetime: URLs stay
short whatever the claims carry (a sealed Reva token runs to kilobytes). The store only holds
the signed JWT, so whoever can read or write it still cannot forge claims. A token handed out
again and again for the same purpose (the ``TemplateSource`` of each CheckFileInfo) keeps one
handle, derived from what it is handed out for (``derive_from``), rather than one per call.

The algorithm is pinned to HS256 and ``exp`` is required, so neither ``alg: none`` nor a
token without expiry is ever accepted. Verified tokens are kept in a small bounded cache keyed
by the token string: an editor sends the same token on every request, and a cache hit costs a
dictionary lookup and an expiry check instead of an HMAC and a JSON parse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import jwt

from wopibridge.errors import Unauthorized
from wopibridge.security.handles import HandleStore

Mode = Literal["view", "edit", "secureview"]
MODES: tuple[Mode, ...] = ("view", "edit", "secureview")
ALGORITHM = "HS256"
#: Handles start with this and contain no dot, so they are never taken for a JWT.
HANDLE_PREFIX = "wbh"
#: ``extra`` claim naming what a token is only good for (``template``: a TemplateSource).
PURPOSE_CLAIM = "purpose"
#: How far apart the clocks of a fleet may be when a handle's ``iat`` (one instance's clock)
#: is compared with its file's revocation mark (another's): a handle issued up to this long
#: after the mark is refused too, never one issued before it let through.
REVOKE_LEEWAY_MS = 2000


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The verified content of an access token."""

    file_id: str
    user_id: str
    user_name: str
    user_type: str
    app: str
    mode: Mode
    expires: int
    extra: dict[str, str] = field(default_factory=dict)
    #: ``iat``: when it was minted (seconds since the epoch); a handle issued before its
    #: file was deleted is refused by this.
    issued: int = 0

    @property
    def can_write(self) -> bool:
        return self.mode == "edit"

    @property
    def secure(self) -> bool:
        """Secure view: read-only, and no download, print, copy or export."""
        return self.mode == "secureview"

    @property
    def purpose(self) -> str:
        """What the token is only good for; empty for an ordinary WOPI access token."""
        return self.extra.get(PURPOSE_CLAIM, "")

    @property
    def ttl_ms(self) -> int:
        """``access_token_ttl``: the absolute expiry in milliseconds since the epoch."""
        return self.expires * 1000


def token_hash(token: str) -> str:
    """A short digest that identifies a token in logs without revealing it."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenCodec:
    """Mints and verifies access tokens with one secret."""

    def __init__(
        self,
        secret: str,
        ttl: int,
        cache_size: int = 4096,
        handles: HandleStore | None = None,
    ) -> None:
        self._secret = secret
        self.ttl = ttl
        self._cache: OrderedDict[str, AccessToken] = OrderedDict()
        self._cache_size = cache_size
        self.handles = handles
        self._handle_key = hashlib.sha256(b"wopibridge derived handle\0" + secret.encode()).digest()

    async def issue(
        self,
        *,
        file_id: str,
        user_id: str,
        user_name: str,
        user_type: str = "regular",
        app: str = "",
        mode: Mode = "view",
        ttl: int | None = None,
        extra: dict[str, str] | None = None,
        short: bool = True,
        derive_from: str = "",
    ) -> tuple[str, AccessToken]:
        """The token to hand out: the JWT, or a short handle for it when handles are on.

        ``short=False``: the JWT all the same (a token only looked at, never handed out, needs
        no handle). ``derive_from``: the handle is derived from this string (with the secret),
        so each call for the same one replaces the same handle instead of adding one."""
        raw, info = self.mint(
            file_id=file_id,
            user_id=user_id,
            user_name=user_name,
            user_type=user_type,
            app=app,
            mode=mode,
            ttl=ttl,
            extra=extra,
        )
        if self.handles is None or not short:
            return raw, info
        if derive_from:
            digest = hmac.new(self._handle_key, derive_from.encode(), hashlib.sha256).digest()
            handle = HANDLE_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        else:
            handle = HANDLE_PREFIX + secrets.token_urlsafe(32)
        await self.handles.put(handle, raw, max(1, info.expires - int(time.time())))
        return handle, info

    async def resolve(self, token: str, file_id: str = "") -> AccessToken:
        """Verify a JWT or a handle; raise ``Unauthorized`` when neither is good.

        A handle is looked up on every request (not cached here), so a handle revoked by
        another instance stops working everywhere at once; the JWT behind it is cached.
        ``file_id``, the file the request names, lets the handle and that file's revocation
        mark be read in one round trip.
        """
        if not is_handle(token):
            return self.verify(token)
        if self.handles is None:
            raise Unauthorized("Invalid access token")
        raw, revoked = await self.handles.lookup(token, file_id)
        if raw is None:
            raise Unauthorized("The access token has expired or was revoked")
        info = self.verify(raw)
        if info.file_id != file_id:
            revoked = await self.handles.revoked_at(info.file_id)
        if revoked and info.issued * 1000 <= revoked + REVOKE_LEEWAY_MS:
            raise Unauthorized("The access token has expired or was revoked")
        return info

    async def revoke_file(self, file_id: str) -> None:
        """Revoke every handle issued for a file until now (it was deleted). JWTs cannot be
        revoked; they only ever name the file id, which no longer resolves."""
        if self.handles is not None:
            await self.handles.revoke_file(file_id, self.ttl)

    def mint(
        self,
        *,
        file_id: str,
        user_id: str,
        user_name: str,
        user_type: str = "regular",
        app: str = "",
        mode: Mode = "view",
        ttl: int | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[str, AccessToken]:
        now = int(time.time())
        info = AccessToken(
            file_id=file_id,
            user_id=user_id,
            user_name=user_name,
            user_type=user_type,
            app=app,
            mode=mode,
            expires=now + min(ttl or self.ttl, self.ttl),
            extra=dict(extra or {}),
            issued=now,
        )
        claims: dict[str, Any] = asdict(info)
        claims["exp"] = claims.pop("expires")
        claims["iat"] = claims.pop("issued")
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), info

    def verify(self, token: str) -> AccessToken:
        """Return the token's content or raise ``Unauthorized``."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires > time.time():
                return cached
            del self._cache[token]
            raise Unauthorized("The access token has expired")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "file_id", "user_id", "mode"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("Invalid access token") from None
        try:
            info = AccessToken(
                file_id=str(claims["file_id"]),
                user_id=str(claims["user_id"]),
                user_name=str(claims.get("user_name", "")),
                user_type=str(claims.get("user_type", "regular")),
                app=str(claims.get("app", "")),
                mode=_mode(claims["mode"]),
                expires=int(claims["exp"]),
                extra={str(k): str(v) for k, v in dict(claims.get("extra") or {}).items()},
                issued=int(claims.get("iat", 0)),
            )
        except (TypeError, ValueError, AttributeError):
            raise Unauthorized("Invalid access token") from None
        self._cache[token] = info
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return info


def _mode(value: Any) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    return "view"


def is_handle(token: str) -> bool:
    return token.startswith(HANDLE_PREFIX) and "." not in token and len(token) <= 64
