"""The runner's parts: the shipped plan, stand-in documents, request building, signing,
checks and the report."""

from __future__ import annotations

import io
import json
import zipfile
from importlib import resources

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from wopibridge.security.proof.http import parse_proof_key
from wopibridge.security.proof.signature import ProofKeys, signed_bytes, verify_proof
from wopibridge.validator import documents, report
from wopibridge.validator.checks import JsonProperty, LockMismatch, ResponseHeader
from wopibridge.validator.plan import ProofMutation, RequestSpec, load_plan
from wopibridge.validator.requests import RequestError, build, key_value_encode, utf7
from wopibridge.validator.response import Response
from wopibridge.validator.runner import CaseResult, GroupResult, RunResult, redact
from wopibridge.validator.signing import INVALID_PROOF, RunnerKeys, proof_headers

from .conftest import VALIDATOR_FIXTURES

WOPISRC = "http://host.test/wopi/files/f1"


@pytest.mark.parametrize(
    "name",
    [
        "TestCases.xml",
        "TestCases.xsd",
        "CsppCheckFileInfoSchema.json",
        "CsppPlusCheckFileInfoSchema.json",
        "LICENSE",
        "SOURCE.txt",
    ],
)
def test_shipped_data_is_the_published_file(name: str) -> None:
    shipped = resources.files("wopibridge.validator").joinpath("data", name).read_bytes()
    assert shipped == (VALIDATOR_FIXTURES / name).read_bytes()


def test_plan_loads_every_group() -> None:
    plan = load_plan()
    assert len(plan.groups) == 33
    assert sum(len(g.cases) for g in plan.groups) == 224
    locks = plan.group("locks")
    assert locks is not None and len(locks.cases) == 13
    assert locks.prereqs == ("WopiValidatorPrereq", "FileEditingPrereq", "LocksPrereq")
    proof = plan.group("ProofKeys")
    assert proof is not None
    mutations = [r.proof_mutation for c in proof.cases for r in c.requests]
    assert ProofMutation(key_relation="Ahead") in mutations
    assert ProofMutation(timestamp="2015-08-17T00:00:00Z") in mutations


def test_stand_in_documents() -> None:
    seen = set()
    for resource in ("WordBlankDocument", "WordSimpleDocument", "WordComplexDocument"):
        data = documents.document(resource)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            assert "word/document.xml" in archive.namelist()
        seen.add(data)
    assert len(seen) == 3
    assert documents.document("ZeroByteFile") == b""
    with pytest.raises(KeyError):
        documents.document("NoSuchDocument")


def spec(kind: str, **attrs: str) -> RequestSpec:
    return RequestSpec(kind=kind, attrs=attrs, checks=())


def make(
    request: RequestSpec, state: dict[str, str | None] | None = None, keys: RunnerKeys | None = None
) -> tuple[str, dict[str, str], bytes | None]:
    built = build(
        request,
        wopisrc=WOPISRC,
        token="a b/c",
        ttl=5,
        state=state or {},
        keys=keys,
        load=documents.document,
        user_agent="t",
    )
    return built.url, built.headers, built.body


def test_url_and_token_encoding() -> None:
    assert key_value_encode("a b/c-é") == "a%20b%2Fc%2D%C3%A9"
    url, headers, body = make(spec("CheckFileInfo"))
    assert url == f"{WOPISRC}?access_token=a%20b%2Fc&access_token_ttl=5"
    assert headers["Authorization"] == "Bearer a b/c"
    assert body is None
    url, headers, _ = make(spec("GetFile"))
    assert url.startswith(f"{WOPISRC}/contents?")


def test_lock_requests() -> None:
    _, headers, body = make(spec("UnlockAndRelock", NewLock="new", OldLock="old"))
    assert (headers["X-WOPI-Override"], headers["X-WOPI-Lock"], headers["X-WOPI-OldLock"]) == (
        "LOCK",
        "new",
        "old",
    )
    assert body == b""
    _, headers, body = make(spec("PutFile", Lock="L", ResourceId="WordSimpleDocument"))
    assert headers["X-WOPI-Override"] == "PUT"
    assert body == documents.document("WordSimpleDocument")


@pytest.mark.parametrize(
    ("mode", "present", "absent"),
    [
        ("Suggested", {"X-WOPI-SuggestedTarget"}, {"X-WOPI-RelativeTarget"}),
        (
            "ExactName",
            {"X-WOPI-RelativeTarget", "X-WOPI-OverwriteRelativeTarget"},
            {"X-WOPI-SuggestedTarget"},
        ),
        ("Conflicting", {"X-WOPI-SuggestedTarget", "X-WOPI-RelativeTarget"}, set()),
    ],
)
def test_put_relative_modes(mode: str, present: set[str], absent: set[str]) -> None:
    _, headers, _ = make(
        spec(
            "PutRelativeFile",
            Name="ünï.wopitest",
            ResourceId="ZeroByteFile",
            PutRelativeFileMode=mode,
            OverwriteRelative="true",
        )
    )
    assert present <= headers.keys() and not absent & headers.keys()
    assert headers["X-WOPI-Size"] == "0"
    for name in present - {"X-WOPI-OverwriteRelativeTarget"}:
        assert headers[name] == utf7("ünï.wopitest") == "+APw-n+AO8.wopitest"
    if mode == "ExactName":
        assert headers["X-WOPI-OverwriteRelativeTarget"] == "True"


def test_state_urls_and_mutated_tokens() -> None:
    saved = "http://other.test/wopi/files/f2?access_token=tok%2B2"
    url, headers, _ = make(spec("DeleteFile", OverrideUrl="$State:NewUrl"), {"NewUrl": saved})
    assert url == saved and headers["Authorization"] == "Bearer tok+2"
    with pytest.raises(RequestError, match="never saved"):
        make(spec("DeleteFile", OverrideUrl="$State:NewUrl"))
    with pytest.raises(RequestError, match="would delete the file under test"):
        make(spec("DeleteFile"))
    mutated = RequestSpec("Lock", {"Lock": "x"}, (), token_mutation="")
    url, headers, _ = make(mutated)
    assert "access_token=a%20b" not in url and headers["Authorization"] != "Bearer a b/c"
    with pytest.raises(RequestError, match="not implemented"):
        make(spec("GetCoauthLock"))


def test_discovery_document_publishes_the_signing_keys() -> None:
    keys = RunnerKeys.generate()
    attrs = parse_proof_key(keys.discovery_xml().encode())
    assert attrs is not None
    loaded = ProofKeys.from_attrs(attrs)
    url, headers, _ = make(spec("CheckFileInfo"), keys=keys)
    data = signed_bytes("a b/c", url, int(headers["X-WOPI-TimeStamp"]))
    assert verify_proof(loaded, data, headers["X-WOPI-Proof"], headers["X-WOPI-ProofOld"]) == (
        "proof/current"
    )


def test_proof_mutations() -> None:
    keys = RunnerKeys.generate()
    plain = keys.headers("t", "http://h/x", 1000)
    ahead = proof_headers(keys, "t", "http://h/x", ProofMutation(key_relation="Ahead"))
    assert ahead["X-WOPI-Proof"] == INVALID_PROOF
    behind = proof_headers(keys, "t", "http://h/x", ProofMutation(key_relation="Behind"))
    assert behind["X-WOPI-ProofOld"] == INVALID_PROOF
    both = proof_headers(
        keys, "t", "http://h/x", ProofMutation(mutate_current=True, mutate_old=True)
    )
    assert both["X-WOPI-Proof"] == both["X-WOPI-ProofOld"] == INVALID_PROOF
    old = proof_headers(keys, "t", "http://h/x", ProofMutation(timestamp="2015-08-17T00:00:00Z"))
    assert old["X-WOPI-TimeStamp"] == "635753664000000000"
    assert plain["X-WOPI-TimeStamp"] == "1000"


def response(status: int = 200, body: object = None, **headers: str) -> Response:
    raw = json.dumps(body).encode() if body is not None else b""
    return Response(status, CIMultiDictProxy(CIMultiDict(headers)), raw)


def no_load(_: str) -> bytes:
    raise AssertionError("no resource expected")


def test_state_comparisons_are_not_lenient() -> None:
    check = ResponseHeader("X-WOPI-ItemVersion", state_key="OriginalVersion", should_match=False)
    reply = response(**{"X-WOPI-ItemVersion": "v1"})
    assert check.check(reply, {"OriginalVersion": "v1"}, no_load)
    assert not check.check(reply, {"OriginalVersion": "v0"}, no_load)
    assert "never saved" in check.check(reply, {"OriginalVersion": None}, no_load)[0]


def test_lock_mismatch_check() -> None:
    check = LockMismatch("L1")
    assert not check.check(response(409, **{"X-WOPI-Lock": "L1"}), {}, no_load)
    assert check.check(response(409, **{"X-WOPI-Lock": "L2"}), {}, no_load)
    assert check.check(response(200, **{"X-WOPI-Lock": "L1"}), {}, no_load)
    assert check.check(response(409), {}, no_load)
    assert not LockMismatch("").check(response(409), {}, no_load)


def test_json_property_types_are_strict() -> None:
    flag = JsonProperty("BooleanProperty", "UserCanWrite", required=True, expected="true")
    assert not flag.check_value(True, {})
    assert flag.check_value("true", {})
    assert flag.check_value(None, {})
    size = JsonProperty("LongProperty", "Size", expected="3")
    assert size.check_value(True, {}) and not size.check_value(3, {})
    name = JsonProperty("StringProperty", "BaseFileName", ends_with=".WOPITEST", ignore_case=True)
    assert not name.check_value("a.wopitest", {}) and name.check_value("a.docx", {})
    url = JsonProperty("AbsoluteUrlProperty", "Url", must_include_token=True)
    assert url.check_value("http://h/x", {}) and not url.check_value(
        "http://h/x?access_token=t", {}
    )


def test_report_lines_and_json() -> None:
    result = RunResult(
        [
            GroupResult(
                "A",
                [
                    CaseResult("a1", "passed"),
                    CaseResult("a2", "failed", "Lock request failed", ["boom"]),
                ],
            ),
            GroupResult("B", [CaseResult("b1", "skipped", "why")], "why"),
        ]
    )
    assert report.totals_line(result) == "1 passed, 1 failed, 1 skipped"
    assert report.totals_line(RunResult([GroupResult("A", [CaseResult("a", "passed")])])) == (
        "1 passed, 0 failed"
    )
    out = io.StringIO()
    report.write_text(result, out)
    text = out.getvalue()
    assert "FAIL  A / a2" in text and "      - boom" in text
    assert "  A  1 passed, 1 failed, 0 skipped" in text and "(why)" in text
    assert text.rstrip().endswith("1 passed, 1 failed, 1 skipped")
    data = report.as_json(result)
    assert data["failed"] == 1 and data["groups"][1]["skipped_reason"] == "why"


def test_tokens_are_redacted_from_output() -> None:
    assert redact("http://h/x?access_token=secret&access_token_ttl=0") == (
        "http://h/x?access_token=REDACTED&access_token_ttl=0"
    )


def test_another_plan_of_the_same_schema() -> None:
    plan = load_plan(VALIDATOR_FIXTURES / "FeatureTestCases.xml")
    assert [g.name for g in plan.groups] == ["Features", "Features.BusinessFlow"]
    assert sum(len(g.cases) for g in plan.groups) == 8
