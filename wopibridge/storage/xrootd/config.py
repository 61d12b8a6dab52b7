"""The ``[storages.<name>]`` table of an XRootD storage (EOS, dCache, a plain ``xrootd``).

Authentication is the XRootD client's own (``XrdSecPROTOCOL`` and friends, read from the
process environment when the client library starts): this table only chooses it, and
:meth:`XrootdConfig.client_environment` says which variables that means. One process talks
to its XRootD storages with one set of credentials, as every XRootD client does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

AUTH_MODES = ("none", "unix", "krb5", "token", "sss")

#: the client's security protocol for each ``auth`` (``none`` leaves the client's default)
_PROTOCOLS = {"unix": "unix", "krb5": "krb5", "token": "ztn", "sss": "sss"}


@dataclass(frozen=True, slots=True)
class XrootdConfig:
    """One ``[storages.<name>]`` table of ``type = "xrootd"``.

    - ``url``: ``root://host:port`` (or ``roots://`` for TLS) of the redirector or server.
    - ``root``: the absolute path on the server that file references are relative to.
    - ``site``: names the site that owns the files; it prefixes every lock key.
    - ``timeout``: seconds for one request (whole seconds, 1 to 3600).
    - ``auth``: ``none``, ``unix``, ``krb5`` (with ``krb5ccname``), ``token`` (a bearer token
      in ``token_file``, XRootD's ``ztn`` protocol) or ``sss`` (with ``keytab``).
    - ``eos``: keep EOS's own app lock (``sys.app.lock``) beside the WOPI lock; ``"auto"``
      asks the server whether it is EOS.
    """

    url: str
    root: str = "/"
    site: str = ""
    timeout: int = 30
    auth: str = "none"
    krb5ccname: str = ""
    token_file: str = ""
    keytab: str = ""
    eos: str = "auto"

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> XrootdConfig:
        """Validate a configuration table; ``ValueError`` names the bad key."""
        known = set(cls.__dataclass_fields__) | {"type"}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"storages.{name}.{sorted(unknown)[0]}: unknown key")
        url = str(table.get("url", "")).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("root", "roots", "xroot", "xroots") or not parts.hostname:
            raise ValueError(f"storages.{name}.url: must be a root:// or roots:// URL")
        if parts.path or parts.query or parts.fragment:
            raise ValueError(f"storages.{name}.url: must name only the server (put paths in root)")
        try:
            parts.port  # noqa: B018 - a bad port raises here
        except ValueError:
            raise ValueError(f"storages.{name}.url: the port is not a number") from None
        root = str(table.get("root", "/"))
        if not root.startswith("/") or "?" in root or "\x00" in root:
            raise ValueError(f"storages.{name}.root: must be an absolute path on the server")
        try:
            timeout = int(float(table.get("timeout", 30)))
        except (TypeError, ValueError):
            raise ValueError(f"storages.{name}.timeout: must be a number of seconds") from None
        if not 1 <= timeout <= 3600:
            raise ValueError(f"storages.{name}.timeout: must be between 1 and 3600 seconds")
        auth = str(table.get("auth", "none"))
        if auth not in AUTH_MODES:
            raise ValueError(f"storages.{name}.auth: must be one of {', '.join(AUTH_MODES)}")
        needs = {"token": "token_file", "sss": "keytab"}.get(auth)
        if needs and not table.get(needs):
            raise ValueError(f"storages.{name}.{needs}: required with auth = {auth!r}")
        eos = table.get("eos", "auto")
        if isinstance(eos, bool):
            eos = "true" if eos else "false"
        eos = str(eos).lower()
        if eos not in ("auto", "true", "false"):
            raise ValueError(f'storages.{name}.eos: must be true, false or "auto"')
        scheme = "roots" if parts.scheme in ("roots", "xroots") else "root"
        netloc = parts.netloc.rpartition("@")[2]  # credentials never travel in the URL
        return cls(
            url=f"{scheme}://{netloc}",
            root=root.rstrip("/") or "/",
            site=str(table.get("site", "")) or f"xrootd:{netloc}",
            timeout=timeout,
            auth=auth,
            krb5ccname=str(table.get("krb5ccname", "")),
            token_file=str(table.get("token_file", "")),
            keytab=str(table.get("keytab", "")),
            eos=eos,
        )

    def client_environment(self) -> dict[str, str]:
        """The XRootD client variables this table's ``auth`` sets."""
        env: dict[str, str] = {}
        protocol = _PROTOCOLS.get(self.auth)
        if protocol:
            env["XrdSecPROTOCOL"] = protocol
        if self.auth == "krb5" and self.krb5ccname:
            env["KRB5CCNAME"] = self.krb5ccname
        if self.auth == "token":
            env["BEARER_TOKEN_FILE"] = self.token_file
        if self.auth == "sss":
            env["XrdSecSSSKT"] = self.keytab
        return env

    def path(self, relative: str) -> str:
        """The absolute server path of ``relative`` (``""`` is the root itself)."""
        if not relative:
            return self.root
        return f"{self.root}/{relative}" if self.root != "/" else f"/{relative}"

    def relative(self, path: str) -> str:
        """``path`` relative to the root (the inverse of :meth:`path`)."""
        prefix = self.root if self.root != "/" else ""
        return path[len(prefix) :].lstrip("/")
