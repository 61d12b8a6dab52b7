"""What the three WOPI office editors share: discovery-driven URLs and CheckFileInfo extras.

Collabora, OnlyOffice and Microsoft differ in a handful of properties and URL parameters; each
module subclasses :class:`OfficeApp` and overrides :meth:`OfficeApp.url_values` and
:meth:`OfficeApp.editor_properties`. Everything else (which files, which action, placeholders,
guests, watermark, PostMessage origin) lives here once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from wopibridge.apps.base import OpenRequest
from wopibridge.apps.discovery import DiscoveryCache, fill_urlsrc
from wopibridge.config import ConfigError
from wopibridge.errors import BadRequest
from wopibridge.security.tokens import AccessToken
from wopibridge.storage.base import FileStat

#: ``verify`` checks proofs when the headers are present, ``require`` refuses requests without
#: them, ``off`` skips the check (the proof-key check reads :attr:`OfficeApp.proof_mode`).
PROOF_MODES = ("verify", "require", "off")
GUEST_TYPES = ("anonymous", "guest")
#: The secure-view watermark when ``watermark_text`` is not set.
DEFAULT_WATERMARK = "{user} {email} {date}"


def watermark(template: str, token: AccessToken, stat: FileStat, now: float | None = None) -> str:
    """Fill ``{user}``, ``{email}``, ``{date}`` (UTC, ISO) and ``{file}``; nothing else in
    the template is interpreted, so braces in a name or the template cannot inject fields."""
    date = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    values = {
        "{user}": friendly_name(token),
        "{email}": token.extra.get("email", ""),
        "{date}": date,
        "{file}": stat.name,
    }
    text = template
    for field, value in values.items():
        text = text.replace(field, value)
    return " ".join(text.split())


def friendly_name(token: AccessToken) -> str:
    """The name other users see. Guests (public links) are "Guest <name>" so nobody is taken
    for an account holder; Collabora would otherwise show "UnknownUser_<id>"."""
    name = token.user_name.strip()
    if token.user_type in GUEST_TYPES:
        if not name:
            return f"Guest {token.user_id[:8]}".rstrip()
        return name if name.startswith("Guest ") else f"Guest {name}"
    return name or token.user_id


def _flag(value: Any) -> bool:
    """A TOML boolean, or its environment-variable spelling."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class OfficeConfig:
    """The validated ``[apps.<name>]`` table of a WOPI office editor."""

    name: str
    type: str
    discovery_url: str
    postmessage_origin: str
    watermark_text: str = ""
    proof_keys: str = "verify"
    lang: str = ""
    disable_chat: bool = False
    refresh_interval: int = 3600
    lock_files: bool = True
    load_timeout: int = 30

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "type",
            "discovery_url",
            "postmessage_origin",
            "watermark_text",
            "proof_keys",
            "lang",
            "disable_chat",
            "refresh_interval",
            "lock_files",
            "load_timeout",
        }
    )

    @classmethod
    def parse(
        cls, name: str, raw: Mapping[str, Any], *, public_url: str, default_proof: str = "verify"
    ) -> OfficeConfig:
        where = f"apps.{name}"
        unknown = sorted(set(raw) - cls.KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key")
        url = raw.get("discovery_url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"{where}.discovery_url", "must be an http(s) discovery URL")
        origin = raw.get("postmessage_origin", origin_of(public_url))
        if not isinstance(origin, str) or urlsplit(origin).scheme not in ("http", "https"):
            raise ConfigError(f"{where}.postmessage_origin", "must be an http(s) origin")
        proof = raw.get("proof_keys", default_proof)
        if proof not in PROOF_MODES:
            raise ConfigError(f"{where}.proof_keys", f"must be one of {', '.join(PROOF_MODES)}")
        chat = _flag(raw.get("disable_chat", False))
        lock_files = _flag(raw.get("lock_files", True))
        try:
            interval = int(raw.get("refresh_interval", 3600))
            if interval <= 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.refresh_interval", "must be a positive integer") from None
        try:
            load_timeout = int(raw.get("load_timeout", 30))
            if load_timeout <= 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.load_timeout", "must be a positive integer") from None
        for key in ("watermark_text", "lang"):
            if not isinstance(raw.get(key, ""), str):
                raise ConfigError(f"{where}.{key}", "must be a string")
        return cls(
            name=name,
            type=str(raw.get("type", name)),
            discovery_url=url,
            postmessage_origin=origin_of(origin),
            watermark_text=raw.get("watermark_text", ""),
            proof_keys=proof,
            lang=raw.get("lang", ""),
            disable_chat=chat,
            lock_files=lock_files,
            refresh_interval=interval,
            load_timeout=load_timeout,
        )


class OfficeApp:
    """A WOPI editor found through its discovery document."""

    bridged = False
    kind: ClassVar[str] = "office"
    default_proof: ClassVar[str] = "verify"
    #: Whether the editor draws ``WatermarkText`` (Collabora does; OnlyOffice and Microsoft
    #: read no watermark property over WOPI).
    draws_watermark: ClassVar[bool] = True
    #: Whether the editor fills an empty file from CheckFileInfo's ``TemplateSource``.
    reads_template_source = False
    #: Whether the editor opens CheckFileInfo's ``FileVersionUrl`` (Microsoft's does).
    opens_version_url = False

    def __init__(self, config: OfficeConfig, discovery: DiscoveryCache) -> None:
        self.name = config.name
        self.config = config
        self.discovery = discovery

    @property
    def lock_files(self) -> bool:
        """Whether a WOPI lock on an ODF file writes a LibreOffice lock file beside it."""
        return self.config.lock_files

    @property
    def load_timeout(self) -> int:
        """Seconds the host page waits for this editor's PostMessage handshake."""
        return self.config.load_timeout

    @property
    def proof_mode(self) -> str:
        return self.config.proof_keys

    def handles(self, extension: str) -> bool:
        doc = self.discovery.peek(self.name)
        if doc is None:
            raise self.discovery.unavailable(self.name)
        return doc.handles(extension)

    def can_edit(self, extension: str) -> bool:
        doc = self.discovery.peek(self.name)
        if doc is None:
            raise self.discovery.unavailable(self.name)
        return doc.can_edit(extension) or doc.action_for(extension, "editnew") is not None

    def lists_action(self, extension: str, action: str) -> bool:
        doc = self.discovery.peek(self.name)
        return doc is not None and doc.action_for(extension, action) is not None

    async def editor_url(self, request: OpenRequest) -> str:
        doc = await self.discovery.get(self.name)
        ext = request.stat.extension
        action = doc.find(ext, request.wanted_action)
        if action is None and request.wanted_action != "view":
            action = doc.find(ext, "view")
        if action is None:
            raise BadRequest(f"The {self.name} editor cannot open {ext or 'these'} files")
        return fill_urlsrc(action.urlsrc, request.wopi_src, self.url_values(request))

    def url_values(self, request: OpenRequest) -> dict[str, str]:
        """Values for the ``<name=PLACEHOLDER&>`` groups of ``urlsrc`` (unset ones are
        stripped)."""
        lang = request.lang or self.config.lang
        values = {"UI_LLCC": lang, "DC_LLCC": lang}
        if self.config.disable_chat:
            values["DISABLE_CHAT"] = "1"
        if request.wanted_action == "embedview":
            values["EMBEDDED"] = "true"
        return values

    def file_info(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        info: dict[str, Any] = {
            "UserFriendlyName": friendly_name(token),
            "PostMessageOrigin": self.config.postmessage_origin,
            "BreadcrumbDocName": stat.name,
        }
        if token.user_type in GUEST_TYPES:
            info["IsAnonymousUser"] = True
        if token.secure and self.draws_watermark:  # secure view only, never plain viewers
            template = self.config.watermark_text or DEFAULT_WATERMARK
            info["WatermarkText"] = watermark(template, token, stat)
        info.update(self.editor_properties(token, stat))
        return info

    def editor_properties(self, token: AccessToken, stat: FileStat) -> Mapping[str, Any]:
        return {}
