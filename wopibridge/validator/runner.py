"""Run test groups against a WOPI host: prerequisites, requests, checks, state, cleanup.

Per group, the prerequisite cases run first (each once per run; they only read
CheckFileInfo); when one fails, every test of the group is reported as skipped with that
prerequisite's name and errors. A test case runs its requests in order, stops at the first
request whose checks fail, and always runs its cleanup requests, whose outcome is ignored.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from wopibridge.validator.checks import Check, ContentLength, ResourceLoader, Transport
from wopibridge.validator.documents import document
from wopibridge.validator.plan import Group, Plan, RequestSpec, TestCase
from wopibridge.validator.requests import Built, RequestError, build
from wopibridge.validator.response import (
    ORIGINAL_ACCESS_TOKEN,
    ORIGINAL_WOPI_ENDPOINT,
    ORIGINAL_WOPISRC,
    Response,
    State,
    select_token,
)
from wopibridge.validator.signing import RunnerKeys

Status = Literal["passed", "failed", "skipped"]
USER_AGENT = "wopibridge-validate/1"
_MANDATORY: tuple[Check, ...] = (Transport(), ContentLength())


#: How often, and how far apart, the preflight CheckFileInfo is tried while answered 503.
PREFLIGHT_TRIES = 10
PREFLIGHT_PAUSE = 0.5


@dataclass
class RequestResult:
    name: str
    method: str
    url: str
    status: int
    errors: list[str]
    cleanup: bool = False
    elapsed_ms: float = 0.0


@dataclass
class CaseResult:
    name: str
    status: Status
    message: str = ""
    errors: list[str] = field(default_factory=list)
    requests: list[RequestResult] = field(default_factory=list)


@dataclass
class GroupResult:
    name: str
    cases: list[CaseResult]
    skipped_reason: str = ""

    def count(self, status: Status) -> int:
        return sum(1 for c in self.cases if c.status == status)


@dataclass
class RunResult:
    groups: list[GroupResult]

    def count(self, status: Status) -> int:
        return sum(g.count(status) for g in self.groups)


@dataclass
class Target:
    """The host under test: its WOPISrc, a valid token for it, and how to sign."""

    wopisrc: str
    token: str
    token_ttl: int = 0
    keys: RunnerKeys | None = None
    load: ResourceLoader = document
    timeout: float = 60.0


def redact(url: str) -> str:
    """A URL fit for output: the access token replaced by a placeholder."""
    parsed = URL(url, encoded=True)
    if "access_token" not in parsed.query:
        return url
    return str(parsed.update_query(access_token="REDACTED"))


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)


def select(plan: Plan, groups: Sequence[str] = (), tests: Sequence[str] = ()) -> list[Group]:
    """The groups (and within them the tests) the filters ask for, in plan order."""
    chosen = []
    for group in plan.groups:
        if not _matches(group.name, groups):
            continue
        cases = tuple(c for c in group.cases if _matches(c.name, tests))
        if cases:
            chosen.append(Group(group.name, group.prereqs, cases))
    return chosen


class Runner:
    def __init__(self, plan: Plan, target: Target, session: aiohttp.ClientSession) -> None:
        self._plan = plan
        self._target = target
        self._session = session
        self._prereq_results: dict[str, CaseResult] = {}

    async def run(
        self,
        groups: Sequence[str] = (),
        tests: Sequence[str] = (),
        on_case: Callable[[str, CaseResult], None] | None = None,
    ) -> RunResult:
        results = []
        for group in select(self._plan, groups, tests):
            result = await self.run_group(group, on_case)
            results.append(result)
        return RunResult(results)

    async def run_group(
        self, group: Group, on_case: Callable[[str, CaseResult], None] | None = None
    ) -> GroupResult:
        reason = await self._prerequisites(group)
        cases = []
        for case in group.cases:
            if reason:
                result = CaseResult(case.name, "skipped", reason)
            else:
                result = await self.run_case(case)
            cases.append(result)
            if on_case is not None:
                on_case(group.name, result)
        return GroupResult(group.name, cases, reason)

    async def _prerequisites(self, group: Group) -> str:
        for name in group.prereqs:
            result = self._prereq_results.get(name)
            if result is None:
                result = await self.run_case(self._plan.prereqs[name])
                self._prereq_results[name] = result
            if result.status != "passed":
                detail = "; ".join(result.errors) or result.message
                return f"prerequisite {name} failed: {detail}"
        if self._target.keys is None and group.name == "ProofKeys":
            return "proof-key signing is disabled (--no-proof)"
        return ""

    async def preflight(self) -> str:
        """Why no test could run against the target (``""`` when CheckFileInfo answers 200).

        A host that cannot be reached, or refuses the token, would otherwise fail every
        prerequisite and leave a run of skipped tests that looks like success.
        """
        target = self._target
        spec = RequestSpec("CheckFileInfo", {}, ())
        # A 503 is "try again later": a host that could not load the discovery this command
        # serves (``--discovery``) refuses signed requests until it loads it again, within
        # seconds. Each try is built anew, so its proof carries a fresh timestamp.
        for _ in range(PREFLIGHT_TRIES):
            built = build(
                spec,
                wopisrc=target.wopisrc,
                token=target.token,
                ttl=target.token_ttl,
                state=self._initial_state(),
                keys=target.keys,
                load=target.load,
                user_agent=USER_AGENT,
            )
            response = await self._send(built)
            if response.status != 503:
                break
            await asyncio.sleep(PREFLIGHT_PAUSE)
        where = redact(target.wopisrc)
        if response.status == 0:
            return f"cannot reach {where}: {response.error}"
        if response.status in (401, 403):
            return f"the host refused the access token (CheckFileInfo answered {response.status})"
        if response.status == 404:
            return f"the host does not know this file (CheckFileInfo of {where} answered 404)"
        if response.status != 200:
            text = response.body[:200].decode("utf-8", "replace").strip()
            return f"CheckFileInfo of {where} answered {response.status}" + (
                f": {text}" if text else ""
            )
        return ""

    def _initial_state(self) -> State:
        return {
            ORIGINAL_ACCESS_TOKEN: self._target.token,
            ORIGINAL_WOPISRC: self._target.wopisrc,
            ORIGINAL_WOPI_ENDPOINT: self._target.wopisrc,
        }

    async def run_case(self, case: TestCase) -> CaseResult:
        state = self._initial_state()
        result = CaseResult(case.name, "passed")
        try:
            for spec in case.requests:
                outcome = await self._execute(spec, state)
                result.requests.append(outcome)
                if outcome.errors:
                    result.status = "failed"
                    result.message = f"{spec.kind} request failed"
                    result.errors = list(outcome.errors)
                    break
        finally:
            for spec in case.cleanup:
                try:
                    outcome = await self._execute(spec, state, cleanup=True)
                except Exception as exc:  # cleanup must never hide the test's outcome
                    outcome = RequestResult(spec.kind, "", "", 0, [str(exc)], cleanup=True)
                result.requests.append(outcome)
        return result

    async def _execute(
        self, spec: RequestSpec, state: State, *, cleanup: bool = False
    ) -> RequestResult:
        target = self._target
        try:
            built = build(
                spec,
                wopisrc=target.wopisrc,
                token=target.token,
                ttl=target.token_ttl,
                state=state,
                keys=target.keys,
                load=target.load,
                user_agent=USER_AGENT,
            )
        except (RequestError, KeyError) as exc:
            message = f"cannot build the request: {exc}"
            return RequestResult(spec.kind, "", "", 0, [message], cleanup=cleanup)
        started = time.perf_counter()
        response = await self._send(built)
        elapsed = (time.perf_counter() - started) * 1000
        errors: list[str] = []
        if not cleanup:
            for check in (*_MANDATORY, *spec.checks):
                errors += check.check(response, state, target.load)
        for saver in spec.state:
            state[saver.name] = _state_value(response, saver.source, saver.from_header)
        return RequestResult(
            spec.kind, built.method, redact(built.url), response.status, errors, cleanup, elapsed
        )

    async def _send(self, built: Built) -> Response:
        try:
            async with self._session.request(
                built.method,
                URL(built.url, encoded=True),
                headers=built.headers,
                data=built.body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._target.timeout),
            ) as reply:
                body = await reply.read()
                return Response(reply.status, CIMultiDictProxy(reply.headers.copy()), body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Response(0, error=f"{type(exc).__name__}: {exc}")


def _state_value(response: Response, source: str, from_header: bool) -> str | None:
    if from_header:
        return response.headers.get(source) or None
    try:
        value = select_token(response.json_object(), source)
    except ValueError:
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
