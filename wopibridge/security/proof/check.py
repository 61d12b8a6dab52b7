"""The proof-key check of ``/wopi/files`` requests.

Runs after the access token is verified (it needs the token's app name) and before the
operation. Per app, ``[apps.<name>] proof_keys`` says what to do:

- ``require``: every request must carry a valid proof; missing headers fail;
- ``verify`` (default): a request carrying a proof must verify; one without passes;
- ``off``: nothing is checked.

A request is signed when it carries ``X-WOPI-Proof`` or ``X-WOPI-ProofOld``. ``X-WOPI-TimeStamp``
alone is no signature: OnlyOffice sends it on every request and signs only when both of its
private keys are set (``wopiUtils.fillStandardHeaders``), so its three configurations (no key,
the current key only, current and old key) come as unsigned, unsigned, signed. Which of these an
app's requests are, and why a refusal in ``require`` mode happens, is logged once per app and
state, not once per request.

A failure raises :class:`~wopibridge.errors.ProofFailed` (500, what Microsoft's validator
expects). When a signature does not verify, the keys are refetched once (the source rate-limits
this) before giving up, so an editor's key rotation needs no restart.

The check fails closed. The key source answers :class:`~wopibridge.errors.Unavailable` when an
app's keys cannot be known (its discovery was never reached), and that is let through as a
503: a signed request is not served unchecked, and a secure-view GetFile without a proof is
refused (401) as if the editor published keys.

The signed URL is the one the editor called: ``server.public_url`` joined with the request's
raw path and query, never rebuilt from the ``Host`` header (behind a proxy they differ).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from wopibridge.config import SETTINGS, ConfigError, Settings
from wopibridge.errors import ProofFailed, Unauthorized, Unavailable
from wopibridge.security.keys import ACCESS
from wopibridge.security.proof.http import HttpProofKeySource
from wopibridge.security.proof.signature import (
    MAX_AGE_SECONDS,
    ProofKeyError,
    ProofKeys,
    is_fresh,
    parse_timestamp,
    signed_bytes,
    verify_proof,
)
from wopibridge.security.proof.source import ProofKeyAttrs, ProofKeySource

log = logging.getLogger("wopibridge.proofcheck")

MODES = ("require", "verify", "off")
DEFAULT_MODE = "verify"


def app_modes(apps: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``proof_keys`` of every configured app (lower-cased name); a bad value stops start-up."""
    modes: dict[str, str] = {}
    for name, table in apps.items():
        mode = str(table.get("proof_keys", DEFAULT_MODE)).lower()
        if mode not in MODES:
            raise ConfigError(f"apps.{name}.proof_keys", "must be require, verify or off")
        modes[name.lower()] = mode
    return modes


def signed_url(public_url: str, raw_path: str) -> str:
    """The URL as the editor sent it: the public base joined with the raw path and query.

    When ``public_url`` has a path (``https://host/office``) and the request path already
    starts with it (no proxy stripping), the prefix is not repeated.
    """
    parts = urlsplit(public_url)
    base = f"{parts.scheme}://{parts.netloc}"
    prefix = parts.path.rstrip("/")
    if prefix and not (raw_path == prefix or raw_path.startswith(prefix + "/")):
        return base + prefix + raw_path
    return base + raw_path


def token_forms(request: web.Request) -> list[str]:
    """The access token as it may have been signed: decoded from the query, and verbatim.

    Editors sign the token they were given; some put it in the URL percent-encoded, and
    Microsoft's own test vectors sign the query text verbatim (``%2f`` left as is). Both
    forms come from this very request, so accepting either does not widen what a signature
    proves.
    """
    forms: list[str] = []
    decoded = request.query.get("access_token")
    if decoded:
        forms.append(decoded)
        for piece in request.rel_url.raw_query_string.split("&"):
            name, _, raw = piece.partition("=")
            if name == "access_token" and raw and raw != decoded:
                forms.append(raw)
                break
    else:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            forms.append(value.strip())
    return forms or [""]


class ProofChecker:
    """Checks proof headers against the keys of the app named in the access token."""

    def __init__(
        self,
        source: ProofKeySource,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        max_age: float = MAX_AGE_SECONDS,
    ) -> None:
        self._source = source
        self._public_url = settings.server.public_url
        self._modes = app_modes(settings.apps)
        self._clock = clock
        self._max_age = max_age
        self._loaded: dict[ProofKeyAttrs, ProofKeys] = {}
        self._said: set[tuple[str, str]] = set()

    def _keys(self, attrs: ProofKeyAttrs) -> ProofKeys:
        """Parsed keys, remembered per attribute set (parsing costs as much as a verify)."""
        keys = self._loaded.get(attrs)
        if keys is None:
            if len(self._loaded) >= 64:
                self._loaded.clear()
            keys = self._loaded[attrs] = _load(attrs)
        return keys

    def mode(self, app: str) -> str:
        return self._modes.get(app.lower(), DEFAULT_MODE)

    async def check(self, request: web.Request, app: str, *, editor_only: bool = False) -> None:
        """Return when the request may proceed, raise ``ProofFailed`` otherwise.

        ``editor_only`` (GetFile in secure view): when the app publishes proof keys, an
        unsigned request is refused (401) even in ``verify`` mode, so only the editor, never
        the user's browser, can fetch the bytes."""
        mode = self.mode(app)
        if mode == "off":
            return
        proof = request.headers.get("X-WOPI-Proof", "")
        proof_old = request.headers.get("X-WOPI-ProofOld", "")
        stamp = request.headers.get("X-WOPI-TimeStamp", "")
        if not proof and not proof_old:
            if mode == "require":
                self._say(app, "refused", "its requests carry no proof-key signature", True)
                raise ProofFailed("The request carries no proof-key signature")
            if editor_only and await self._publishes_keys(app):
                raise Unauthorized("In secure view only the editor may fetch this file")
            self._say(app, "unsigned", "its requests carry no proof-key signature", False)
            return
        attrs = await self._source.proof_keys(app)
        if attrs is None:  # discovery may have come up since; the source rate-limits this
            attrs = await self._source.proof_keys(app, refresh=True)
        if attrs is None:
            if mode == "require":
                self._say(app, "no keys", "its discovery lists no proof key", True)
                raise ProofFailed("No proof key is known for this editor")
            self._say(app, "no keys", "its discovery lists no proof key to check them", False)
            return
        if not proof or not stamp:
            raise ProofFailed("The proof-key headers are incomplete")
        timestamp = parse_timestamp(stamp)
        if timestamp is None:
            raise ProofFailed("X-WOPI-TimeStamp is not a number")
        if not is_fresh(timestamp, self._clock, self._max_age):
            raise ProofFailed("The proof-key timestamp is too old")
        url = signed_url(self._public_url, request.raw_path)
        candidates = [signed_bytes(token, url, timestamp) for token in token_forms(request)]
        if _verifies(self._keys(attrs), candidates, proof, proof_old):
            old = "and old key" if attrs.oldvalue and attrs.oldvalue != attrs.value else "key"
            self._say(app, "checked", f"signed requests verified with its current {old}", False)
            return
        fresh_attrs = await self._source.proof_keys(app, refresh=True)
        if (
            fresh_attrs is not None
            and fresh_attrs != attrs
            and _verifies(self._keys(fresh_attrs), candidates, proof, proof_old)
        ):
            log.info("proof keys of app %r rotated", app)
            return
        raise ProofFailed("The proof-key signature does not verify")

    def _say(self, app: str, state: str, what: str, refused: bool) -> None:
        """One log line per app and state: how its requests are checked, or why refused."""
        if (app, state) in self._said:
            return
        self._said.add((app, state))
        mode = self.mode(app)
        if refused:
            log.warning(
                "proof keys of app %r: %s, and proof_keys = %s, so its requests are refused "
                "(500); sign them (OnlyOffice: set wopi.privateKey and wopi.privateKeyOld) or "
                "set proof_keys = verify",
                app,
                what,
                mode,
            )
        elif state == "checked":
            log.info("proof keys of app %r: %s (proof_keys = %s)", app, what, mode)
        else:
            log.info(
                "proof keys of app %r: %s; they are served unchecked (proof_keys = %s)",
                app,
                what,
                mode,
            )

    async def _publishes_keys(self, app: str) -> bool:
        try:
            return await self._source.proof_keys(app) is not None
        except Unavailable:  # the editor's keys cannot be known: refuse rather than leak
            return True


def _verifies(keys: ProofKeys, candidates: list[bytes], proof: str, proof_old: str) -> bool:
    return any(verify_proof(keys, data, proof, proof_old) for data in candidates)


def _load(attrs: ProofKeyAttrs) -> ProofKeys:
    try:
        return ProofKeys.from_attrs(attrs)
    except ProofKeyError as exc:
        log.warning("unusable proof key in discovery: %s", exc)
        raise ProofFailed("The editor's proof key cannot be loaded") from None


PROOF_CHECKER: web.AppKey[ProofChecker] = web.AppKey("proof_checker", ProofChecker)
#: Where the checker gets keys; the editors' discovery cache when the app has one.
PROOF_SOURCE: web.AppKey[ProofKeySource] = web.AppKey("proof_source")


async def check_proof(request: web.Request) -> None:
    """The proof check of one WOPI request whose token is already verified."""
    checker = request.app.get(PROOF_CHECKER)
    if checker is not None:
        access = request[ACCESS]
        get_file = request.method == "GET" and request.path.endswith("/contents")
        await checker.check(request, access.app, editor_only=access.secure and get_file)


@web.middleware
async def proof_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the proof of a request whose token is already verified (``ACCESS`` set).

    Install it after the token middleware; requests without a verified token (health, the
    openinapp endpoint) pass through untouched.
    """
    access = request.get(ACCESS)
    checker = request.app.get(PROOF_CHECKER)
    if access is not None and checker is not None:
        await checker.check(request, access.app)
    return await handler(request)


async def proof_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the checker, over ``PROOF_SOURCE`` when one is set (the editors'
    discovery cache), else over a small fetcher of its own; nothing if a checker exists."""
    if PROOF_CHECKER in app:
        yield
        return
    settings = app[SETTINGS]
    if PROOF_SOURCE in app:
        app[PROOF_CHECKER] = ProofChecker(app[PROOF_SOURCE], settings)
        yield
        return
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        source = HttpProofKeySource(session, settings.apps)
        app[PROOF_CHECKER] = ProofChecker(source, settings)
        yield
