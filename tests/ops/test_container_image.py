"""deploy/Dockerfile builds and its image serves, without a registry: the base is made by
debootstrap from Debian's mirror (tests/ops/image_base.sh), the image by podman.

The image is run with ``podman run`` where the machine lets podman set the container's limits;
inside a sandbox that withholds CAP_SYS_RESOURCE, crun cannot (``setrlimit RLIMIT_NPROC:
Operation not permitted``), and the image's own file system is run instead, read-only, as its
user 10001, with tmpfs where the image declares volumes: the same program, Python and files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import free_port, wait_for_port
from tests.support.requires import require_binary

REPO = Path(__file__).resolve().parents[2]
BASE = "localhost/wopibridge-base:bookworm"
IMAGE = "localhost/wopibridge:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _podman(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("podman"), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_binary("debootstrap")
    base = subprocess.run(
        ["sh", str(REPO / "tests" / "ops" / "image_base.sh")], capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert base.returncode == 0, base.stderr[-3000:]
    extra: list[str] = []
    if HOST_CA.exists():  # a proxy's CA the host trusts: pip in the build needs it too
        conf = tmp_path_factory.mktemp("pip") / "pip.conf"
        conf.write_text("[global]\ncert = /etc/ssl/host-ca.crt\n")
        extra = ["-v", f"{conf}:/etc/pip.conf:ro", "-v", f"{HOST_CA}:/etc/ssl/host-ca.crt:ro"]
    build = _podman(
        "build", "--isolation=chroot", *extra, "-f", str(REPO / "deploy" / "Dockerfile"),
        "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(REPO),
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


def _serve_with_podman(port: int) -> subprocess.Popen[bytes] | None:
    probe = _podman("run", "--rm", "--cgroups=disabled", IMAGE, "--version", timeout=120)
    if probe.returncode != 0 and "setrlimit" in probe.stderr:
        return None
    assert probe.stdout.startswith("wopibridge "), probe.stderr
    return subprocess.Popen(
        [require_binary("podman"), "run", "--rm", "--cgroups=disabled", "--network=host",
         "--read-only", "--tmpfs", "/tmp", "-e", "WOPIBRIDGE_SERVER_HOST=127.0.0.1",
         "-e", f"WOPIBRIDGE_SERVER_PORT={port}", IMAGE],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _serve_from_the_image_files(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    mount = _podman("image", "mount", IMAGE).stdout.strip()
    assert mount, "podman image mount gave no folder"
    script = tmp_path / "serve.sh"
    volumes = "\n".join(
        f"mount -t tmpfs -o mode=0755,uid=10001,gid=10001 tmpfs {mount}{folder}"
        for folder in ("/var/lib/wopibridge", "/srv/wopibridge")
    )
    script.write_text(
        f"{volumes}\nmount -t tmpfs -o mode=1777 tmpfs {mount}/tmp\n"
        "exec env -i PATH=/opt/wopibridge/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 "
        f"WOPIBRIDGE_SERVER_HOST=127.0.0.1 WOPIBRIDGE_SERVER_PORT={port} "
        "WOPIBRIDGE_SERVER_STATE_DIR=/var/lib/wopibridge WOPIBRIDGE_STORAGE_ROOT=/srv/wopibridge "
        f"{require_binary('chroot')} --userspec=10001:10001 {mount} wopibridge serve\n"
    )
    return subprocess.Popen(
        [require_binary("unshare"), "--mount", "sh", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_the_image_serves_and_stops_gracefully(image: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("building and running images here needs root (rootful podman)")
    port = free_port()
    proc = _serve_with_podman(port)
    how = "podman run"
    if proc is None:
        proc, how = _serve_from_the_image_files(port, tmp_path), "the image's files"
    try:
        wait_for_port(port, timeout=60)
        for path in ("/health", "/ready"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                assert resp.status == 200, (how, path)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        output = proc.communicate()[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _podman("image", "unmount", IMAGE)
    print(f"\nserved by {how}; stopped in {time.monotonic() - started:.1f} s")
    assert code == 0, output[-3000:]
    assert "drained in" in output and "Traceback" not in output, output[-3000:]
