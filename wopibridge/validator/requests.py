"""Turn a plan request into the exact HTTP request the validator would send.

URL: the WOPISrc (or a saved ``$State:`` URL) plus ``/contents`` for file bodies, with
``access_token`` and ``access_token_ttl`` appended the way the validator encodes them. Headers:
the operation's ``X-WOPI-Override`` and its own headers, ``Authorization: Bearer``, and the
proof headers signed over the final URL. The URL is sent byte-for-byte as built (no
re-quoting), because the host verifies the signature against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlsplit, urlunsplit

from wopibridge.validator.plan import RequestSpec
from wopibridge.validator.response import STATE_TOKEN, State
from wopibridge.validator.signing import RunnerKeys, proof_headers


class RequestError(Exception):
    """The request cannot be built (a ``$State:`` URL that was never saved, and so on)."""


@dataclass(frozen=True)
class Kind:
    method: str = "POST"
    override: str | None = None
    contents: bool = False
    text_response: bool = True


KINDS: dict[str, Kind] = {
    "CheckFileInfo": Kind("GET"),
    "GetFile": Kind("GET", contents=True, text_response=False),
    "PutFile": Kind("POST", "PUT", contents=True),
    "Lock": Kind(override="LOCK"),
    "Unlock": Kind(override="UNLOCK"),
    "RefreshLock": Kind(override="REFRESH_LOCK"),
    "UnlockAndRelock": Kind(override="LOCK"),
    "GetLock": Kind(override="GET_LOCK"),
    "PutRelativeFile": Kind(override="PUT_RELATIVE"),
    "RenameFile": Kind(override="RENAME_FILE"),
    "DeleteFile": Kind(override="DELETE"),
    "PutUserInfo": Kind(override="PUT_USER_INFO"),
    "GetShareUrl": Kind(override="GET_SHARE_URL"),
}


@dataclass
class Built:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)


def key_value_encode(value: str) -> str:
    """Percent-encode every character but ASCII letters and digits (the validator's rule)."""
    out = []
    for char in value:
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def utf7(name: str) -> str:
    """A file name as WOPI headers carry it: UTF-7 bytes, sent as ASCII text."""
    return name.encode("utf-7").decode("ascii")


def query_value(url: str, name: str) -> str | None:
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def replace_query_value(url: str, name: str, value: str) -> str:
    """Replace (or append) one query parameter, leaving the others' encoding untouched."""
    parts = urlsplit(url)
    pieces = [p for p in parts.query.split("&") if p] if parts.query else []
    encoded = f"{name}={quote_plus(value)}"
    replaced = False
    for i, piece in enumerate(pieces):
        if unquote_plus(piece.partition("=")[0]) == name:
            pieces[i] = encoded
            replaced = True
    if not replaced:
        pieces.append(encoded)
    return urlunsplit(parts._replace(query="&".join(pieces)))


def _with_contents(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/contents"))


def _request_url(
    spec: RequestSpec, kind: Kind, wopisrc: str, token: str, ttl: int, state: State
) -> tuple[str, str]:
    """The target URL and the access token it carries."""
    override = spec.attrs.get("OverrideUrl")
    if override:
        if override.startswith(STATE_TOKEN):
            key = override[len(STATE_TOKEN) :]
            if key not in state:
                raise RequestError(
                    f"OverrideUrl {override} was never saved (did it depend on a failed request?)"
                )
            target = state[key]
        else:
            target = override
        if target:
            url = _with_contents(target) if kind.contents else target
            return url, query_value(url, "access_token") or ""
    if spec.kind == "DeleteFile":
        raise RequestError("DeleteFile without a saved URL would delete the file under test")
    base = _with_contents(wopisrc) if kind.contents else wopisrc
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    url = f"{base}{separator}access_token={key_value_encode(token)}&access_token_ttl={ttl}"
    return url, token


def build(
    spec: RequestSpec,
    *,
    wopisrc: str,
    token: str,
    ttl: int,
    state: State,
    keys: RunnerKeys | None,
    load: Callable[[str], bytes],
    user_agent: str,
) -> Built:
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise RequestError(f"request kind '{spec.kind}' is not implemented by this runner")
    url, token = _request_url(spec, kind, wopisrc, token, ttl, state)
    if spec.token_mutation is not None:
        token = spec.token_mutation or str(uuid.uuid4())
        url = replace_query_value(url, "access_token", token)

    headers: dict[str, str] = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
    if kind.override:
        headers["X-WOPI-Override"] = kind.override
    attrs = spec.attrs
    body: bytes | None = None
    lock_kinds = ("Lock", "Unlock", "RefreshLock", "GetLock", "PutFile", "RenameFile")
    if spec.kind in lock_kinds and "Lock" in attrs:
        headers["X-WOPI-Lock"] = attrs["Lock"]
    if spec.kind == "GetFile" and attrs.get("NewLock"):
        headers["X-WOPI-Lock"] = attrs["NewLock"]
    if spec.kind == "UnlockAndRelock":
        headers["X-WOPI-Lock"] = attrs.get("NewLock", "")
        headers["X-WOPI-OldLock"] = attrs.get("OldLock", "")
    if spec.kind == "PutFile":
        body = load(attrs.get("ResourceId", ""))
    if spec.kind == "PutRelativeFile":
        body = load(attrs.get("ResourceId", ""))
        name = attrs.get("Name", "")
        if not name:
            raise RequestError("PutRelativeFile needs a Name")
        headers["X-WOPI-Size"] = str(len(body))
        mode = attrs.get("PutRelativeFileMode", "Suggested").lower()
        if mode in ("suggested", "conflicting"):
            headers["X-WOPI-SuggestedTarget"] = utf7(name)
        if mode in ("exactname", "conflicting"):
            headers["X-WOPI-RelativeTarget"] = utf7(name)
        if mode == "exactname" and "OverwriteRelative" in attrs:
            overwrite = attrs["OverwriteRelative"].strip().lower() in ("true", "1")
            headers["X-WOPI-OverwriteRelativeTarget"] = "True" if overwrite else "False"
        if mode not in ("suggested", "exactname", "conflicting"):
            raise RequestError(f"unknown PutRelativeFileMode '{attrs['PutRelativeFileMode']}'")
    if spec.kind == "RenameFile":
        headers["X-WOPI-RequestedName"] = utf7(attrs.get("Name", ""))
        headers.setdefault("X-WOPI-Lock", attrs.get("Lock", ""))
    if spec.kind == "PutUserInfo":
        body = (spec.body or "").encode("utf-8")
    if spec.kind == "GetShareUrl":
        headers["X-WOPI-UrlType"] = attrs.get("UrlType", "")
    if keys is not None:
        headers.update(proof_headers(keys, token, url, spec.proof_mutation))
    headers["Authorization"] = f"Bearer {token}"
    if kind.method == "POST" and body is None:
        body = b""
    return Built(method=kind.method, url=url, headers=headers, body=body, name=spec.kind)
