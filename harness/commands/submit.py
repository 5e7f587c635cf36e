"""``unlearnbench submit``: run a new method under the standard protocol,
validate and rank it (harness/community.py, docs/adding-a-method.md)."""
from __future__ import annotations

import argparse
import sys

from .options import add_location_options

NAME = "submit"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        NAME, help="run a new method under the standard protocol, validate and rank it (docs/adding-a-method.md)",
        description="Run a method that is not part of unlearnbench on a preset's grid (default: the default "
                    "benchmark), reusing cached reference models; refuse it (exit 2, no record) if it changes the "
                    "original in place, returns another architecture or non-finite weights, reaches for the test "
                    "data, fails or does not import; otherwise write its records, community/NAME/ and the "
                    "leaderboard, and print its rows and ranks beside the registered methods'.")
    p.add_argument("source", nargs="?", metavar="FILE.py[:NAME]", help="a Python file that registers the method")
    p.add_argument("--method", metavar="MODULE[:NAME] | NAME",
                   help="or an importable module (package.module:NAME) or an installed plugin's method name")
    p.add_argument("--preset", metavar="NAME", help="configs/NAME.toml or a TOML file (default: default)")
    p.add_argument("--method-arg", action="append", metavar="NAME.KEY=VALUE",
                   help="override one of the submitted method's hyperparameters (repeatable)")
    p.add_argument("--force", action="store_true", help="rerun the submission's runs even if they have records")
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate the leaderboard and figures")
    add_location_options(p)
    return p


def run(args) -> int:
    from ..community import comparison, load_submission, run_submission, unload_submission, write_community
    from ..protocol.progress import Progress
    from ..protocol.threads import set_threads
    from ..report.publish import publish

    submission = load_submission(args.source, args.method)
    set_threads()
    progress = Progress(0)
    try:
        result = run_submission(submission, args, progress)
    finally:
        unload_submission(submission)   # in-process callers (tests) must not keep a refused method registered
    out = result["grid"].out
    if not args.no_leaderboard:
        publish(out, None)
    text = comparison(out, submission.name, result["specs"])
    folder = write_community(submission, args, result, text)
    print(text)
    reused = f" ({result['reused']} reused from earlier records)" if result["reused"] else ""
    print(f"accepted: {len(result['specs'])} runs of {submission.name!r}{reused}; wrote {folder}", file=sys.stderr)
    for line in result["failed_baselines"]:
        print(f"  note: baseline {line}", file=sys.stderr)
    return 0
