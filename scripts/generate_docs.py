"""Rewrite the generated parts of the docs from the code that owns them.

    python scripts/generate_docs.py          # rewrite docs/metrics.md's metric table
    python scripts/generate_docs.py --check  # exit 1 if it differs (what tests/test_docs.py checks)

The metric table comes from harness/metrics/definitions.py (``docs_table``), between the
markers BEGIN and END below; everything else in the file is hand-written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unlearnbench.harness.metrics.definitions import docs_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
BEGIN = "<!-- BEGIN metric table: generated from harness/metrics/definitions.py by scripts/generate_docs.py -->"
END = "<!-- END metric table -->"


def render(text: str) -> str:
    """``text`` with the block between the markers replaced by the generated table."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC}: the markers {BEGIN!r} and {END!r} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{docs_table()}{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"{DOC} is out of date: run python scripts/generate_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        tmp = DOC.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
