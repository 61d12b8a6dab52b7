"""``wopibridge validate``: run the WOPI validator test plan against a host.

Exit status: 0 when tests ran and none failed, 1 when one failed, 2 when nothing could be
tested (a malformed WOPISRC, a host that cannot be reached or refuses the token, filters that
match nothing, or a run in which every test was skipped): a gate must never pass on nothing.

``--serve-discovery HOST:PORT`` serves the runner's discovery document until stopped, so the
host can load the runner's proof keys *before* the file is opened with ``appname=wopitest``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from wopibridge.validator import report
from wopibridge.validator.plan import load_plan
from wopibridge.validator.runner import Runner, Target, select
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
    parser.add_argument("wopisrc", metavar="WOPISRC", nargs="?", help="the file's WOPISrc URL")
    parser.add_argument("--token", help="an access token for WOPISRC (required to run tests)")
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
        "--serve-discovery",
        metavar="HOST:PORT",
        help="only serve the runner's discovery document (with --keys) until stopped, so a "
        "host can open files for the runner before and between runs",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each response"
    )
    return parser


def _address(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _wopisrc_problem(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"WOPISRC must be an http:// or https:// URL, not {url!r}"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"WOPISRC has an invalid port: {url!r}"
    if "/files/" not in parts.path:  # WOPI's /wopi*/files/<id>
        return f"WOPISRC must be a file's URL (.../wopi/files/<id>), not {url!r}"
    return ""


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
    if args.serve_discovery:
        return _serve_discovery_only(args)
    if not args.wopisrc or not args.token:
        print(
            "validate: give WOPISRC and --token (or --list, or --serve-discovery)", file=sys.stderr
        )
        return 2
    problem = _wopisrc_problem(args.wopisrc)
    if problem:
        print(f"validate: {problem}", file=sys.stderr)
        return 2
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
            address = _address(args.discovery)
            if address is None:
                print("validate: --discovery must be HOST:PORT", file=sys.stderr)
                return 2
            url = await stack.enter_async_context(serve_discovery(target.keys, *address))
            if not args.json:
                print(f"Serving the runner's discovery at {url}\n")
        session = await stack.enter_async_context(
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        )
        runner = Runner(plan, target, session)
        if not select(plan, args.group, args.test):
            print("validate: no group or test matches the filters", file=sys.stderr)
            return 2
        problem = await runner.preflight()
        if problem:
            print(f"validate: nothing was tested: {problem}", file=sys.stderr)
            return 2

        def stream(group: str, case: Any) -> None:
            if not args.json:
                print("\n".join(report.case_lines(group, case)), flush=True)

        result = await runner.run(args.group, args.test, on_case=stream)
    if args.json:
        report.write_json(result, sys.stdout)
    else:
        report.write_text(result, sys.stdout, cases_done=True)
    if result.count("failed"):
        return 1
    if not result.count("passed"):
        reason = next((g.skipped_reason for g in result.groups if g.skipped_reason), "")
        print(f"validate: nothing was tested: every test was skipped ({reason})", file=sys.stderr)
        return 2
    return 0


def _serve_discovery_only(args: argparse.Namespace) -> int:
    address = _address(args.serve_discovery)
    if address is None:
        print("validate: --serve-discovery must be HOST:PORT", file=sys.stderr)
        return 2
    if args.no_proof:
        print("validate: --serve-discovery publishes proof keys (drop --no-proof)", file=sys.stderr)
        return 2
    if not args.keys:
        print(
            "validate: --serve-discovery needs --keys FILE (the runs must sign with the same keys)",
            file=sys.stderr,
        )
        return 2
    try:
        keys = RunnerKeys.load_or_create(args.keys)
    except (OSError, ValueError) as exc:
        print(f"validate: cannot load the proof keys: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve_until_stopped(keys, *address))
    except OSError as exc:
        print(
            f"validate: cannot serve the discovery on {args.serve_discovery}: {exc}",
            file=sys.stderr,
        )
        return 2
    return 0


async def _serve_until_stopped(keys: RunnerKeys, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_discovery(keys, host, port) as url:
        print(f"Serving the runner's discovery at {url} until stopped", flush=True)
        await stop.wait()
