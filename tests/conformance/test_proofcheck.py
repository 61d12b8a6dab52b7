"""The proof-key check over HTTP: a real discovery server, a real fetcher, signed requests.

The app under test is a minimal ``/wopi/files`` surface: a token middleware (the real
``TokenCodec``), then ``proof_middleware``, then a handler answering 200. Discovery is served
by a small aiohttp app whose keys the tests swap to play an editor rotating its keys.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from wopibridge.config import SETTINGS, ConfigError, load_settings
from wopibridge.errors import error_middleware
from wopibridge.security.keys import ACCESS
from wopibridge.security.proof.check import (
    PROOF_CHECKER,
    ProofChecker,
    proof_keys_ctx,
    proof_middleware,
    signed_url,
)
from wopibridge.security.proof.http import HttpProofKeySource
from wopibridge.security.proof.signature import ticks_from_unix
from wopibridge.security.tokens import TokenCodec
from wopibridge.validator.signing import RunnerKeys

from .conftest import load_vectors

SECRET = "0123456789abcdef0123456789abcdef"
PUBLIC_URL = "https://wopi.example.test"
TOKENS: web.AppKey[TokenCodec] = web.AppKey("test_tokens", TokenCodec)


@dataclass
class Discovery:
    """A discovery endpoint whose document the test can change; counts its hits."""

    document: str
    hits: int = 0


@dataclass
class FakeClock:
    now: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.now


@web.middleware
async def token_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    token = request.query.get("access_token", "")
    request[ACCESS] = request.app[TOKENS].verify(token)
    return await handler(request)


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def discovery_app(discovery: Discovery) -> web.Application:
    async def serve(request: web.Request) -> web.Response:
        discovery.hits += 1
        return web.Response(text=discovery.document, content_type="text/xml")

    app = web.Application()
    app.router.add_get("/hosting/discovery", serve)
    return app


Factory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def runner_keys() -> RunnerKeys:
    return RunnerKeys.generate()


@pytest.fixture
async def discovery(runner_keys: RunnerKeys, aiohttp_server: Any) -> tuple[Discovery, str]:
    state = Discovery(runner_keys.discovery_xml())
    server = await aiohttp_server(discovery_app(state))
    return state, str(server.make_url("/hosting/discovery"))


@pytest.fixture
def make_client(
    aiohttp_client: Any, discovery: tuple[Discovery, str]
) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def make(
        mode: str | None = "verify",
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        public_url: str = PUBLIC_URL,
        discovery_url: str | None = None,
    ) -> TestClient[Any, Any]:
        table: dict[str, Any] = {"discovery_url": discovery_url or discovery[1]}
        if mode is not None:
            table["proof_keys"] = mode
        settings = load_settings(
            env={}, overrides={"server": {"public_url": public_url}, "apps": {"collabora": table}}
        )
        app = web.Application(middlewares=[error_middleware, token_middleware, proof_middleware])
        app[SETTINGS] = settings
        app[TOKENS] = TokenCodec(SECRET, 3600)
        app.router.add_route("*", "/wopi/files/{file_id}", ok)

        async def checker_ctx(app: web.Application) -> Any:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                source = HttpProofKeySource(session, settings.apps, clock=monotonic)
                app[PROOF_CHECKER] = ProofChecker(source, settings, clock=clock)
                yield

        app.cleanup_ctx.append(checker_ctx)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make


def mint(app_name: str = "Collabora") -> str:
    token, _ = TokenCodec(SECRET, 3600).mint(
        file_id="local.abc", user_id="u1", user_name="U", app=app_name, mode="edit"
    )
    return token


async def call(
    client: TestClient[Any, Any],
    token: str,
    headers: dict[str, str] | None = None,
    path: str = "/wopi/files/local.abc",
) -> tuple[int, str]:
    raw = f"{path}?access_token={token}"
    response = await client.get(URL(raw, encoded=True), headers=headers or {})
    return response.status, await response.text()


def signed(
    keys_: RunnerKeys, token: str, *, stamp: int | None = None, path: str = "/wopi/files/local.abc"
) -> dict[str, str]:
    return keys_.headers(token, f"{PUBLIC_URL}{path}?access_token={token}", stamp)


async def test_valid_proof_passes(make_client: Factory, runner_keys: RunnerKeys) -> None:
    client = await make_client()
    token = mint()
    assert await call(client, token, signed(runner_keys, token)) == (200, "ok")


async def test_default_mode_is_verify(make_client: Factory, runner_keys: RunnerKeys) -> None:
    client = await make_client(mode=None)
    token = mint()
    assert (await call(client, token))[0] == 200
    bad = signed(runner_keys, token) | {"X-WOPI-Proof": "SU5WQUxJRA==", "X-WOPI-ProofOld": ""}
    assert (await call(client, token, bad))[0] == 500


async def test_signature_over_host_url_is_refused(
    make_client: Factory, runner_keys: RunnerKeys
) -> None:
    """The URL signed is public_url based; a proof over the Host-header URL must not pass."""
    client = await make_client()
    token = mint()
    host_url = str(client.make_url(f"/wopi/files/local.abc?access_token={token}"))
    status, _ = await call(client, token, runner_keys.headers(token, host_url))
    assert status == 500


async def test_old_key_acceptance(make_client: Factory, runner_keys: RunnerKeys) -> None:
    """X-WOPI-Proof signed with the old key (the editor's machine has not rotated yet)."""
    client = await make_client()
    token = mint()
    headers = signed(runner_keys, token)
    behind = {**headers, "X-WOPI-Proof": headers["X-WOPI-ProofOld"], "X-WOPI-ProofOld": "eA=="}
    assert (await call(client, token, behind))[0] == 200
    # ProofOld signed with the old key is not one of the accepted combinations.
    only_old = {**headers, "X-WOPI-Proof": "eA==", "X-WOPI-ProofOld": headers["X-WOPI-ProofOld"]}
    assert (await call(client, token, only_old))[0] == 500


async def test_stale_timestamp(make_client: Factory, runner_keys: RunnerKeys) -> None:
    client = await make_client()
    token = mint()
    stale = ticks_from_unix(time.time() - 21 * 60)
    status, text = await call(client, token, signed(runner_keys, token, stamp=stale))
    assert (status, text) == (500, "The proof-key timestamp is too old")
    recent = ticks_from_unix(time.time() - 19 * 60)
    assert (await call(client, token, signed(runner_keys, token, stamp=recent)))[0] == 200


async def test_missing_headers(make_client: Factory, runner_keys: RunnerKeys) -> None:
    token = mint()
    required = await make_client("require")
    assert await call(required, token) == (500, "The request carries no proof-key signature")
    partial = {k: v for k, v in signed(runner_keys, token).items() if k != "X-WOPI-TimeStamp"}
    assert (await call(required, token, partial))[0] == 500
    assert (await call(required, token, signed(runner_keys, token)))[0] == 200
    verify = await make_client("verify")
    assert (await call(verify, token))[0] == 200
    assert (await call(verify, token, partial))[0] == 500


async def test_off_mode_checks_nothing(make_client: Factory) -> None:
    client = await make_client("off")
    token = mint()
    garbage = {"X-WOPI-Proof": "eA==", "X-WOPI-TimeStamp": "1"}
    assert (await call(client, token, garbage))[0] == 200


async def test_app_name_matches_case_insensitively(
    make_client: Factory, runner_keys: RunnerKeys
) -> None:
    client = await make_client("require")
    token = mint("COLLABORA")
    assert (await call(client, token, signed(runner_keys, token)))[0] == 200


async def test_unknown_app(make_client: Factory, runner_keys: RunnerKeys) -> None:
    """No discovery for the token's app: verify cannot check and lets it pass."""
    client = await make_client("require")
    token = mint("etherpad")
    assert (await call(client, token, signed(runner_keys, token)))[0] == 200


async def test_rotation_refetches_once_rate_limited(
    make_client: Factory, runner_keys: RunnerKeys, discovery: tuple[Discovery, str]
) -> None:
    state, _ = discovery
    clock = FakeClock()
    client = await make_client(monotonic=clock)
    token = mint()
    assert (await call(client, token, signed(runner_keys, token)))[0] == 200
    assert state.hits == 1

    rotated = RunnerKeys.generate()
    state.document = rotated.discovery_xml()
    clock.now += 11
    assert (await call(client, token, signed(rotated, token)))[0] == 200
    assert state.hits == 2

    forged = RunnerKeys.generate()
    for _ in range(3):
        assert (await call(client, token, signed(forged, token)))[0] == 500
    assert state.hits == 2, "refetches within the rate limit"
    clock.now += 11
    for _ in range(3):
        assert (await call(client, token, signed(forged, token)))[0] == 500
    assert state.hits == 3, "one refetch per interval however many failures"


async def test_discovery_unreachable_is_503(make_client: Factory, runner_keys: RunnerKeys) -> None:
    client = await make_client(discovery_url="http://127.0.0.1:9/hosting/discovery")
    token = mint()
    status, _ = await call(client, token, signed(runner_keys, token))
    assert status == 503


async def test_microsoft_vectors_over_http(aiohttp_client: Any, aiohttp_server: Any) -> None:
    """The published vectors replayed as real requests, with the clock at their signing time."""
    data = load_vectors()
    key = data["discovery_proof_key"]
    names = ("value", "modulus", "exponent", "oldvalue", "oldmodulus", "oldexponent")
    attrs = " ".join(f'{n}="{key[n]}"' for n in names)
    state = Discovery(f"<wopi-discovery><proof-key {attrs}/></wopi-discovery>")
    server = await aiohttp_server(discovery_app(state))
    for vector in data["vectors"]:
        url = URL(vector["url"], encoded=True)
        settings = load_settings(
            env={},
            overrides={
                "server": {"public_url": f"{url.scheme}://{url.host}"},
                "apps": {
                    "msoffice": {
                        "discovery_url": str(server.make_url("/hosting/discovery")),
                        "proof_keys": "require",
                    }
                },
            },
        )
        signed_at = (vector["timestamp"] - 621_355_968_000_000_000) / 10_000_000

        @web.middleware
        async def vector_token(request: web.Request, handler: Any) -> web.StreamResponse:
            from wopibridge.security.tokens import AccessToken

            request[ACCESS] = AccessToken("f", "u", "U", "regular", "MSOffice", "edit", 0)
            return await handler(request)

        app = web.Application(middlewares=[error_middleware, vector_token, proof_middleware])
        app[SETTINGS] = settings

        async def ctx(
            app: web.Application, settings: Any = settings, signed_at: float = signed_at
        ) -> Any:
            import aiohttp

            async with aiohttp.ClientSession() as session:
                source = HttpProofKeySource(session, settings.apps)
                app[PROOF_CHECKER] = ProofChecker(source, settings, clock=lambda: signed_at + 60)
                yield

        app.cleanup_ctx.append(ctx)
        app.router.add_route("*", "/{tail:.*}", ok)
        client = await aiohttp_client(app)
        response = await client.get(
            URL(url.raw_path_qs, encoded=True),
            headers={
                "X-WOPI-Proof": vector["X-WOPI-Proof"],
                "X-WOPI-ProofOld": vector["X-WOPI-ProofOld"],
                "X-WOPI-TimeStamp": str(vector["timestamp"]),
            },
        )
        assert (response.status == 200) == vector["expected_valid"], vector["name"]
        await client.close()


async def test_proof_keys_ctx_installs_a_checker(aiohttp_client: Any) -> None:
    settings = load_settings(env={}, overrides={"apps": {"collabora": {"proof_keys": "require"}}})
    app = web.Application(middlewares=[error_middleware, token_middleware, proof_middleware])
    app[SETTINGS] = settings
    app[TOKENS] = TokenCodec(SECRET, 3600)
    app.cleanup_ctx.append(proof_keys_ctx)
    app.router.add_get("/wopi/files/{file_id}", ok)
    client = await aiohttp_client(app)
    assert PROOF_CHECKER in app
    # require mode and no discovery configured: refuse rather than trust blindly
    assert (await call(client, mint()))[0] == 500


def test_bad_mode_stops_start() -> None:
    settings = load_settings(env={}, overrides={"apps": {"collabora": {"proof_keys": "maybe"}}})
    with pytest.raises(ConfigError, match=r"apps\.collabora\.proof_keys"):
        ProofChecker(None, settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("public", "raw", "expected"),
    [
        ("https://h.test", "/wopi/files/x?a=1", "https://h.test/wopi/files/x?a=1"),
        ("https://h.test/office", "/wopi/files/x", "https://h.test/office/wopi/files/x"),
        ("https://h.test/office", "/office/wopi/files/x", "https://h.test/office/wopi/files/x"),
    ],
)
def test_signed_url(public: str, raw: str, expected: str) -> None:
    assert signed_url(public, raw) == expected


async def test_source_ttl_and_outage(
    discovery: tuple[Discovery, str], runner_keys: RunnerKeys, aiohttp_server: Any
) -> None:
    """Keys are kept for the TTL, refetched after it, and kept through a discovery outage
    (but a refetch asked for after a failed signature reports the outage)."""
    import aiohttp

    from wopibridge.errors import Unavailable

    state, url = discovery
    clock = FakeClock()
    async with aiohttp.ClientSession() as session:
        apps = {"collabora": {"discovery_url": url}, "down": {"discovery_url": url + "x"}}
        source = HttpProofKeySource(session, apps, ttl=100, clock=clock)
        first = await source.proof_keys("Collabora")
        assert first is not None and state.hits == 1
        clock.now += 50
        assert await source.proof_keys("collabora") == first and state.hits == 1
        clock.now += 60
        assert await source.proof_keys("collabora") == first and state.hits == 2
        assert await source.proof_keys("unknown") is None
        with pytest.raises(Unavailable):
            await source.proof_keys("down")
        with pytest.raises(Unavailable, match="moments ago"):
            await source.proof_keys("down")  # no new fetch within the rate limit
        state.document = "<broken"
        clock.now += 200
        assert await source.proof_keys("collabora") == first, "stale keys beat no keys"
        assert state.hits == 3
        assert await source.proof_keys("collabora", refresh=True) == first
        assert state.hits == 3, "an outage is not retried within the rate limit"
        clock.now += 11
        with pytest.raises(Unavailable):
            await source.proof_keys("collabora", refresh=True)
        assert state.hits == 4
