"""What a test needs from the machine: a program or a Python module. Missing, it fails under
``CI=true`` (a CI run that skips what it was meant to run is not green) and skips elsewhere,
saying what to install. Every test that needs a real part asks through here."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest

#: The Debian package of each program the tests start (``.ci/run`` installs them).
DEBIAN_PACKAGES = {
    "apache2": "apache2",
    "chromium": "chromium",
    "debootstrap": "debootstrap",
    "haproxy": "haproxy",
    "node": "nodejs",
    "npm": "npm",
    "openssl": "openssl",
    "podman": "podman",
    "redis-cli": "redis-tools",
    "redis-server": "redis-server",
    "setfacl": "acl",
    "setfattr": "attr",
    "systemd-analyze": "systemd",
    "xrdfs": "xrootd-client",
    "xrootd": "xrootd-server",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, hint: str) -> None:
    """Fail under CI, skip elsewhere; both say ``what`` is missing and how to get it."""
    message = f"{what} is not available ({hint})"
    if in_ci():
        pytest.fail(f"{message}: required when CI=true", pytrace=False)
    pytest.skip(message)


def require_binary(name: str) -> str:
    """The path of program ``name`` on PATH."""
    path = shutil.which(name)
    if path:
        return path
    package = DEBIAN_PACKAGES.get(name, name)
    missing(name, f"apt-get install {package}")
    raise AssertionError("unreachable")


def require_module(name: str, distribution: str = "") -> ModuleType:
    """Python module ``name``; ``distribution`` is what pip installs it from."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}", f"pip install {distribution or name}")
        raise AssertionError("unreachable") from None
