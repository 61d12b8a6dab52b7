"""The ``[storages.<name>]`` table of a WebDAV storage, and the credentials it sends."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

AUTH_MODES = ("none", "basic", "bearer", "ocm", "user")


@dataclass(frozen=True, slots=True)
class WebDavConfig:
    """One ``[storages.<name>]`` table of ``type = "webdav"``.

    ``auth``: ``none``; ``basic`` (``username``/``password``); ``bearer`` (``token``); ``ocm``
    (``shared_secret`` from an OCM share, sent as Bearer, or as Basic ``secret:`` when
    ``ocm_basic``); ``user`` (the user's own token, carried in the access token, as Bearer).
    ``site`` names the site that owns the files; it prefixes every lock key. ``locks``: hold
    each WOPI lock as a WebDAV ``LOCK`` on the file (the default); ``false`` for a share whose
    owner does not want locks, or a server that mishandles them (WOPI locks then stay in the
    site's lock store, unseen by other sites and WebDAV clients).
    """

    url: str
    auth: str = "none"
    username: str = ""
    password: str = ""
    token: str = ""
    shared_secret: str = ""
    ocm_basic: bool = False
    site: str = ""
    timeout: float = 30.0
    retries: int = 2
    #: the server's own versions (Nextcloud's ``versions`` collection), where it has them
    versions: bool = True
    locks: bool = True

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> WebDavConfig:
        """Validate a configuration table; ``ValueError`` names the bad key."""
        known = {f for f in cls.__dataclass_fields__} | {"type"}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"storages.{name}.{sorted(unknown)[0]}: unknown key")
        url = str(table.get("url", "")).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"storages.{name}.url: must be an http:// or https:// URL")
        auth = str(table.get("auth", "none"))
        if auth not in AUTH_MODES:
            raise ValueError(f"storages.{name}.auth: must be one of {', '.join(AUTH_MODES)}")
        needs = {"basic": "username", "bearer": "token", "ocm": "shared_secret"}.get(auth)
        if needs and not table.get(needs):
            raise ValueError(f"storages.{name}.{needs}: required with auth = {auth!r}")
        try:
            timeout = float(table.get("timeout", 30.0))
            retries = int(table.get("retries", 2))
        except (TypeError, ValueError):
            raise ValueError(f"storages.{name}.timeout: must be a number") from None
        if timeout <= 0 or retries < 0:
            raise ValueError(f"storages.{name}.timeout: must be positive")
        ocm_basic = _flag(name, "ocm_basic", table.get("ocm_basic", False))
        locks = _flag(name, "locks", table.get("locks", True))
        versions = _flag(name, "versions", table.get("versions", True))
        return cls(
            url=url,
            auth=auth,
            username=str(table.get("username", "")),
            password=str(table.get("password", "")),
            token=str(table.get("token", "")),
            shared_secret=str(table.get("shared_secret", "")),
            ocm_basic=ocm_basic,
            site=str(table.get("site", "")) or f"webdav:{url}",
            timeout=timeout,
            retries=retries,
            versions=versions,
            locks=locks,
        )

    def auth_header(self, user_token: str | None) -> str | None:
        if self.auth == "basic":
            return _basic(self.username, self.password)
        if self.auth == "bearer":
            return f"Bearer {self.token}"
        if self.auth == "ocm":
            if self.ocm_basic:
                return _basic(self.shared_secret, "")
            return f"Bearer {self.shared_secret}"
        if self.auth == "user":
            return f"Bearer {user_token}" if user_token else None
        return None


def _flag(name: str, key: str, value: Any) -> bool:
    """A boolean key; from the environment it arrives as text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"storages.{name}.{key}: must be true or false")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
