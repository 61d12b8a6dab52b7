"""Print a run: one line per test (with the failing request's errors), a summary per group,
and the closing ``N passed, N failed, N skipped`` line; or the same as JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, TextIO

from wopibridge.validator.runner import CaseResult, RunResult

_MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def case_lines(group: str, case: CaseResult) -> list[str]:
    lines = [f"{_MARK[case.status]}  {group} / {case.name}"]
    if case.status == "failed":
        lines.append(f"      {case.message}")
        failing = next((r for r in case.requests if r.errors and not r.cleanup), None)
        if failing is not None and failing.url:
            lines.append(f"      {failing.method} {failing.url} -> {failing.status}")
        lines.extend(f"      - {error}" for error in case.errors)
    return lines


def totals_line(result: RunResult) -> str:
    line = f"{result.count('passed')} passed, {result.count('failed')} failed"
    skipped = result.count("skipped")
    return f"{line}, {skipped} skipped" if skipped else line


def summary_lines(result: RunResult) -> list[str]:
    lines = ["", "Summary per group:"]
    width = max((len(g.name) for g in result.groups), default=0)
    for group in result.groups:
        text = (
            f"  {group.name.ljust(width)}  {group.count('passed')} passed, "
            f"{group.count('failed')} failed, {group.count('skipped')} skipped"
        )
        if group.skipped_reason:
            reason = group.skipped_reason
            text += f"  ({reason[:157] + '...' if len(reason) > 160 else reason})"
        lines.append(text)
    lines += ["", totals_line(result)]
    return lines


def write_text(result: RunResult, out: TextIO, *, cases_done: bool = False) -> None:
    """The human report; ``cases_done`` when the per-test lines were already streamed."""
    if not cases_done:
        for group in result.groups:
            for case in group.cases:
                out.write("\n".join(case_lines(group.name, case)) + "\n")
    out.write("\n".join(summary_lines(result)) + "\n")


def as_json(result: RunResult) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": g.name,
                "skipped_reason": g.skipped_reason or None,
                "passed": g.count("passed"),
                "failed": g.count("failed"),
                "skipped": g.count("skipped"),
                "tests": [asdict(c) for c in g.cases],
            }
            for g in result.groups
        ],
        "passed": result.count("passed"),
        "failed": result.count("failed"),
        "skipped": result.count("skipped"),
        "summary": totals_line(result),
    }


def write_json(result: RunResult, out: TextIO) -> None:
    json.dump(as_json(result), out, indent=2)
    out.write("\n")
