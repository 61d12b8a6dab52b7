"""``wopibridge validate``: run the WOPI validator test plan against a host.

Exit status: 0 when no test failed, 1 when one did, 2 when the run could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from wopibridge.validator import report
from wopibridge.validator.plan import load_plan
from wopibridge.validator.runner import Runner, Target
from wopibridge.validator.signing import RunnerKeys, serve_discovery


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``validate`` on the main parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="run Microsoft's WOPI validator test cases against a WOPI host",
        description=(
            "Run the WOPI validator test plan against WOPISRC (the file must be a "
            "'.wopitest' file the token may edit). Requests are signed with the runner's "
            "own proof keys; with --discovery the runner serves a discovery document "
            "publishing them, for the host's discovery_url."
        ),
    )
    parser.add_argument("wopisrc", metavar="WOPISRC", help="the file's WOPISrc URL")
    parser.add_argument("--token", required=True, help="an access token for WOPISRC")
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=0,
        help="access_token_ttl to send (ms since the epoch, 0 = unknown)",
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="G",
        help="run only this group (repeatable, glob patterns allowed)",
    )
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="T",
        help="run only this test case (repeatable, glob patterns allowed)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plan", type=Path, help="another test plan (TestCases.xml format)")
    parser.add_argument("--list", action="store_true", help="list the groups and tests only")
    parser.add_argument(
        "--no-proof",
        action="store_true",
        help="send no proof-key headers (the ProofKeys group is skipped)",
    )
    parser.add_argument(
        "--keys",
        type=Path,
        help="keep the runner's two proof keys in this PEM file "
        "(created on first use); default: new keys each run",
    )
    parser.add_argument(
        "--discovery",
        metavar="HOST:PORT",
        help="serve the runner's discovery document at "
        "http://HOST:PORT/hosting/discovery during the run",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each response"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        plan = load_plan(args.plan)
    except (OSError, ValueError) as exc:
        print(f"validate: cannot load the test plan: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for group in plan.groups:
            print(group.name)
            for case in group.cases:
                print(f"  {case.name}")
        return 0
    try:
        keys = (
            None
            if args.no_proof
            else (RunnerKeys.load_or_create(args.keys) if args.keys else RunnerKeys.generate())
        )
    except (OSError, ValueError) as exc:
        print(f"validate: cannot load the proof keys: {exc}", file=sys.stderr)
        return 2
    target = Target(args.wopisrc, args.token, args.token_ttl, keys, timeout=args.timeout)
    try:
        return asyncio.run(_run(plan, target, args))
    except OSError as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return 2


async def _run(plan: Any, target: Target, args: argparse.Namespace) -> int:
    async with AsyncExitStack() as stack:
        if args.discovery:
            if target.keys is None:
                print("validate: --discovery needs proof keys (drop --no-proof)", file=sys.stderr)
                return 2
            host, _, port = args.discovery.rpartition(":")
            if not host or not port.isdigit():
                print("validate: --discovery must be HOST:PORT", file=sys.stderr)
                return 2
            url = await stack.enter_async_context(serve_discovery(target.keys, host, int(port)))
            if not args.json:
                print(f"Serving the runner's discovery at {url}\n")
        session = await stack.enter_async_context(
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        )
        runner = Runner(plan, target, session)

        def stream(group: str, case: Any) -> None:
            if not args.json:
                print("\n".join(report.case_lines(group, case)), flush=True)

        result = await runner.run(args.group, args.test, on_case=stream)
    if not result.groups:
        print("validate: no group or test matches the filters", file=sys.stderr)
        return 2
    if args.json:
        report.write_json(result, sys.stdout)
    else:
        report.write_text(result, sys.stdout, cases_done=True)
    return 1 if result.count("failed") else 0
