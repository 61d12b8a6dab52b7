"""The deploy files work as they come: the host install gives what the systemd unit runs
(``systemd-analyze verify`` accepts it), the Kubernetes example's pods become ready, its
placeholder secrets are refused by name, and the stop timings fit the drain."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import yaml

from tests.support.procs import RedisServer, free_port, wait_for_port
from tests.support.requires import require_binary
from wopibridge.config import load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
#: The units the wopibridge unit refers to, copied into the temporary root for the verify.
BASE_UNITS = (
    "sysinit.target", "basic.target", "multi-user.target", "network.target",
    "network-online.target", "shutdown.target", "sockets.target", "paths.target",
    "timers.target", "slices.target", "local-fs.target", "swap.target", "system.slice",
    "-.slice",
)  # fmt: skip


def _kubernetes() -> dict[str, dict]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    return {
        doc["kind"]: doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / resource).read_text())
    }


def test_the_host_install_gives_what_the_unit_runs(tmp_path: Path) -> None:
    """deploy/install-host.sh in a temporary root: venv, user, folders, settings, secrets and
    unit, which ``systemd-analyze verify`` accepts (the command it starts exists)."""
    analyze = require_binary("systemd-analyze")
    for tool in ("useradd", "groupadd"):
        require_binary(tool)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    env = {**os.environ, "ROOT": str(root), "SOURCE": str(REPO)}
    result = subprocess.run(
        ["sh", str(DEPLOY / "install-host.sh")], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    unit = root / "etc" / "systemd" / "system" / "wopibridge.service"
    units = root / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    for name in BASE_UNITS:
        source = Path("/usr/lib/systemd/system") / name
        if source.exists():
            shutil.copy(source, units / name)
    verify = subprocess.run(
        [analyze, "verify", f"--root={root}", str(unit)], capture_output=True, text=True
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    command = root / "opt" / "wopibridge" / "bin" / "wopibridge"
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("wopibridge "), version.stderr
    passwd = (root / "etc" / "passwd").read_text()
    [entry] = [line for line in passwd.splitlines() if line.startswith("wopibridge:")]
    uid = int(entry.split(":")[2])
    for folder in ("var/lib/wopibridge", "srv/wopibridge"):
        assert (root / folder).stat().st_uid == uid
    settings = (root / "etc" / "wopibridge" / "wopibridge.toml").read_text()
    for secret in ("token_secret", "iop_secret"):
        path = root / "etc" / "wopibridge" / secret
        assert f"/etc/wopibridge/{secret}" in settings
        assert len(path.read_text().strip()) >= 32 and path.stat().st_mode & 0o077 == 0o040
    assert "LimitNOFILE=" in unit.read_text() and "KillMode=mixed" in unit.read_text()


def test_kubernetes_shares_one_volume_and_stops_within_the_grace_period() -> None:
    docs = _kubernetes()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [data] = [v for v in pod["volumes"] if v["name"] == "data"]
    claim = docs["PersistentVolumeClaim"]
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    table = tomllib.loads(docs["ConfigMap"]["data"]["wopibridge.toml"])["server"]
    server = load_settings(None, env={}, overrides={"server": table}).server
    stop = int(pre_stop[1]) + server.drain_seconds + server.shutdown_timeout
    assert pod["terminationGracePeriodSeconds"] > stop


def _serve_example(
    tmp_path: Path, redis_url: str, secrets: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The example's settings file, with this machine's folders, port and Redis given the way
    a pod would give them (WOPIBRIDGE_* variables)."""
    docs = _kubernetes()
    config = tmp_path / "wopibridge.toml"
    config.write_text(docs["ConfigMap"]["data"]["wopibridge.toml"])
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    for name, value in secrets.items():
        (secret_dir / name).write_text(value)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOPIBRIDGE_")}
    env.update(
        PYTHONPATH=str(REPO),
        WOPIBRIDGE_SERVER_HOST="127.0.0.1",
        WOPIBRIDGE_SERVER_PORT=str(port),
        WOPIBRIDGE_SERVER_STATE_DIR=str(tmp_path / "state"),
        WOPIBRIDGE_STORAGE_ROOT=str(tmp_path / "data"),
        WOPIBRIDGE_SECURITY_TOKEN_SECRET_FILE=str(secret_dir / "token_secret"),
        WOPIBRIDGE_SECURITY_IOP_SECRET_FILE=str(secret_dir / "iop_secret"),
        WOPIBRIDGE_LOCKS_URL=redis_url,
    )
    (tmp_path / "data").mkdir()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wopibridge", "serve", "--config", str(config)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, port, log


def test_the_kubernetes_example_becomes_ready(tmp_path: Path, redis_server: RedisServer) -> None:
    secrets = {"token_secret": "a" * 32 + "-token", "iop_secret": "b" * 32 + "-iop"}
    proc, port, log = _serve_example(tmp_path, redis_server.url, secrets)
    try:
        wait_for_port(port, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10) as resp:
            assert resp.status == 200, log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_example_placeholder_secrets_are_refused_by_name(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    example = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "secret.example.yaml").read_text()))
    [secret] = [s for s in example if s["metadata"]["name"] == "wopibridge"]
    proc, _, log = _serve_example(tmp_path, redis_server.url, secret["stringData"])
    assert proc.wait(timeout=60) == 2
    output = log.read_text()
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "security.token_secret_file" in lines[0] and "placeholder" in lines[0]
    assert "Traceback" not in output
