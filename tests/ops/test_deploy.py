"""deploy/: every metric the dashboard and the alert rules use exists in ``/metrics``, and the
settings the manifests and the compose file give are settings the server accepts.

(``.ci/run`` lints the Dockerfile with hadolint and validates the manifests against the
Kubernetes schemas; no image can be built or pulled here.)
"""

from __future__ import annotations

import json
import re
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import RedisServer
from tests.support.server import running_server
from wopibridge.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Series Prometheus makes itself, not the server.
SCRAPE_SERIES = {"up"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exposed_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def used_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names or label values."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values and strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(\.\d+)?(e\d+)?\b", "", expr)  # numbers
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*+(?!\s*\()", expr))
    return words - {"and", "or", "unless", "bool", "offset"}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "wopibridge-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(re.sub(r"^label_values\((\w+),.*", r"\1", variable["definition"]))
    return exprs


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "wopibridge-rules.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_used_names_reads_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{operation="x"}[5m]))) > 1'
        " / sum(b_total) > 400e6"
    )
    assert used_names(expr) == {"a_bucket", "b_total"}


def test_dashboard_and_alerts_use_only_exposed_metrics(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    exposed: set[str] = set()
    # one process (process_* metrics) and several workers (per-worker gauges)
    for name, extra in (
        ("single", {}),
        ("workers", {"server": {"workers": 2}, "lock_url": redis_server.url}),
    ):
        with running_server(tmp_path / name, **extra) as server:  # type: ignore[arg-type]
            urllib.request.urlopen(f"{server.url}/health").read()
            text = ""
            for _ in range(50):  # until a worker has published its process gauges
                text = urllib.request.urlopen(f"{server.url}/metrics").read().decode()
                if name == "single" or "wopibridge_worker_resident_memory_bytes{" in text:
                    break
            exposed |= exposed_names(text)
    assert "wopibridge_requests_total" in exposed
    for source, exprs in (("dashboard", dashboard_exprs()), ("alert rules", rule_exprs())):
        assert exprs
        for expr in exprs:
            missing = used_names(expr) - exposed - SCRAPE_SERIES
            assert not missing, f"{source}: {sorted(missing)} not in /metrics: {expr}"


def _env_list(container: dict[str, Any]) -> dict[str, str]:
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env


def test_kubernetes_settings_are_accepted(tmp_path: Path) -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    documents = [
        doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / resource).read_text())
    ]
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    [configmap] = [d for d in documents if d["kind"] == "ConfigMap"]
    assert deployment["spec"]["replicas"] >= 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]

    config = tmp_path / "wopibridge.toml"
    config.write_text(configmap["data"]["wopibridge.toml"])
    tomllib.loads(config.read_text())
    secrets = yaml.safe_load_all((DEPLOY / "kubernetes" / "secret.example.yaml").read_text())
    redis_url = next(s for s in secrets if s["metadata"]["name"] == "wopibridge-redis")
    env = {**_env_list(container), "WOPIBRIDGE_LOCKS_URL": redis_url["stringData"]["url"]}
    settings = load_settings(config, env=env)
    assert settings.server.port == container["ports"][0]["containerPort"]
    assert settings.server.log_format == "json"


def test_compose_settings_are_accepted() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    service = compose["services"]["wopibridge"]
    assert service["read_only"] is True
    assert set(compose["services"]) == {"wopibridge", "redis", "collabora", "etherpad"}
    env = {k: str(v) for k, v in service["environment"].items()}
    settings = load_settings(None, env=env)
    assert set(settings.apps) == {"collabora", "etherpad"}
    assert settings.locks.url.startswith("redis://redis:")


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2  # multi-stage
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK .*\n?.*/health", text, re.M)
