"""Traces: a local OTLP/HTTP receiver gets the spans; a real wsgidav sees ``traceparent``.

The receiver is a small aiohttp server decoding the protobuf ``ExportTraceServiceRequest``
exactly as a collector would; the WebDAV server is wsgidav, logging each request's
``traceparent`` header (``tests/mesh/davserver.py --trace-log``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.mesh.conftest import CS3_TOKEN, DAV_PASSWORD, DAV_USER, DavServer, start_gateway
from tests.mesh.test_app_mesh import make_app, openinapp, wopi_path
from wopibridge.instruments import INSTRUMENTS, TRACE_CONFIGS
from wopibridge.ops.tracing import exporters


class Receiver:
    """What an OTLP/HTTP collector received: every span, and the raw bodies."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        self.service_names: set[str] = set()

    async def traces(self, request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/x-protobuf"
        body = await request.read()
        self.bodies.append(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            for attr in resource_spans.resource.attributes:
                if attr.key == "service.name":
                    self.service_names.add(attr.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def wait_for(self, name: str, timeout: float = 10.0) -> list[Span]:
        deadline = time.monotonic() + timeout
        while not any(s.name == name for s in self.spans):
            assert time.monotonic() < deadline, f"no span {name!r}: {self.names()}"
            await asyncio.sleep(0.05)
        return [s for s in self.spans if s.name == name]

    def names(self) -> list[str]:
        return [s.name for s in self.spans]


def attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in span.attributes:
        value = attr.value
        out[attr.key] = getattr(value, value.WhichOneof("value"))
    return out


@pytest.fixture
async def receiver(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", found.traces)
    server = await aiohttp_server(app)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    return found


@pytest.fixture
def traced_dav(tmp_path: Path) -> Iterator[DavServer]:
    server = DavServer(tmp_path / "dav", trace_log=tmp_path / "dav-trace.log")
    server.root.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def traced_client(
    aiohttp_client: Any, tmp_path: Path, receiver: Receiver, traced_dav: DavServer
) -> AsyncIterator[Any]:
    app = make_app(
        tmp_path,
        {
            "nextcloud": {
                "type": "webdav",
                "url": traced_dav.url,
                "auth": "basic",
                "username": DAV_USER,
                "password": DAV_PASSWORD,
            }
        },
    )
    assert app[INSTRUMENTS].tracer is not None
    yield await aiohttp_client(app)


async def test_server_span_continues_traceparent_into_webdav(
    traced_client: Any, receiver: Receiver, traced_dav: DavServer
) -> None:
    (traced_dav.root / "report.docx").write_bytes(b"original")
    answer = await openinapp(traced_client, fileid="report.docx", endpoint="nextcloud")
    path = wopi_path(answer)
    file_id = path.rsplit("/", 1)[1]
    token = answer["form-parameters"]["access_token"]
    assert traced_dav.trace_log is not None
    traced_dav.trace_log.write_text("")  # only what follows

    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    resp = await traced_client.get(
        path,
        params={"access_token": token},
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
    )
    assert resp.status == 200, await resp.text()

    [server_span] = [
        s for s in await receiver.wait_for("CheckFileInfo") if s.trace_id.hex() == trace_id
    ]
    assert server_span.parent_span_id.hex() == parent_id
    assert server_span.kind == Span.SpanKind.SPAN_KIND_SERVER
    attrs = attributes(server_span)
    assert attrs["wopi.file_id"] == file_id
    assert attrs["http.response.status_code"] == 200
    assert receiver.service_names == {"wopibridge"}

    # the storage call is a child span, and its WebDAV request carried the same trace
    stat = [s for s in await receiver.wait_for("storage.stat") if s.trace_id.hex() == trace_id]
    assert stat and all(s.parent_span_id == server_span.span_id for s in stat)
    requests = [line.split("\t") for line in traced_dav.trace_log.read_text().splitlines()]
    assert requests, "wsgidav saw no request"
    for method, _path, traceparent in requests:
        assert traceparent.startswith(f"00-{trace_id}-"), (method, traceparent)

    # a lock-store call is a child span too
    lock = await traced_client.post(
        path,
        params={"access_token": token},
        headers={
            "X-WOPI-Override": "LOCK",
            "X-WOPI-Lock": "L1",
            "traceparent": f"00-{trace_id}-{parent_id}-01",
        },
    )
    assert lock.status == 200
    [lock_span] = [s for s in await receiver.wait_for("Lock") if s.trace_id.hex() == trace_id]
    calls = [s for s in await receiver.wait_for("lockstore.lock")]
    assert any(s.parent_span_id == lock_span.span_id for s in calls)

    # never the token, nor the query it travels in
    for body in receiver.bodies:
        assert token.encode() not in body and b"access_token" not in body


async def test_cs3_calls_carry_traceparent_in_grpc_metadata(
    aiohttp_client: Any, tmp_path: Path, receiver: Receiver
) -> None:
    running = await start_gateway(tmp_path / "cs3")
    try:
        (running.gateway.root / "notes.md").write_bytes(b"# notes")
        app = make_app(tmp_path, {"cernbox": {"type": "cs3", "gateway": running.address}})
        client = await aiohttp_client(app)
        answer = await openinapp(
            client, fileid="notes.md", endpoint="cernbox", token_header=CS3_TOKEN
        )
        running.gateway.traceparents.clear()
        trace_id = secrets.token_hex(16)
        resp = await client.get(
            wopi_path(answer),
            params={"access_token": answer["form-parameters"]["access_token"]},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
        assert resp.status == 200
        assert running.gateway.traceparents
        assert all(t.startswith(f"00-{trace_id}-") for t in running.gateway.traceparents)
        await receiver.wait_for("CheckFileInfo")
    finally:
        await running.stop()


async def test_trace_id_is_in_the_access_log_line(
    traced_client: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="wopibridge.access")
    trace_id = secrets.token_hex(16)
    resp = await traced_client.get(
        "/health", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    )
    assert resp.status == 200
    [record] = [r for r in caplog.records if r.name == "wopibridge.access"]
    assert record.__dict__["trace_id"] == trace_id and record.__dict__["op"] == "Health"
    await receiver.wait_for("Health")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_endpoint_is_set(
    env: dict[str, str], expected: list[str]
) -> None:
    assert exporters(env) == expected


async def test_tracing_off_takes_the_untraced_path(
    aiohttp_client: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    from wopibridge.app import create_app
    from wopibridge.ops.accesslog import access_log

    app = create_app(make_settings())
    assert app[INSTRUMENTS].tracer is None and app[TRACE_CONFIGS] == []
    assert access_log in app.middlewares
    client = await aiohttp_client(app)
    assert (await client.get("/health")).status == 200
