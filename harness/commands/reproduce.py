"""``unlearnbench reproduce``: rerun a grid into a scratch folder and compare
every table cell with the committed records (harness/report/reproduce.py)."""
from __future__ import annotations

import argparse

from .options import add_executor_options, add_grid_options

NAME = "reproduce"
DEFAULT_OUT = "results-reproduce"     # git-ignored


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="rerun a grid (default: the default benchmark) into a scratch folder and "
                                         "compare every table cell with the committed records")
    add_grid_options(p)
    p.add_argument("--against", default="results", metavar="DIR",
                   help="the results folder to compare with (default: results, the committed records)")
    add_executor_options(p, default="local")
    p.set_defaults(no_leaderboard=False, leaderboard=None, dry_run=False)
    return p


def run(args) -> int:
    import sys
    from pathlib import Path

    from ..errors import UsageError
    from ..protocol.config import expand, grid_from_args
    from ..protocol.records import RecordStore
    from ..report import reproduce as R
    from ..report.leaderboard import load_summary
    from . import run as run_command

    if args.executor != "local":
        raise UsageError(f"--executor {args.executor!r}: reproduce runs here; accepted: local "
                         "(a Slurm sweep's folder can be compared with `reproduce --out DIR` once it is done)")
    args.out = args.out or DEFAULT_OUT
    against = Path(args.against)
    if Path(args.out).resolve() == against.resolve():
        raise UsageError(f"--out {args.out!r} is the folder to compare with (--against); accepted: another folder")
    if not (against / "runs").is_dir():
        raise UsageError(f"--against {args.against!r} holds no run records; accepted: a results folder")
    args.leaderboard = str(Path(args.out) / "leaderboard.md")
    status = run_command.run(args)
    keys = {s.key for s in expand(grid_from_args(args))}
    rerun_records = [r for r in RecordStore(Path(args.out)).all() if r["key"] in keys]
    committed_records = [r for r in RecordStore(against).all() if r["key"] in keys]
    _, rerun = load_summary(args.out)
    _, committed = load_summary(against)
    verdicts = R.compare(committed, rerun)
    for v in verdicts:
        print(v.line())
        for method, mean, ci, new in v.outside:
            print(f"  outside: {method}: committed {mean:.2f} ± {ci:.2f}, now {new:.2f}")
    same, total = R.identical_share(committed_records, rerun_records)
    line, agree = R.verdict(verdicts)
    print(f"{line}; {same}/{total} runs bit-identical to the committed records; "
          f"{R.environment_note(committed_records, rerun_records)}")
    if not verdicts:
        print(f"nothing to compare: {against} has none of these tables", file=sys.stderr)
        return 1
    return status or (0 if agree else 1)
