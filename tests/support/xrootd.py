"""A real ``xrootd`` server (Debian's ``xrootd-server``) for the tests, on a free port.

xrootd refuses to run as root, so the server runs as the unprivileged ``xrootd`` user the
Debian package creates, with its own configuration, admin folder and export folder in a
temporary folder that user can write. Tests prepare and inspect files in the export folder
directly (``server.data``), as another client of the same storage would: a default ACL on it
gives the ``xrootd`` user read and write on everything the tests create there.

``ofs.xattr uset on`` (with the default name and value sizes) lets clients set user extended
attributes (the file id, the lock, metadata), kept by the server as ``user.U.<name>``.
"""

from __future__ import annotations

import importlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.procs import free_port, stop_process, wait_for_port
from tests.support.requires import in_ci, require_binary

USER = "xrootd"

CONFIG = """\
xrd.port {port}
all.export /
all.export /ro r/o
all.adminpath {admin}
all.pidpath {admin}
oss.localroot {data}
ofs.xattr uset on
xrootd.seclib libXrdSec.so
sec.protocol unix
"""


def require_client() -> None:
    """The XRootD client bindings (the ``xrootd`` extra); in CI a missing one fails."""
    try:
        importlib.import_module("XRootD.client")
    except ImportError:
        if in_ci():
            pytest.fail("the XRootD client is required in CI (the test extra installs it)")
        pytest.skip("pip install 'wopibridge[xrootd]'", allow_module_level=True)


def _user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        if in_ci():
            pytest.fail(f"the {USER} user is required in CI (Debian's xrootd-server creates it)")
        pytest.skip(f"no {USER} user (install xrootd-server)")


class XrootdServer:
    """One ``xrootd`` process serving ``data`` on a free port, stoppable and restartable."""

    def __init__(self) -> None:
        require_client()
        self.binary = require_binary("xrootd")
        self.setfacl = require_binary("setfacl")
        account = _user()
        self.uid, self.gid = account.pw_uid, account.pw_gid
        # /tmp itself: pytest's own temporary folders are closed to other users
        self.base = Path(tempfile.mkdtemp(prefix="wb-xrootd-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.admin = self.base / "admin"
        for folder in (self.data, self.admin):
            folder.mkdir()
            os.chown(folder, self.uid, self.gid)
        # what the tests write here as root stays readable and writable by the server
        subprocess.run(
            [self.setfacl, "-m", f"u:{USER}:rwx,d:u:{USER}:rwx,d:u::rwx,d:m::rwx", str(self.data)],
            check=True,
        )
        # /ro is the same files, exported read-only (a view whose writes the server refuses)
        (self.data / "ro").symlink_to(".")
        self.port = free_port()
        self.config = self.base / "xrootd.cfg"
        self.config.write_text(CONFIG.format(port=self.port, admin=self.admin, data=self.data))
        # xrootd writes its log into a folder named after the instance (-n), beside this
        self.log = self.admin / "wb" / "xrootd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"root://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-l", str(self.admin / "xrootd.log"), "-n", "wb"],
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            cwd=self.admin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, timeout=20)
        except TimeoutError:
            self.stop()
            raise
        time.sleep(0.1)  # the port opens just before the file system is ready

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
            self.proc = None

    def folder(self, name: str) -> Path:
        """A fresh folder in the export for one test (its server path is ``/<name>``)."""
        folder = self.data / name
        folder.mkdir()
        return folder

    def readonly_root(self, root: str) -> str:
        """The server path of ``root`` in the read-only export."""
        return f"/ro{root}"

    def table(self, root: str = "/", **extra: object) -> dict[str, object]:
        return {"type": "xrootd", "url": self.url, "root": root, "timeout": 10, **extra}

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def xrootd_server() -> Iterator[XrootdServer]:
    server = XrootdServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def xattrs(path: Path) -> dict[str, str]:
    """The attributes a client set on a file, as the server keeps them (``user.U.<name>``)."""
    found = {}
    for name in os.listxattr(path):
        if name.startswith("user.U."):
            found[name[len("user.U.") :]] = os.getxattr(path, name).decode()
    return found
