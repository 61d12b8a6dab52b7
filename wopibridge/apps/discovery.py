"""WOPI discovery: which editor opens which file, at which URL, signed with which keys.

Every WOPI editor publishes ``/hosting/discovery``. The documents differ in ways that matter:

- Collabora names most apps by **MIME type** (``application/vnd.oasis.opendocument.text``) with
  actions whose ``ext`` is empty, beside a few apps named ``writer``/``calc`` with extensions;
- OnlyOffice and Microsoft name apps ``Word``/``Excel``/``PowerPoint`` and put
  ``<name=PLACEHOLDER&>`` groups into ``urlsrc`` that the host fills or strips;
- the ``<proof-key>`` element is optional (Collabora's template, OnlyOffice without a key).

Parsing is pure (:func:`parse_discovery`, :func:`fill_urlsrc`) and table-tested. The
:class:`DiscoveryCache` fetches with the application's shared ``ClientSession``, refreshes on an
interval and on demand, keeps serving the last good document when a refresh fails, and answers
:class:`~wopibridge.errors.Unavailable` with a sentence naming the editor when it has never
reached it. It is also the
:class:`~wopibridge.security.proof.source.ProofKeySource` of the proof check, and there
"no document yet" is :class:`~wopibridge.errors.Unavailable` too, never "no keys": an editor
whose keys cannot be known must not look like one that publishes none, or a request that
needs a proof would pass unchecked. A request that needs an editor never reached (an open,
a proof) tries it again at most every ``unreachable_retry`` seconds, concurrent ones sharing
one fetch, so the refusals stop about a second after the editor comes back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp

from wopibridge.apps.filetypes import mime_type_of, normalize_ext
from wopibridge.errors import Unavailable
from wopibridge.security.proof.source import ProofKeyAttrs
from wopibridge.wopi.links import is_web_url

log = logging.getLogger("wopibridge.discovery")

MAX_DISCOVERY_BYTES = 8 * 1024 * 1024

#: Which discovery actions can serve a requested mode, best first. Collabora lists only an
#: ``edit`` action for the formats it can edit (the token decides read-only), so ``view``
#: falls back to ``edit``; ``editnew`` (OnlyOffice, Microsoft) falls back to ``edit``.
MODE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "view": ("view", "edit"),
    "edit": ("edit",),
    "editnew": ("editnew", "edit"),
    "embedview": ("embedview", "view", "edit"),
}


@dataclass(frozen=True, slots=True)
class Action:
    """One ``<action>`` of one ``<app>``."""

    app: str
    name: str
    ext: str
    urlsrc: str
    requires: frozenset[str] = frozenset()
    default: bool = False
    target_ext: str = ""


@dataclass(frozen=True)
class Discovery:
    """A parsed discovery document, indexed for lookups by extension and by MIME type."""

    actions: tuple[Action, ...]
    proof_key: ProofKeyAttrs | None = None
    capabilities_url: str = ""
    net_zone: str = ""
    _by_ext: dict[tuple[str, str], Action] = field(default_factory=dict, repr=False)
    _by_mime: dict[tuple[str, str], Action] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for action in self.actions:
            if not action.urlsrc:
                continue  # Collabora's template lists actions before coolwsd fills urlsrc
            if not is_web_url(action.urlsrc):
                continue  # an editor URL ends up in the user's browser: http(s) only
            if action.ext:
                key = (action.ext, action.name)
                index = self._by_ext
            elif "/" in action.app:
                key = (action.app.lower(), action.name)
                index = self._by_mime
            else:
                continue
            current = index.get(key)
            if current is None or (action.default and not current.default):
                index[key] = action

    def action_for(self, extension: str, name: str) -> Action | None:
        """The action called ``name`` for files of this extension: by extension first, then by
        the extension's MIME type (Collabora's MIME-named apps)."""
        ext = normalize_ext(extension)
        found = self._by_ext.get((ext, name))
        if found is None:
            mime = mime_type_of(ext)
            if mime:
                found = self._by_mime.get((mime, name))
        return found

    def find(self, extension: str, mode: str) -> Action | None:
        """The best action for a mode (``view``, ``edit``, ``editnew``, ``embedview``)."""
        for name in MODE_ACTIONS.get(mode, (mode,)):
            found = self.action_for(extension, name)
            if found is not None:
                return found
        return None

    def handles(self, extension: str) -> bool:
        return self.find(extension, "view") is not None

    def can_edit(self, extension: str) -> bool:
        return self.action_for(extension, "edit") is not None

    def extensions(self) -> set[str]:
        return {ext for ext, _ in self._by_ext}


def parse_discovery(text: bytes | str) -> Discovery:
    """Parse a discovery document; ``ValueError`` when it is not one."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"discovery is not well-formed XML ({exc})") from None
    if root.tag != "wopi-discovery":
        raise ValueError(f"discovery root element is <{root.tag}>, not <wopi-discovery>")
    actions: list[Action] = []
    capabilities = ""
    zones: list[str] = []
    for zone in root.iter("net-zone"):
        zones.append(zone.get("name", ""))
        for app in zone.iter("app"):
            app_name = app.get("name", "")
            for element in app.iter("action"):
                action = Action(
                    app=app_name,
                    name=element.get("name", ""),
                    ext=normalize_ext(element.get("ext", "")),
                    urlsrc=element.get("urlsrc", ""),
                    requires=frozenset(
                        part.strip() for part in element.get("requires", "").split(",") if part
                    ),
                    default=element.get("default", "").lower() == "true",
                    target_ext=normalize_ext(element.get("targetext", "")),
                )
                if app_name == "Capabilities" and action.name == "getinfo":
                    capabilities = action.urlsrc
                    continue
                actions.append(action)
    proof = root.find("proof-key")
    proof_key = None
    if proof is not None:
        proof_key = ProofKeyAttrs(
            value=proof.get("value", ""),
            modulus=proof.get("modulus", ""),
            exponent=proof.get("exponent", ""),
            oldvalue=proof.get("oldvalue", ""),
            oldmodulus=proof.get("oldmodulus", ""),
            oldexponent=proof.get("oldexponent", ""),
        )
    return Discovery(
        actions=tuple(actions),
        proof_key=proof_key,
        capabilities_url=capabilities,
        net_zone=zones[0] if zones else "",
    )


_PLACEHOLDER = re.compile(r"<(?P<name>[A-Za-z0-9_]+)=(?P<placeholder>[A-Z0-9_]+)&?>")


def fill_urlsrc(urlsrc: str, wopi_src: str, values: Mapping[str, str] | None = None) -> str:
    """Turn a discovery ``urlsrc`` into the editor URL for one file.

    Each ``<name=PLACEHOLDER&>`` group becomes ``name=<value>`` when ``values`` has a non-empty
    value for the placeholder, and disappears otherwise; ``WOPI_SOURCE`` is always the
    URL-encoded WOPISrc. When the template has no WOPISrc placeholder (Collabora's
    ``cool.html?``), ``WOPISrc=`` is appended. Empty query parts left by stripped groups are
    removed; values are URL-encoded, nothing else is re-encoded.
    """
    given = dict(values or {})
    given["WOPI_SOURCE"] = wopi_src
    has_wopisrc = False

    def replace(match: re.Match[str]) -> str:
        nonlocal has_wopisrc
        placeholder = match.group("placeholder")
        value = given.get(placeholder, "")
        if placeholder == "WOPI_SOURCE":
            has_wopisrc = True
        if not value:
            return "&"
        return f"&{match.group('name')}={quote(value, safe='')}&"

    filled = _PLACEHOLDER.sub(replace, urlsrc)
    base, _, query = filled.partition("?")
    parts = [part for part in query.split("&") if part]
    if not has_wopisrc:
        parts.append(f"WOPISrc={quote(wopi_src, safe='')}")
    return f"{base}?{'&'.join(parts)}"


@dataclass
class _Entry:
    url: str
    interval: float
    doc: Discovery | None = None
    fetched_at: float = 0.0
    attempted_at: float = -1e18
    proof_refetched_at: float = -1e18
    error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DiscoveryCache:
    """The discovery documents of the configured editors, fetched and refreshed as needed.

    ``refresh_interval``: age after which a document is refetched (the old one keeps serving
    if that fails). ``retry_interval``: how often a failed editor is retried in the
    background, and on demand while an older document still serves. ``unreachable_retry``:
    how often a request that needs an editor never reached (an open, a proof) tries again.
    ``proof_refetch_interval``: the least time between two refetches asked for by failed proof
    checks, so a flood of bad signatures cannot turn into a flood of discovery requests.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        sources: Mapping[str, str] | None = None,
        *,
        refresh_interval: float = 3600.0,
        retry_interval: float = 30.0,
        unreachable_retry: float = 1.0,
        proof_refetch_interval: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self.refresh_interval = refresh_interval
        self._entries: dict[str, _Entry] = {}
        for name, url in (sources or {}).items():
            self.add(name, url)
        self.retry_interval = retry_interval
        self.unreachable_retry = min(unreachable_retry, retry_interval)
        self.proof_refetch_interval = proof_refetch_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock

    def attach(self, session: aiohttp.ClientSession) -> None:
        """Use the application's shared session (known only once the application starts)."""
        self._session = session

    def add(self, app: str, url: str, refresh_interval: float | None = None) -> None:
        """Register an editor's discovery URL (before the application starts)."""
        self._entries[app.lower()] = _Entry(url, refresh_interval or self.refresh_interval)

    def names(self) -> list[str]:
        return list(self._entries)

    def peek(self, app: str) -> Discovery | None:
        """The last good document, without any network."""
        entry = self._entries.get(app.lower())
        return entry.doc if entry else None

    def status(self) -> dict[str, str]:
        """``ok`` or the reason each editor's discovery is missing (for ``/ready``)."""
        result: dict[str, str] = {}
        for name, entry in self._entries.items():
            if entry.doc is not None:
                result[name] = "ok" if not entry.error else f"ok (stale: {entry.error})"
            else:
                result[name] = entry.error or "not fetched yet"
        return result

    def unavailable(self, app: str) -> Unavailable:
        """The refusal while an editor's discovery is missing. It names the editor only: the
        reason (a host, a port, an HTTP status) is in the log and on ``/ready``."""
        return Unavailable(
            f"The {app} editor is not available right now: its discovery could not be "
            "loaded. Please try again later."
        )

    async def get(self, app: str, *, force: bool = False) -> Discovery:
        """The app's discovery, fetched when missing or older than the refresh interval."""
        entry = self._entries.get(app.lower())
        if entry is None:
            raise Unavailable(f"No discovery is configured for the {app} editor")
        now = self._clock()
        fresh = entry.doc is not None and now - entry.fetched_at < entry.interval
        may_retry = now - entry.attempted_at >= self._retry_after(entry)
        if force or (not fresh and may_retry):
            await self._refresh(app.lower(), entry, since=now)
        if entry.doc is None:
            raise self.unavailable(app)
        return entry.doc

    async def refresh_all(self) -> None:
        await asyncio.gather(*(self._refresh(name, entry) for name, entry in self._entries.items()))

    def _retry_after(self, entry: _Entry) -> float:
        return self.unreachable_retry if entry.doc is None else self.retry_interval

    async def run(self) -> None:
        """Refresh every document on the interval, for ever (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(self.retry_interval)
            now = self._clock()
            for name, entry in self._entries.items():
                stale = entry.doc is None or now - entry.fetched_at >= entry.interval
                if stale and now - entry.attempted_at >= self.retry_interval:
                    await self._refresh(name, entry)

    async def proof_keys(self, app: str, *, refresh: bool = False) -> ProofKeyAttrs | None:
        """The app's ``<proof-key>``; ``None`` for an app without discovery or a document
        without a key; :class:`Unavailable` when no document was ever loaded (the keys cannot
        be known, which the proof check must not take for "none")."""
        name = app.lower()
        entry = self._entries.get(name)
        if entry is None:
            return None
        now = self._clock()
        if refresh and now - entry.proof_refetched_at >= self.proof_refetch_interval:
            entry.proof_refetched_at = now
            await self._refresh(name, entry)
        elif entry.doc is None and now - entry.attempted_at >= self.unreachable_retry:
            await self._refresh(name, entry, since=now)
        if entry.doc is None:
            raise self.unavailable(app)
        return entry.doc.proof_key

    async def _refresh(self, name: str, entry: _Entry, since: float | None = None) -> None:
        async with entry.lock:
            if since is not None and entry.attempted_at > since:
                return  # another caller refreshed while we waited
            entry.attempted_at = self._clock()
            try:
                doc = await self._fetch(entry.url)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                entry.error = _describe(exc)
                log.warning("discovery of %s at %s failed: %s", name, entry.url, entry.error)
                return
            entry.doc = doc
            entry.fetched_at = self._clock()
            entry.error = ""
            log.info("discovery of %s loaded: %d actions", name, len(doc.actions))

    async def _fetch(self, url: str) -> Discovery:
        if self._session is None:
            raise ValueError("the application has not started")
        async with self._session.get(url, timeout=self._timeout) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_DISCOVERY_BYTES:
                    raise ValueError("discovery is larger than allowed")
        return parse_discovery(bytes(body))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect"  # where to: the log line says
    return str(exc) or type(exc).__name__
