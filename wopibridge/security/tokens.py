"""Access tokens: signed JWTs that bind one user, one app and one mode to one file.

The algorithm is pinned to HS256 and ``exp`` is required, so neither ``alg: none`` nor a
token without expiry is ever accepted. Verified tokens are kept in a small bounded cache keyed
by the token string: an editor sends the same token on every request, and a cache hit costs a
dictionary lookup and an expiry check instead of an HMAC and a JSON parse.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import jwt

from wopibridge.errors import Unauthorized

Mode = Literal["view", "edit"]
ALGORITHM = "HS256"


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

    @property
    def can_write(self) -> bool:
        return self.mode == "edit"

    @property
    def ttl_ms(self) -> int:
        """``access_token_ttl``: the absolute expiry in milliseconds since the epoch."""
        return self.expires * 1000


def token_hash(token: str) -> str:
    """A short digest that identifies a token in logs without revealing it."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenCodec:
    """Mints and verifies access tokens with one secret."""

    def __init__(self, secret: str, ttl: int, cache_size: int = 4096) -> None:
        self._secret = secret
        self.ttl = ttl
        self._cache: OrderedDict[str, AccessToken] = OrderedDict()
        self._cache_size = cache_size

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
            expires=now + (ttl or self.ttl),
            extra=dict(extra or {}),
        )
        claims: dict[str, Any] = asdict(info)
        claims["exp"] = claims.pop("expires")
        claims["iat"] = now
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
                mode="edit" if claims["mode"] == "edit" else "view",
                expires=int(claims["exp"]),
                extra={str(k): str(v) for k, v in dict(claims.get("extra") or {}).items()},
            )
        except (TypeError, ValueError, AttributeError):
            raise Unauthorized("Invalid access token") from None
        self._cache[token] = info
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return info
