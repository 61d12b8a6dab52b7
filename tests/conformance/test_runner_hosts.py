"""The runner against small hosts: a correct one passes, each broken one fails where it should.

Each broken host differs from the correct one in one behaviour; the test names the exact
tests that must fail for it and checks that all the others still pass, so the runner is
shown to be neither lenient nor failing at random.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from wopibridge.security.proof.signature import ProofKeys
from wopibridge.validator.plan import load_plan
from wopibridge.validator.runner import Runner, RunResult, Target
from wopibridge.validator.signing import RunnerKeys

from .hosts import TOKEN, Faults, small_host

GROUPS = [
    "CheckFileInfoSchema",
    "BaseWopiViewing",
    "Locks",
    "GetLock",
    "ExtendedLockLength",
    "EditFlows",
    "FileVersion",
    "PutUserInfo",
    "ProofKeys",
]
PLAN = load_plan()
EXPECTED_TOTAL = sum(len(g.cases) for g in PLAN.groups if g.name in GROUPS)


async def run_against(
    aiohttp_server: Any,
    faults: Faults | None = None,
    *,
    trusted: bool = True,
    sign: bool = True,
    groups: Sequence[str] = GROUPS,
) -> RunResult:
    keys = RunnerKeys.generate()
    host_keys = keys if trusted else RunnerKeys.generate()
    proof_keys = ProofKeys(host_keys.current.public_key(), host_keys.old.public_key())
    server = await aiohttp_server(small_host(faults, proof_keys))
    target = Target(str(server.make_url("/wopi/files/f1")), TOKEN, 0, keys if sign else None)
    async with aiohttp.ClientSession() as session:
        return await Runner(PLAN, target, session).run(groups)


def by_status(result: RunResult, status: str) -> set[str]:
    return {c.name for g in result.groups for c in g.cases if c.status == status}


async def test_correct_host_passes_every_group(aiohttp_server: Any) -> None:
    result = await run_against(aiohttp_server)
    assert [g.name for g in result.groups] == GROUPS
    assert by_status(result, "failed") == set()
    assert by_status(result, "skipped") == set()
    assert result.count("passed") == EXPECTED_TOTAL == 41


LOCK_MISMATCH_TESTS = {
    "LockMismatchAfterUnlockAndRelockRequest",
    "UnlockUnlockedFile",
    "LockMismatchOnLockRequest",
    "LockMismatchOnUnlockRequest",
    "LockMismatchOnRefreshLockRequest",
    "LockMismatchOnUnlockAndRelockRequest",
    "LockMismatchOnPutFileRequest",
    "PutUnlockedFileNotZeroBytes",
}

BROKEN = {
    "ignores-lock-mismatch": (Faults(ignore_lock_mismatch=True), LOCK_MISMATCH_TESTS),
    "stale-version": (Faults(stale_version=True), {"files.PutFileReturnsDifferentVersion"}),
    "no-proof-check": (
        Faults(skip_proof_check=True),
        {
            "ProofKeys.CurrentInvalid.OldValidSignedWithOldKey",
            "ProofKeys.CurrentInvalid.OldInvalid",
            "ProofKeys.TimestampOlderThan20Min",
        },
    ),
    "wrong-lock-in-conflict": (
        Faults(wrong_lock_on_conflict=True),
        (LOCK_MISMATCH_TESTS - {"PutUnlockedFileNotZeroBytes"})
        | {
            "DoubleLockSequence",
            "UnlockFileWithInvalidAccessToken",
            "files.GetLock",
            "files.GetLockAfterChange",
        },
    ),
}


@pytest.mark.parametrize("fault", list(BROKEN), ids=list(BROKEN))
async def test_broken_host_fails_the_matching_tests(aiohttp_server: Any, fault: str) -> None:
    faults, must_fail = BROKEN[fault]
    result = await run_against(aiohttp_server, faults)
    assert by_status(result, "failed") == must_fail
    assert len(by_status(result, "passed")) == EXPECTED_TOTAL - len(must_fail)


async def test_schema_violation_skips_everything_with_the_reason(aiohttp_server: Any) -> None:
    """Version as a JSON number breaks the CheckFileInfo schema: the base prerequisite fails."""
    result = await run_against(aiohttp_server, Faults(version_as_number=True))
    assert result.count("passed") == 0
    assert result.count("skipped") == EXPECTED_TOTAL
    reason = result.groups[0].skipped_reason
    assert "WopiValidatorPrereq" in reason
    assert "Version: 1 is not of type 'string'" in reason


async def test_host_that_does_not_trust_the_runner_keys(aiohttp_server: Any) -> None:
    result = await run_against(aiohttp_server, trusted=False)
    assert result.count("passed") == 0
    assert "Response (status 500) is not a JSON object" in result.groups[0].skipped_reason


async def test_without_signing_the_proof_group_is_skipped(aiohttp_server: Any) -> None:
    result = await run_against(aiohttp_server, Faults(skip_proof_check=True), sign=False)
    proof_group = next(g for g in result.groups if g.name == "ProofKeys")
    assert proof_group.count("skipped") == 7
    assert "--no-proof" in proof_group.skipped_reason
    assert by_status(result, "failed") == set()


async def test_groups_whose_prerequisites_fail_are_skipped(aiohttp_server: Any) -> None:
    result = await run_against(
        aiohttp_server, groups=["PutRelativeFile", "RenameFileIfCreateChildFileIsNotSupported"]
    )
    for group in result.groups:
        assert group.count("skipped") == len(group.cases) > 0
    reasons = [g.skipped_reason for g in result.groups]
    assert "prerequisite UserCanWriteRelativePrereq failed" in reasons[0]
    assert "prerequisite DeleteFilePrereq failed" in reasons[1]
