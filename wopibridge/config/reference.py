"""The configuration reference (``docs/configuration.md``), generated from :data:`SCHEMA`.

The table between the two markers of that file is this module's output, so the keys, their
variables, defaults and meanings are written once, in the schema. ``python -m
wopibridge.config.reference docs/configuration.md`` rewrites the table in place; the tests
fail when the file and the schema differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wopibridge.config.loading import ENV_PREFIX
from wopibridge.config.schema import SCHEMA, Key

BEGIN = "<!-- generated from wopibridge/config/schema.py: python -m wopibridge.config.reference -->"
END = "<!-- end of the generated table -->"


def shown_default(key: Key) -> str:
    """The default as the reference shows it: ``—`` for none, TOML spelling otherwise."""
    if key.shown:
        return key.shown
    value = key.default
    if value == "":
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def table() -> str:
    """The Markdown table of every key, in the schema's order."""
    lines = [
        "| Key | Environment variable | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            variable = f"{ENV_PREFIX}{section}_{name}".upper()
            doc = key.doc.replace("|", "\\|")
            lines.append(f"| `{section}.{name}` | `{variable}` | {shown_default(key)} | {doc} |")
    return "\n".join(lines) + "\n"


def with_table(document: str) -> str:
    """``document`` with the text between the markers replaced by :func:`table`."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the document has no {BEGIN!r} ... {END!r} markers")
    return f"{head}{BEGIN}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m wopibridge.config.reference docs/configuration.md")
        return 2
    path = Path(args[0])
    path.write_text(with_table(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
