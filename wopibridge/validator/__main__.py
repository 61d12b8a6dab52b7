"""``python -m wopibridge.validator WOPISRC --token TOKEN``: the runner without the main CLI."""

from __future__ import annotations

import argparse
import sys

from wopibridge.validator import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wopibridge.validator")
    subparsers = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(subparsers)
    args = parser.parse_args(["validate", *(sys.argv[1:] if argv is None else argv)])
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
