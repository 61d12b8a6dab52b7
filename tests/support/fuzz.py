"""Random, seeded WOPI, open and bridge requests for the fuzz test and ``bench/fuzz.py``.

Each request is built from a mix of valid parts (real file ids and tokens, real overrides and
headers) and hostile ones (tampered tokens, traversal and odd names, malformed UTF-7, huge
and deep JSON, random bytes, ``javascript:`` URLs), so that most requests reach deep into the
handlers instead of stopping at the token check. The same seed gives the same requests.

What a server may answer: :data:`DOCUMENTED` statuses only, never a 500 (no proof keys are
configured, so no proof failure can be the reason), and nothing that looks like a traceback.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

#: Every status wopibridge documents for these endpoints (WOPI.md, README).
DOCUMENTED = frozenset(
    {200, 202, 206, 303, 400, 401, 403, 404, 405, 408, 409, 412, 413, 416, 423, 501, 503, 507}
)

OVERRIDES = [
    "LOCK",
    "UNLOCK",
    "REFRESH_LOCK",
    "GET_LOCK",
    "PUT",
    "PUT_RELATIVE",
    "RENAME_FILE",
    "DELETE",
    "PUT_USER_INFO",
    "GET_SHARE_URL",
    "COBALT",
    "",
    "lock",
    "EXPLODE",
]
NAMES = [
    "a.docx",
    "what?.odt",
    "12:30 notes.txt",
    "back\\slash.txt",
    "Q3|Q4.xlsx",
    'say "hi".docx',
    "sub/deep.odt",
    "日本語.odt",
    "pad.etherpad",
    "notes.md",
]
HOSTILE_NAMES = [
    "../etc/passwd",
    "/etc/passwd",
    "a/../../x",
    "..",
    ".",
    "",
    "a\x00b",
    "x" * 300,
    ".~lock.a.docx#",
    "~$a.docx",
    ".~wb-1.tmp",
    "sub//deep.odt",
    "%2e%2e/x",
    "C:\\Windows\\win.ini",
]
BAD_URLS = ["javascript:alert(1)", "data:text/html,x", "//evil/x", "file:///etc/passwd", "ftp://x"]
GOOD_URLS = ["https://editor.example/x?", "http://ui.example/files", "https://a.example/?a=1&"]


@dataclass
class Opened:
    file_id: str
    token: str


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    kind: str = "wopi"


class Fuzzer:
    """Builds requests; ``opened`` are files opened for real (their ids and edit tokens)."""

    def __init__(self, seed: int, opened: list[Opened], iop_secret: str) -> None:
        self.rng = random.Random(seed)
        self.opened = opened
        self.iop_secret = iop_secret

    # -- pieces ---------------------------------------------------------------------------

    def text(self, limit: int = 40) -> str:
        rng = self.rng
        alphabet = string.printable + "äöü€😀\u202e\ud7ff"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))

    def header_text(self, limit: int = 40) -> str:
        return self.text(limit)

    def name(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            return rng.choice(NAMES)
        if pick < 0.8:
            return rng.choice(HOSTILE_NAMES)
        return self.text(30) + rng.choice(["", ".docx", ".odt", ".txt", "."])

    def utf7(self, value: str) -> str:
        rng = self.rng
        if rng.random() < 0.15:
            return rng.choice(["+ZZZ-", "+2D0-", "a+AGEA", "+", "+-", "&", "+AAA"])
        return value.encode("utf-7").decode("ascii", "replace")

    def token(self, opened: Opened) -> str | None:
        rng = self.rng
        pick = rng.random()
        if pick < 0.7:
            return opened.token
        if pick < 0.8:
            return rng.choice(self.opened).token  # another file's
        if pick < 0.9:
            head, _, rest = opened.token.partition(".")
            return head + "." + rest[::-1]
        return rng.choice([None, "", "garbage", "a.b.c", "x" * 5000])

    def file_id(self, opened: Opened) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.85:
            return opened.file_id
        return rng.choice(
            ["local.", "nothing", "local." + "A" * 7000, "other.abc", "%2e%2e", "local.a%00b"]
        )

    def body(self) -> bytes | None:
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:
            return None
        if pick < 0.6:
            return rng.randbytes(rng.randint(0, 2048))
        if pick < 0.8:
            return self.text(200).encode("utf-8", "surrogatepass")
        return b"x" * rng.randint(0, 200_000)

    def deep_json(self) -> bytes:
        depth = self.rng.choice([5, 31, 33, 200, 5000, 50_000])
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        return opener * depth + b"1" * (opener != b"[") + closer * depth

    # -- requests -------------------------------------------------------------------------

    def wopi(self) -> Request:
        rng = self.rng
        opened = rng.choice(self.opened)
        path = f"/wopi/files/{self.file_id(opened)}"
        contents = rng.random() < 0.35
        if contents:
            path += "/contents" if rng.random() < 0.9 else rng.choice(["/contents/", "/x"])
        method = rng.choices(["GET", "POST", "PUT", "HEAD", "DELETE"], [35, 57, 3, 3, 2])[0]
        headers: dict[str, str] = {}
        if method == "POST":
            headers["X-WOPI-Override"] = rng.choice(OVERRIDES)
        for header, make in (
            ("X-WOPI-Lock", lambda: rng.choice(["L1", "L2", "", "x" * 1025, self.header_text()])),
            ("X-WOPI-OldLock", lambda: rng.choice(["L1", "L2", "", self.header_text()])),
            ("X-WOPI-SuggestedTarget", lambda: self.utf7(self.name())),
            ("X-WOPI-RelativeTarget", lambda: self.utf7(self.name())),
            ("X-WOPI-OverwriteRelativeTarget", lambda: rng.choice(["true", "false", "maybe"])),
            ("X-WOPI-RequestedName", lambda: self.utf7(self.name().rsplit(".", 1)[0])),
            ("X-WOPI-Size", lambda: rng.choice(["0", "10", "-1", "99999999999", "abc"])),
            ("X-COOL-WOPI-Timestamp", lambda: rng.choice(["", "2026-01-01T00:00:00Z", "x"])),
            ("X-LOOL-WOPI-IsExitSave", lambda: rng.choice(["true", "false"])),
            ("X-WOPI-Proof", lambda: self.header_text(60)),
            ("Range", lambda: rng.choice(["bytes=0-1", "bytes=5-", "bytes=x", "bytes=9-1"])),
        ):
            if rng.random() < 0.25:
                headers[header] = make()
        params: dict[str, str] = {}
        token = self.token(opened)
        if token is not None:
            if rng.random() < 0.9:
                params["access_token"] = token
            else:
                headers["Authorization"] = f"Bearer {token}"
        body = self.body() if method in ("POST", "PUT") else None
        return Request(method, path, params, sendable(headers), body, "wopi")

    def iop_headers(self) -> dict[str, str]:
        rng = self.rng
        pick = rng.random()
        if pick < 0.8:
            return {"Authorization": f"Bearer {self.iop_secret}"}
        return rng.choice([{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])

    def openinapp(self) -> Request:
        rng = self.rng
        params = {
            "fileid": self.name(),
            "viewmode": rng.choice(
                ["VIEW_MODE_READ_WRITE", "VIEW_MODE_READ_ONLY", "VIEW_MODE_PREVIEW", "X", ""]
            ),
            "userid": rng.choice(["u@idp", "", self.header_text(20)]),
            "username": self.header_text(20),
            "appname": rng.choice(["collabora", "Collabora", "codimd", "nope", ""]),
            "usertype": rng.choice(["regular", "anonymous", "federated", "alien", ""]),
            "endpoint": rng.choice(["", "local", "local$space", "nostorage$x", self.text(10)]),
        }
        for key in ("appurl", "appviewurl", "folderurl"):
            if rng.random() < 0.6:
                params[key] = rng.choice(GOOD_URLS + BAD_URLS)
        for key in list(params):
            if rng.random() < 0.1:
                del params[key]
        headers = self.iop_headers()
        return Request("GET", "/wopi/iop/openinapp", params, headers, None, "open")

    def native_open(self) -> Request:
        rng = self.rng
        pick = rng.random()
        body: bytes
        if pick < 0.2:
            body = self.deep_json()
        elif pick < 0.3:
            body = rng.randbytes(rng.randint(0, 300))
        elif pick < 0.35:
            body = b'{"path": "' + b"x" * 70_000 + b'"}'
        else:
            document: dict[str, Any] = {
                "mode": rng.choice(["view", "edit", "editnew", "embedview", "x", 5, None]),
                "user": rng.choice(
                    [{"id": "u", "name": "U"}, {"id": 5}, "user", None, {"type": "alien"}]
                ),
                "app": rng.choice(["collabora", "codimd", "", "nope", 7]),
                "close_url": rng.choice([*GOOD_URLS, *BAD_URLS, "", 3]),
                "lang": rng.choice(["de-DE", "", "x" * 100]),
            }
            if rng.random() < 0.7:
                document["path"] = self.name()
            if rng.random() < 0.4:
                document["file_id"] = rng.choice(self.opened).file_id
            if rng.random() < 0.2:
                document["storage"] = rng.choice(["local", "nope", "", 1])
            body = json.dumps(document).encode()
        headers = {**self.iop_headers(), "Content-Type": "application/json"}
        return Request("POST", "/wopi/open", {}, headers, body, "open")

    def bridge(self) -> Request:
        rng = self.rng
        opened = rng.choice(self.opened)
        if rng.random() < 0.5:
            params = {"app": rng.choice(["codimd", "collabora", "", "nope"])}
            if rng.random() < 0.7:
                params["WOPISrc"] = f"http://127.0.0.1/wopi/files/{self.file_id(opened)}"
            token = self.token(opened) or ""
            form = {"access_token": token} if rng.random() < 0.8 else {"x": "y"}
            body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            if rng.random() < 0.1:
                body = b"x" * 70_000
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            return Request("POST", "/wopi/bridge/open", params, headers, body, "bridge")
        docid = rng.choice(["abc", "a" * 200, "%00", "0" * 22, self.text(10).replace("/", "")])
        params = {"close": rng.choice(["true", "false", "x"])}
        token = self.token(opened)
        if token:
            params["access_token"] = token
        params["WOPISrc"] = f"http://127.0.0.1/wopi/files/{self.file_id(opened)}"
        headers = {"X-EFSS-Bridged-App": rng.choice(["codimd", "x"])}
        return Request("POST", f"/wopi/bridge/{docid or 'x'}", params, headers, None, "bridge")

    def other(self) -> Request:
        rng = self.rng
        path = rng.choice(["/health", "/ready", "/metrics", "/wopi/host", "/nope", "/wopi/"])
        params = {"link": self.header_text(60)} if path == "/wopi/host" else {}
        return Request("GET", path, params, {}, None, "other")

    def next(self) -> Request:
        pick = self.rng.random()
        if pick < 0.6:
            return self.wopi()
        if pick < 0.75:
            return self.openinapp()
        if pick < 0.87:
            return self.native_open()
        if pick < 0.97:
            return self.bridge()
        return self.other()


def sendable(headers: dict[str, str]) -> dict[str, str]:
    """Header values an HTTP client can send: no control characters but tab, Latin-1 only
    (aiohttp's client refuses others; a raw socket could send them, and the server's parser
    would answer 400 before wopibridge sees them)."""
    clean = {}
    for key, value in headers.items():
        value = "".join(c for c in value if c == "\t" or (" " <= c <= "~") or "\xa0" <= c <= "\xff")
        clean[key] = value
    return clean


def bad_answer(status: int, body: str) -> str | None:
    """Why an answer breaks the rules, or ``None`` when it keeps them."""
    if status not in DOCUMENTED:
        return f"undocumented status {status}"
    if "Traceback" in body:
        return "a traceback in the answer"
    return None
