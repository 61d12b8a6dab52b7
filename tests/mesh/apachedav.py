"""Debian's Apache 2.4 with ``mod_dav`` + ``mod_dav_fs``, started by the tests as a WebDAV server
nobody on this project wrote.

It gets its own ServerRoot, configuration, lock database (``DavLockDB``) and Basic-auth user
file in a temporary folder, serves ``root`` under ``/dav`` on a free loopback port, and runs in
the foreground (``-DFOREGROUND``) until the fixture stops it. It speaks WebDAV the way real
deployments meet it: weak ETags (``W/"…"``) for about a second after a change, ETags that are
inode-size-mtime, ``getlastmodified`` with one-second resolution, RFC 4918 locks with finite
timeouts.

Started as root, Apache refuses to serve as root: its workers run as ``www-data``, which is
given read and write rights on the served folder (and everything created in it later) through
POSIX default ACLs, so a test can still write files behind the server's back as another client
would. pytest's own temporary folders are private (and every pytest session that starts makes
them private again), so the folder served then lives in the server's own temporary folder and
``root`` becomes a symbolic link to it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, require_binary, wait_for_port

MODULES = Path("/usr/lib/apache2/modules")
_LOADED = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authn_file_module", "mod_authn_file.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("auth_basic_module", "mod_auth_basic.so"),
    ("alias_module", "mod_alias.so"),
    ("dav_module", "mod_dav.so"),
    ("dav_fs_module", "mod_dav_fs.so"),
)
RUN_USER = "www-data"


@dataclass
class ApacheDav:
    """An ``apache2`` process serving ``root`` as WebDAV under ``/dav`` with Basic auth."""

    root: Path
    user: str
    password: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    server_root: Path | None = None
    #: the folder Apache serves: ``root`` itself, or (as root) where ``root`` links to
    served: Path = field(default=Path())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dav"

    def _grant(self, path: Path) -> None:
        """Let the unprivileged worker user into ``path``, now and for what is created later."""
        setfacl = require_binary("setfacl")
        subprocess.run(
            [setfacl, "-R", "-m", f"u:{RUN_USER}:rwX,d:u:{RUN_USER}:rwX", str(path)], check=True
        )

    def _config(self, server_root: Path) -> str:
        as_root = os.geteuid() == 0
        lines = [
            f'ServerRoot "{server_root}"',
            f"Listen 127.0.0.1:{self.port}",
            f'PidFile "{server_root}/httpd.pid"',
            *(f'LoadModule {name} "{MODULES / so}"' for name, so in _LOADED),
            "ServerName 127.0.0.1",
            f'ErrorLog "{server_root}/error.log"',
            "LogLevel warn",
            f'DavLockDB "{server_root}/lock/DavLock"',
            # The lock timeout a client may ask for is honoured up to this; more is cut to it.
            "DavMinTimeout 0",
            "StartServers 1",
            "ServerLimit 2",
            "ThreadsPerChild 32",
            "MaxRequestWorkers 64",
            "KeepAliveTimeout 5",
            # No .htaccess is looked for anywhere (the folders above may not be readable).
            "<Directory />",
            "  AllowOverride None",
            "  Require all denied",
            "</Directory>",
            f'Alias /dav "{self.served}"',
            f'<Directory "{self.served}">',
            "  Dav On",
            "  AuthType Basic",
            '  AuthName "dav"',
            f'  AuthUserFile "{server_root}/htpasswd"',
            "  Require valid-user",
            "  Options None",
            "  AllowOverride None",
            "</Directory>",
        ]
        if as_root:
            lines += [f"User {RUN_USER}", f"Group {RUN_USER}"]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        binary = require_binary("apache2")
        self.served = self.root
        if not (MODULES / "mod_dav_fs.so").exists():
            require_binary("mod_dav_fs (Debian's apache2 package)")
        self.server_root = Path(tempfile.mkdtemp(prefix="wopibridge-apache-"))
        lock_dir = self.server_root / "lock"
        lock_dir.mkdir()
        digest = base64.b64encode(hashlib.sha1(self.password.encode()).digest()).decode()
        (self.server_root / "htpasswd").write_text(f"{self.user}:{{SHA}}{digest}\n")
        if os.geteuid() == 0:
            worker = pwd.getpwnam(RUN_USER)
            os.chown(lock_dir, worker.pw_uid, worker.pw_gid)
            self.server_root.chmod(0o755)  # under /tmp: every user may traverse it
            self.served = self.server_root / "share"
            self.served.mkdir()
            if self.root.exists():  # what the test put there already moves along
                for child in self.root.iterdir():
                    shutil.move(child, self.served / child.name)
                self.root.rmdir()
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.symlink_to(self.served)
            self._grant(self.served)
        conf = self.server_root / "httpd.conf"
        conf.write_text(self._config(self.server_root))
        self.proc = subprocess.Popen(
            [binary, "-f", str(conf), "-DFOREGROUND"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), "LANG": "C"},
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            raise RuntimeError("apache2 did not start:\n" + self.error_log()) from None

    def error_log(self) -> str:
        if self.server_root is None:
            return ""
        try:
            return (self.server_root / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.server_root is not None:
            shutil.rmtree(self.server_root, ignore_errors=True)
            self.server_root = None

    def table(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "webdav",
            "url": self.url,
            "auth": "basic",
            "username": self.user,
            "password": self.password,
            "retries": 1,
            "timeout": 10,
            **extra,
        }
