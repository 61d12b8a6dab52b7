"""A real wsgidav WebDAV server for the tests and the benchmark, run as its own process.

``python -m tests.mesh.davserver --port P --root DIR [--user U --password PW] [--token T]``

This is wsgidav itself (class-2 WebDAV with its lock manager and property manager on, served
by cheroot), with one provider customisation that makes its filesystem behave like the
production servers wopibridge targets (Nextcloud, ownCloud and oCIS write uploads to a part
file and move it into place, and give every state its own etag):

* ``PUT`` writes to a temporary file beside the target and renames it over the target only
  once the body is complete; an aborted upload leaves the old content;
* etags use the nanosecond modification time, so two saves in one second differ;
* with ``--fileids``, files get an ownCloud/Nextcloud-style ``oc:fileid`` live property, kept in
  a user extended attribute that follows saves and moves, as those servers' ids do.

``/ro`` serves the same folder read-only (writes answer 403).

With ``--hide-locks``, PROPFIND never reports ``lockdiscovery`` (as servers without it do): a
locked file is then refused only once its PUT arrives, after cheroot's ``100 Continue``.

Quirks of servers met in the field, one flag each:

* ``--no-etags``: no ``getetag`` at all (PROPFIND and GET), only ``getlastmodified``;
* ``--ignore-preconditions``: ``If-Match`` and ``If-None-Match`` on ``PUT`` are dropped unread;
* ``--etag-on-lock``: the ETag also changes on every ``LOCK``, ``UNLOCK`` and ``PROPPATCH``.

With ``--trace-log FILE``, each request's method, path and ``traceparent`` header are appended
to FILE, one tab-separated line per request (the tracing tests check what reached the server).

With ``--user``, Basic authentication is required; with ``--token``, the same user also
accepts ``Authorization: Bearer <token>`` (as an OCM share's shared secret is sent).

With ``--nextcloud-versions``, the folder is also served at ``/remote.php/dav/files/<user>``
(with ``oc:fileid``), every upload over an existing file keeps the previous content, and a
**fake** of Nextcloud's versions DAV API answers under ``/remote.php/dav/versions/<user>``, as
Nextcloud's documentation describes it (WebDAV "Versions"): ``PROPFIND .../versions/<fileid>``
lists the versions (named by their Unix timestamp; one liberty: two saves in the same second
get increasing timestamps, where Nextcloud keeps one), ``GET .../versions/<fileid>/<version>``
downloads one, and ``MOVE`` of a version to ``.../restore/target`` restores it, keeping the
replaced content as a version.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import secrets
import stat
import urllib.parse

from cheroot import wsgi
from wsgidav import request_server
from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_NOT_FOUND, DAVError
from wsgidav.fs_dav_provider import FileResource, FilesystemProvider
from wsgidav.wsgidav_app import WsgiDAVApp

OC_FILEID = "{http://owncloud.org/ns}fileid"
XATTR = "user.oc.fileid"


def _fileid(path: str) -> str:
    try:
        return os.getxattr(path, XATTR).decode()
    except OSError:
        pass
    value = secrets.token_hex(8)
    try:
        os.setxattr(path, XATTR, value.encode(), os.XATTR_CREATE)
    except FileExistsError:
        return os.getxattr(path, XATTR).decode()
    except OSError:
        return ""
    return value


#: bumped by every LOCK, UNLOCK and PROPPATCH with ``--etag-on-lock`` (part of each ETag)
_GENERATION = [0]


class _AtomicFile(FileResource):
    def get_property_value(self, name):  # type: ignore[no-untyped-def]
        if name == OC_FILEID and self.environ["wsgidav.config"].get("oc_fileids"):
            value = _fileid(self._file_path)
            if value:
                return value
            raise DAVError(HTTP_NOT_FOUND)
        return super().get_property_value(name)

    def get_etag(self) -> str | None:
        config = self.environ["wsgidav.config"]
        if config.get("no_etags"):
            return None
        st = os.stat(self._file_path)
        etag = f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"
        return f"{etag}-{_GENERATION[0]}" if config.get("etag_on_lock") else etag

    def support_etag(self) -> bool:
        return not self.environ["wsgidav.config"].get("no_etags")

    def begin_write(self, *, content_type=None):  # type: ignore[no-untyped-def]
        if self.provider.readonly:
            raise DAVError(HTTP_FORBIDDEN)
        folder, name = os.path.split(self._file_path)
        self._temp = os.path.join(folder, f".~part-{secrets.token_hex(6)}-{name}")
        self._handle = open(self._temp, "wb")  # noqa: SIM115 - closed in end_write
        return self._handle

    def end_write(self, *, with_errors: bool) -> None:
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        handle.close()
        if with_errors:
            os.unlink(self._temp)
            return
        with contextlib.suppress(OSError):
            os.setxattr(self._temp, XATTR, os.getxattr(self._file_path, XATTR))
        versions = self.environ["wsgidav.config"].get("nc_versions")
        if versions and os.path.isfile(self._file_path):
            keep_version(versions, self._file_path)
        os.replace(self._temp, self._file_path)
        self.file_stat = os.stat(self._file_path)


def keep_version(versions: str, path: str) -> None:
    """Link the content at ``path`` (about to be replaced) in as a version of its file."""
    folder = os.path.join(versions, _fileid(path))
    os.makedirs(folder, exist_ok=True)
    stamp = int(os.stat(path).st_mtime)
    while os.path.exists(os.path.join(folder, str(stamp))):
        stamp += 1
    os.link(path, os.path.join(folder, str(stamp)))


class _NextcloudVersions:
    """WSGI wrapper: the fake of Nextcloud's versions DAV API (see the module docstring)."""

    def __init__(self, app, root: str, versions: str, user: str, basic: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.root, self.versions, self.basic = app, root, versions, basic
        self.prefix = f"/remote.php/dav/versions/{user}"

    def _file(self, fileid: str) -> str | None:
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    if os.getxattr(path, XATTR).decode() == fileid:
                        return path
        return None

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        path = environ.get("PATH_INFO", "")
        if not path.startswith(self.prefix + "/"):
            return self.app(environ, start_response)
        if self.basic and environ.get("HTTP_AUTHORIZATION") != self.basic:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="nc"')])
            return [b""]
        parts = path[len(self.prefix) + 1 :].strip("/").split("/")
        method = environ["REQUEST_METHOD"]
        if len(parts) < 2 or parts[0] != "versions":
            start_response("404 Not Found", [])
            return [b""]
        fileid = parts[1]
        current = self._file(fileid)
        folder = os.path.join(self.versions, fileid)
        if current is None:
            start_response("404 Not Found", [])
            return [b""]
        if len(parts) == 2 and method == "PROPFIND":
            return self._list(path, folder, start_response)
        version = os.path.join(folder, parts[2]) if len(parts) == 3 else ""
        if not version or not parts[2].isdigit() or not os.path.isfile(version):
            start_response("404 Not Found", [])
            return [b""]
        if method == "GET":
            with open(version, "rb") as handle:
                body = handle.read()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if method == "MOVE":
            if not environ.get("HTTP_DESTINATION", "").endswith(self.prefix + "/restore/target"):
                start_response("400 Bad Request", [])
                return [b""]
            temp = os.path.join(os.path.dirname(current), f".~restore-{secrets.token_hex(6)}")
            with open(version, "rb") as src, open(temp, "wb") as dst:
                dst.write(src.read())
            os.setxattr(temp, XATTR, fileid.encode())
            keep_version(self.versions, current)
            os.replace(temp, current)
            start_response("204 No Content", [])
            return [b""]
        start_response("405 Method Not Allowed", [])
        return [b""]

    def _list(self, path: str, folder: str, start_response):  # type: ignore[no-untyped-def]
        from email.utils import formatdate
        from xml.sax.saxutils import escape

        rows = [
            f"<d:response><d:href>{escape(path)}/</d:href><d:propstat><d:prop>"
            "<d:resourcetype><d:collection/></d:resourcetype></d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        ]
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        for name in names:
            st = os.stat(os.path.join(folder, name))
            rows.append(
                f"<d:response><d:href>{escape(path.rstrip('/'))}/{name}</d:href><d:propstat><d:prop>"
                f"<d:getcontentlength>{st.st_size}</d:getcontentlength>"
                f"<d:getlastmodified>{formatdate(int(name), usegmt=True)}</d:getlastmodified>"
                f'<d:getetag>"{name}"</d:getetag><d:resourcetype/>'
                "<nc:version-author></nc:version-author>"
                "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            )
        body = (
            '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" '
            'xmlns:nc="http://nextcloud.org/ns">' + "".join(rows) + "</d:multistatus>"
        ).encode()
        start_response(
            "207 Multi-Status",
            [
                ("Content-Type", "application/xml; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


def _destination_urlparse(url: str, scheme: str = "", allow_fragments: bool = True):  # type: ignore[no-untyped-def]
    """wsgidav percent-decodes ``Destination`` before splitting it, so a ``?`` in a file name
    (sent as ``%3F``, as RFC 3986 wants) would start a query and cut the name: keep it."""
    parts = urllib.parse.urlparse(url.replace("?", "%3F"), scheme, allow_fragments)
    return parts._replace(path=parts.path.replace("%3F", "?"))


request_server.urlparse = _destination_urlparse


class _Provider(FilesystemProvider):
    def get_resource_inst(self, path, environ):  # type: ignore[no-untyped-def]
        fp = self._loc_to_file_path(path, environ)
        if os.path.exists(fp) and stat.S_ISREG(os.stat(fp).st_mode):
            return _AtomicFile(path, environ, fp)
        return super().get_resource_inst(path, environ)


class _BearerOrBasic:
    """WSGI wrapper: turn ``Bearer <token>`` into the configured user's Basic credentials."""

    def __init__(self, app, token: str, basic: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.token, self.basic = app, token, basic

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("HTTP_AUTHORIZATION") == f"Bearer {self.token}":
            environ["HTTP_AUTHORIZATION"] = self.basic
        return self.app(environ, start_response)


class _HideLocks:
    """WSGI wrapper: PROPFIND requests no longer ask for ``lockdiscovery``."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("REQUEST_METHOD") == "PROPFIND":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            body = body.replace(b"<d:lockdiscovery/>", b"")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


class _Quirks:
    """WSGI wrapper: drop PUT preconditions, and/or count LOCK/UNLOCK/PROPPATCH for ETags."""

    def __init__(self, app, ignore_preconditions: bool, etag_on_lock: bool) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.ignore_preconditions = ignore_preconditions
        self.etag_on_lock = etag_on_lock

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        method = environ.get("REQUEST_METHOD")
        if self.ignore_preconditions and method == "PUT":
            environ.pop("HTTP_IF_MATCH", None)
            environ.pop("HTTP_IF_NONE_MATCH", None)
        if self.etag_on_lock and method in ("LOCK", "UNLOCK", "PROPPATCH"):
            _GENERATION[0] += 1
        return self.app(environ, start_response)


class _TraceLog:
    """WSGI wrapper: append ``method, path, traceparent`` of each request to a file."""

    def __init__(self, app, path: str) -> None:  # type: ignore[no-untyped-def]
        self.app, self.path = app, path

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        line = "\t".join(
            (
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                environ.get("HTTP_TRACEPARENT", ""),
            )
        )
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--token", default="")
    parser.add_argument("--fileids", action="store_true")
    parser.add_argument("--hide-locks", action="store_true")
    parser.add_argument("--trace-log", default="")
    parser.add_argument("--nextcloud-versions", default="")

    parser.add_argument("--no-etags", action="store_true")
    parser.add_argument("--ignore-preconditions", action="store_true")
    parser.add_argument("--etag-on-lock", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    mapping = {"*": {args.user: {"password": args.password}}} if args.user else {"*": True}
    config = {
        "host": "127.0.0.1",
        "port": args.port,
        "provider_mapping": {
            "/dav": _Provider(args.root),
            "/ro": _Provider(args.root, readonly=True),
            **(
                {f"/remote.php/dav/files/{args.user}": _Provider(args.root)}
                if args.nextcloud_versions
                else {}
            ),
        },
        "lock_storage": True,
        "property_manager": True,
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": mapping},
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
        "dir_browser": {"enable": False},
        "oc_fileids": args.fileids or bool(args.nextcloud_versions),
        "nc_versions": args.nextcloud_versions,
        "no_etags": args.no_etags,
        "etag_on_lock": args.etag_on_lock,
    }
    app = WsgiDAVApp(config)
    if args.nextcloud_versions:
        import base64

        basic = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        app = _NextcloudVersions(
            app,
            args.root,
            args.nextcloud_versions,
            args.user,
            f"Basic {basic}" if args.user else "",
        )
    if args.user and args.token:
        import base64

        basic = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        app = _BearerOrBasic(app, args.token, f"Basic {basic}")
    if args.hide_locks:
        app = _HideLocks(app)
    if args.ignore_preconditions or args.etag_on_lock:
        app = _Quirks(app, args.ignore_preconditions, args.etag_on_lock)
    if args.trace_log:
        app = _TraceLog(app, args.trace_log)
    server = wsgi.Server(("127.0.0.1", args.port), app, numthreads=8)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
