"""Response validators of the test plan, parsed from their XML elements.

Each check returns a list of failure sentences (empty = passed). The semantics follow
Microsoft's validator, with one deliberate difference: a comparison against saved state
(``ExpectedStateKey``) whose state was never saved *fails* instead of silently passing, so a
host that omits a version header cannot pass a "version changed" test by accident.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import jsonschema  # type: ignore[import-untyped]

from wopibridge.validator.response import Response, State, select_token

ResourceLoader = Callable[[str], bytes]


class Check(Protocol):
    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]: ...


def _bool_attr(element: ET.Element, name: str, default: bool) -> bool:
    value = element.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("true", "1")


def _expected(state: State, key: str | None, default: str | None) -> tuple[str | None, str]:
    """The expected value: saved state first, then ``ExpectedValue``; error text if neither."""
    if key:
        saved = state.get(key)
        if saved:
            return saved, ""
        if default is None:
            return None, f"expected state '{key}' was never saved (did an earlier request fail?)"
    return default, ""


@dataclass(frozen=True)
class ResponseCode:
    expected: int

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        if response.status != self.expected:
            return [f"Expected status {self.expected}, got {response.status}"]
        return []


@dataclass(frozen=True)
class ResponseHeader:
    header: str
    expected: str | None = None
    state_key: str | None = None
    required: bool = True
    should_match: bool = True

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        value = response.headers.get(self.header)
        if value is None:
            return [f"'{self.header}' header is not present"] if self.required else []
        expected, problem = _expected(state, self.state_key, self.expected)
        if problem:
            return [f"'{self.header}': {problem}"]
        if expected is None:
            return []
        if not self.should_match and not value and expected == "":
            return [f"'{self.header}' header should be a non-empty string"]
        matches = value.casefold() == expected.casefold()
        if self.should_match and not matches:
            return [f"'{self.header}' is '{value}', expected '{expected}'"]
        if not self.should_match and matches:
            return [f"'{self.header}' should not be '{expected}'"]
        return []


@dataclass(frozen=True)
class LockMismatch:
    """409 and, when a lock is expected, ``X-WOPI-Lock`` equal to it."""

    expected_lock: str

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        errors = ResponseCode(409).check(response, state, load)
        errors += ResponseHeader(
            "X-WOPI-Lock", self.expected_lock, required=bool(self.expected_lock)
        ).check(response, state, load)
        return errors


@dataclass(frozen=True)
class AnyOf:
    """``<Or>``: passes when one alternative passes."""

    alternatives: tuple[Check, ...]

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        collected: list[str] = []
        for alternative in self.alternatives:
            errors = alternative.check(response, state, load)
            if not errors:
                return []
            collected += errors
        return ["None of the alternatives passed: " + "; ".join(collected)]


@dataclass(frozen=True)
class AllOf:
    checks: tuple[Check, ...]

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        return [e for c in self.checks for e in c.check(response, state, load)]


@dataclass(frozen=True)
class ContentLength:
    """Mandatory on every response: ``Content-Length``, when sent, matches the body."""

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        header = response.headers.get("Content-Length")
        if header is None or response.status == 0:
            return []
        if not header.strip().isdigit() or int(header) != len(response.body):
            return [f"Content-Length {header} does not match the body length {len(response.body)}"]
        return []


@dataclass(frozen=True)
class Transport:
    """Mandatory: a response was received at all."""

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        return [f"No response: {response.error}"] if response.status == 0 else []


@dataclass(frozen=True)
class ResponseContent:
    resource_id: str | None = None
    body: str | None = None

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        expected = self.body.encode() if self.body else load(self.resource_id or "")
        if response.body != expected:
            return [
                f"Response body does not match the expected content ({len(expected)} bytes "
                f"expected, {len(response.body)} received)"
            ]
        return []


@cache
def _schema(name: str) -> dict[str, Any]:
    data = resources.files(__package__).joinpath("data", f"{name}.json").read_bytes()
    return dict(json.loads(data.decode("utf-8-sig")))


SCHEMAS = ("CsppCheckFileInfoSchema", "CsppPlusCheckFileInfoSchema")


#: JSON-schema ``format`` is checked, as Microsoft's validator does (Newtonsoft's schema
#: validator rejects a ``LastModifiedTime`` of "yesterday" or a ``HostViewUrl`` of "not a uri").
#: jsonschema checks ``uri`` and ``date-time`` only with two of its format extras installed
#: (``rfc3986-validator``, ``rfc3339-validator``, both in pyproject); :func:`format_checker`
#: refuses to run without them rather than pass silently.
CHECKED_FORMATS = frozenset({"uri", "date-time"})


@cache
def format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.Draft4Validator.FORMAT_CHECKER
    missing = CHECKED_FORMATS - set(checker.checkers)
    if missing:
        raise RuntimeError(
            "jsonschema cannot check the formats "
            + ", ".join(sorted(missing))
            + ": install rfc3986-validator and rfc3339-validator"
        )
    return checker


@dataclass(frozen=True)
class JsonSchema:
    schema: str

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        if self.schema not in SCHEMAS:
            return [f"Unknown JSON schema '{self.schema}'"]
        try:
            document = response.json_object()
        except ValueError as exc:
            return [f"Response (status {response.status}) is not a JSON object ({exc})"]
        validator = jsonschema.Draft4Validator(
            _schema(self.schema), format_checker=format_checker()
        )
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        return [
            f"{self.schema}: {'/'.join(map(str, e.path)) or '(root)'}: {_schema_message(e)}"
            for e in errors[:10]
        ]


def _schema_message(error: Any) -> str:
    """The error's message; for a ``oneOf``/``anyOf`` of string forms, the ``format`` that
    was not met ("'yesterday' is not a 'date-time'") rather than "not valid under any"."""
    for sub in error.context or ():
        if sub.validator == "format":
            return str(sub.message)
    return str(error.message)


# --- JSON property checks -------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


@dataclass(frozen=True)
class JsonProperty:
    """One property check of ``<JsonResponseContentValidator>``."""

    kind: str
    name: str
    required: bool = False
    expected: str | None = None
    state_key: str | None = None
    ends_with: str | None = None
    ignore_case: bool = False
    should_match: bool = True
    contains: str | None = None
    must_include_token: bool = False

    def check_value(self, value: Any, state: State) -> list[str]:
        if self.kind not in _PROPERTY_KINDS:
            return [f"property check '{self.kind}' is not implemented by this runner"]
        if self.kind == "StringRegexProperty":
            return self._regex(value)
        if _empty(value):
            return ["required but missing or empty"] if self.required else []
        if self.kind == "AbsoluteUrlProperty":
            return self._url(value)
        if self.kind == "ArrayProperty":
            return self._array(value, state)
        expected_text, problem = _expected(state, self.state_key, self.expected)
        if problem:
            return [problem]
        errors: list[str] = []
        if expected_text is not None:
            errors = self._compare(value, expected_text)
        if self.kind == "StringProperty" and self.ends_with and not errors:
            text = value if isinstance(value, str) else str(value)
            suffix = self.ends_with
            if self.ignore_case:
                text, suffix = text.casefold(), suffix.casefold()
            if not text.endswith(suffix):
                errors.append(f"'{value}' does not end with '{self.ends_with}'")
        return errors

    def _compare(self, value: Any, expected_text: str) -> list[str]:
        if self.kind == "BooleanProperty":
            if not isinstance(value, bool):
                return [f"expected a JSON boolean, got {json.dumps(value)}"]
            expected: Any = expected_text.strip().lower() == "true"
            equal = value == expected
        elif self.kind in ("IntegerProperty", "LongProperty"):
            if isinstance(value, bool) or not isinstance(value, int):
                return [f"expected a JSON integer, got {json.dumps(value)}"]
            try:
                expected = int(expected_text)
            except ValueError:
                return [f"expected value '{expected_text}' is not an integer"]
            equal = value == expected
        else:
            if not isinstance(value, str):
                return [f"expected a JSON string, got {json.dumps(value)}"]
            expected = expected_text
            equal = (
                (value.casefold() == expected.casefold())
                if self.ignore_case
                else (value == expected)
            )
        if self.should_match and not equal:
            return [f"expected {json.dumps(expected)}, got {json.dumps(value)}"]
        if not self.should_match and equal:
            return [f"should not be {json.dumps(expected)}"]
        return []

    def _regex(self, value: Any) -> list[str]:
        if value is None:
            return ["required but missing"] if self.required else []
        if not isinstance(value, str):
            return [f"expected a JSON string, got {json.dumps(value)}"]
        matched = re.search(self.expected or "", value) is not None
        if self.should_match and not matched:
            return [f"'{value}' does not match /{self.expected}/"]
        if not self.should_match and matched:
            return [f"'{value}' matches /{self.expected}/ but should not"]
        return []

    def _url(self, value: Any) -> list[str]:
        if not isinstance(value, str):
            return [f"expected a URL string, got {json.dumps(value)}"]
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            return [f"'{value}' is not an absolute URL"]
        if self.must_include_token and not parse_qs(parts.query).get("access_token"):
            return [f"'{value}' has no access_token query parameter"]
        return []

    def _array(self, value: Any, state: State) -> list[str]:
        if not isinstance(value, list):
            return [f"expected a JSON array, got {json.dumps(value)}"]
        wanted, problem = _expected(state, self.state_key, self.contains)
        if problem:
            return [problem]
        if wanted is None:
            return []
        if not any(isinstance(v, str) and v.casefold() == wanted.casefold() for v in value):
            return [f"{json.dumps(value)} does not contain '{wanted}'"]
        return []


@dataclass(frozen=True)
class JsonContent:
    properties: tuple[JsonProperty, ...]

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        try:
            document = response.json_object()
        except ValueError as exc:
            return [f"Response (status {response.status}) is not a JSON object ({exc})"]
        errors: list[str] = []
        for prop in self.properties:
            for error in prop.check_value(select_token(document, prop.name), state):
                errors.append(f"{prop.name}: {error}")
        return errors


@dataclass(frozen=True)
class Unsupported:
    """A validator this runner does not implement; failing is the only honest answer."""

    name: str

    def check(self, response: Response, state: State, load: ResourceLoader) -> list[str]:
        return [f"validator '{self.name}' is not implemented by this runner"]


_PROPERTY_KINDS = {
    "BooleanProperty",
    "IntegerProperty",
    "LongProperty",
    "StringProperty",
    "StringRegexProperty",
    "AbsoluteUrlProperty",
    "ArrayProperty",
}


def parse_property(element: ET.Element) -> JsonProperty:
    return JsonProperty(
        kind=element.tag,
        name=element.get("Name", ""),
        required=_bool_attr(element, "IsRequired", False),
        expected=element.get("ExpectedValue"),
        state_key=element.get("ExpectedStateKey"),
        ends_with=element.get("EndsWith"),
        ignore_case=_bool_attr(element, "IgnoreCase", False),
        should_match=_bool_attr(element, "ShouldMatch", True),
        contains=element.get("ContainsValue"),
        must_include_token=_bool_attr(element, "MustIncludeAccessToken", False),
    )


def parse_check(element: ET.Element) -> Check:
    tag = element.tag
    parsers: Mapping[str, Callable[[ET.Element], Check]] = {
        "ResponseCodeValidator": lambda e: ResponseCode(int(e.get("ExpectedCode", "200"))),
        "ResponseHeaderValidator": lambda e: ResponseHeader(
            header=e.get("Header", ""),
            expected=e.get("ExpectedValue"),
            state_key=e.get("ExpectedStateKey"),
            required=_bool_attr(e, "IsRequired", True),
            should_match=_bool_attr(e, "ShouldMatch", True),
        ),
        "LockMismatchValidator": lambda e: LockMismatch(e.get("ExpectedLock", "")),
        "Or": lambda e: AnyOf(tuple(parse_check(c) for c in e)),
        "And": lambda e: AllOf(tuple(parse_check(c) for c in e)),
        "JsonSchemaValidator": lambda e: JsonSchema(e.get("Schema", "")),
        "JsonResponseContentValidator": lambda e: JsonContent(tuple(parse_property(c) for c in e)),
        "ResponseContentValidator": lambda e: ResponseContent(
            resource_id=e.get("ExpectedResourceId") or e.get("ExpectedDocumentId"),
            body=e.get("ExpectedBodyContent"),
        ),
    }
    parser = parsers.get(tag)
    if parser is None:
        return Unsupported(tag)
    return parser(element)
