"""``/metrics`` on prometheus_client, read back with the library's own text parser."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.wopi import open_file

REQUEST_LABELS = {"operation", "status_class", "le"}
#: What a crafted path tries to smuggle into the exposition: a closing quote and brace, a
#: newline and a whole metric line, percent-encoded.
INJECTION = "%22%7D%0Ainjected_metric%7Bx%3D%22y%22%7D%201%0A"


async def scrape(client: Any) -> tuple[str, dict[str, list[Sample]]]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = list(family.samples)
    return text, families


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` with those labels."""
    return sum(
        sample.value
        for samples in families.values()
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_requests_are_counted_by_operation_and_status_class(client, data_dir: Path) -> None:
    (data_dir / "a.docx").write_bytes(b"doc")
    opened = await open_file(client, "a.docx")
    await opened.check_file_info()
    assert (await opened.lock("L1")).status == 200
    assert (await opened.lock("L2")).status == 409
    assert (await opened.op("FROBNICATE")).status == 501
    _, families = await scrape(client)
    requests = "wopibridge_requests_total"
    assert value(families, requests, operation="CheckFileInfo", status_class="2xx") == 1
    assert value(families, requests, operation="Lock", status_class="2xx") == 1
    assert value(families, requests, operation="Lock", status_class="4xx") == 1
    assert value(families, requests, operation="other", status_class="5xx") == 1
    assert value(families, "wopibridge_conflicts_total", operation="Lock") == 1
    assert value(families, "wopibridge_requests_total", operation="OpenInApp") == 1
    count = "wopibridge_request_duration_seconds_count"
    assert value(families, count, operation="Lock", status_class="4xx") == 1
    # every lock-store and storage call is timed, by call (and storage); the two Locks make
    # more than two: the local storage keeps its lock at the folder beside the WOPI lock (its
    # token, the site's id) in the same store
    assert value(families, "wopibridge_lock_store_duration_seconds_count", call="lock") >= 2
    assert (
        value(families, "wopibridge_storage_duration_seconds_count", storage="local", call="stat")
        >= 3
    )
    # the process metrics of a single process
    assert value(families, "process_resident_memory_bytes") > 0
    assert {s.labels.get("status_class") for s in families["wopibridge_requests"]} <= {
        "2xx",
        "4xx",
        "5xx",
    }


async def test_unknown_paths_never_become_labels(client, caplog) -> None:
    caplog.set_level(logging.WARNING)  # the access log of 10,000 requests is not the point
    # one request of each kind first: the series they count in exist from here on
    assert (await client.get("/nowhere")).status == 404
    assert (await client.get("/wopi/files/warm-up")).status == 401
    await scrape(client)  # and the scrape's own series
    before, _ = await scrape(client)
    for i in range(10_000):
        kind = i % 3
        if kind == 0:  # no route
            path, expected = f"/{INJECTION}{i}", 404
        elif kind == 1:  # no route under /wopi/files
            path, expected = f"/wopi/files/x/{i}/{INJECTION}", 404
        else:  # a crafted file id (no braces: those would not match the route)
            path, expected = f"/wopi/files/%22%0Ainjected_metric%201%0A{i}", 401
        resp = await client.get(path)
        assert resp.status == expected, path
        resp.release()
    text, families = await scrape(client)
    assert len(text.splitlines()) == len(before.splitlines())
    assert "injected_metric" not in text and "nowhere" not in text
    assert "injected_metric" not in families
    assert value(families, "wopibridge_requests_total", operation="other") >= 6_668
    for name in ("wopibridge_requests", "wopibridge_request_duration_seconds"):
        for sample in families[name]:
            assert set(sample.labels) <= REQUEST_LABELS


def test_every_route_has_an_operation_name(make_settings) -> None:
    """A route added without a name would be counted as ``other``: name it in
    ``ROUTE_OPERATIONS``."""
    from wopibridge.app import create_app
    from wopibridge.ops.metrics import ROUTE_OPERATIONS, WOPI_FILES

    app = create_app(make_settings())
    for resource in app.router.resources():
        canonical = resource.canonical
        assert canonical.startswith(WOPI_FILES) or canonical in ROUTE_OPERATIONS, canonical
