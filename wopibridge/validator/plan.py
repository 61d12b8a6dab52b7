"""Load Microsoft's WOPI validator test plan (``TestCases.xml``) into plain dataclasses.

The plan shipped in ``data/`` is a byte-identical copy of the validator's file (MIT, see
``data/LICENSE``); another plan of the same schema can be passed with ``--plan``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from wopibridge.validator.checks import Check, ResponseCode, parse_check

#: Names of the request kinds this runner can send.
SUPPORTED_KINDS = frozenset(
    {
        "CheckFileInfo",
        "GetFile",
        "PutFile",
        "Lock",
        "Unlock",
        "RefreshLock",
        "UnlockAndRelock",
        "GetLock",
        "PutRelativeFile",
        "RenameFile",
        "DeleteFile",
        "PutUserInfo",
        "GetShareUrl",
    }
)


@dataclass(frozen=True)
class StateSpec:
    name: str
    source: str
    from_header: bool


@dataclass(frozen=True)
class ProofMutation:
    mutate_current: bool = False
    mutate_old: bool = False
    timestamp: str | None = None
    key_relation: str = "Synced"


@dataclass(frozen=True)
class RequestSpec:
    kind: str
    attrs: dict[str, str]
    checks: tuple[Check, ...]
    state: tuple[StateSpec, ...] = ()
    #: ``None``: token unchanged; ``""``: a random token; other: that exact token.
    token_mutation: str | None = None
    proof_mutation: ProofMutation | None = None
    body: str | None = None


@dataclass(frozen=True)
class TestCase:
    name: str
    category: str
    description: str
    requests: tuple[RequestSpec, ...]
    cleanup: tuple[RequestSpec, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    prereqs: tuple[str, ...]
    cases: tuple[TestCase, ...]


@dataclass(frozen=True)
class Plan:
    resources: dict[str, str]
    prereqs: dict[str, TestCase]
    groups: tuple[Group, ...] = field(default_factory=tuple)

    def group(self, name: str) -> Group | None:
        for group in self.groups:
            if group.name.lower() == name.lower():
                return group
        return None


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def _request(element: ET.Element) -> RequestSpec:
    validators = element.find("Validators")
    checks: tuple[Check, ...]
    if validators is None:
        checks = (ResponseCode(200),)
    else:
        checks = tuple(parse_check(child) for child in validators)
    state = tuple(
        StateSpec(
            name=s.get("Name", ""),
            source=s.get("Source", ""),
            from_header=(s.get("SourceType") or "JsonBody").lower() == "header",
        )
        for s in element.findall("SaveState/State")
    )
    token_mutation: str | None = None
    proof_mutation: ProofMutation | None = None
    for mutator in element.findall("Mutators/*"):
        if mutator.tag == "AccessToken":
            token_mutation = mutator.get("Mutation") or ""
        elif mutator.tag == "ProofKey":
            proof_mutation = ProofMutation(
                mutate_current=_bool(mutator.get("MutateCurrent")),
                mutate_old=_bool(mutator.get("MutateOld")),
                timestamp=mutator.get("Timestamp"),
                key_relation=mutator.get("KeyRelation") or "Synced",
            )
    body_element = element.find("RequestBody")
    body = body_element.text if body_element is not None and body_element.text else None
    return RequestSpec(
        kind=element.tag,
        attrs=dict(element.attrib),
        checks=checks,
        state=state,
        token_mutation=token_mutation,
        proof_mutation=proof_mutation,
        body=body,
    )


def _description(element: ET.Element) -> str:
    text = element.findtext("Description") or ""
    return " ".join(text.split())


def _case(element: ET.Element) -> TestCase:
    requests = element.find("Requests")
    cleanup = element.find("CleanupRequests")
    return TestCase(
        name=element.get("Name", ""),
        category=element.get("Category", ""),
        description=_description(element),
        requests=tuple(_request(r) for r in (requests if requests is not None else ())),
        cleanup=tuple(_request(r) for r in (cleanup if cleanup is not None else ())),
    )


def parse_plan(document: bytes) -> Plan:
    root = ET.fromstring(document)
    plan_resources = {f.get("Id", ""): f.get("Name", "") for f in root.findall("Resources/File")}
    prereqs = {c.get("Name", ""): _case(c) for c in root.findall("PrereqCases/TestCase")}
    groups = []
    for group in root.findall("TestGroup"):
        names = tuple((p.text or "").strip() for p in group.findall("PrereqTests/PrereqTest"))
        missing = [n for n in names if n not in prereqs]
        if missing:
            raise ValueError(f"group {group.get('Name')} names unknown prerequisite {missing[0]}")
        cases = tuple(_case(c) for c in group.findall("TestCases/TestCase"))
        groups.append(Group(name=group.get("Name", ""), prereqs=names, cases=cases))
    return Plan(resources=plan_resources, prereqs=prereqs, groups=tuple(groups))


def load_plan(path: Path | None = None) -> Plan:
    """The given plan, or the shipped copy of Microsoft's ``TestCases.xml``."""
    if path is not None:
        return parse_plan(path.read_bytes())
    data = resources.files(__package__).joinpath("data", "TestCases.xml").read_bytes()
    return parse_plan(data)
