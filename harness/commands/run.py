"""``unlearnbench run``: run a grid in this process and update the leaderboard."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .options import add_executor_options, add_grid_options, add_leaderboard_options

NAME = "run"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="run a benchmark grid (default: the default benchmark) and update the "
                                         "leaderboard")
    add_grid_options(p)
    add_leaderboard_options(p)
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    add_executor_options(p, default="local")
    return p


def run(args) -> int:
    from ..protocol.config import expand, grid_from_args
    from . import sweep

    if args.executor == "slurm":
        return sweep.run(args)
    sweep.slurm_options(args)   # checked here too: --cpus-per-task sets the threads of a local run
    grid = grid_from_args(args)
    specs = expand(grid)
    if args.dry_run:
        for s in specs:
            print(f"{s.key}  {s.describe()}")
        print(f"{len(specs)} runs")
        return 0
    from ..protocol.progress import Progress  # the rest only when something may run: a dry run stays quick
    from ..protocol.records import RecordStore
    from ..protocol.runner import DONE_BEFORE, Harness, remove_leftovers, run_pending
    from ..protocol.threads import set_threads

    set_threads(args.cpus_per_task)
    progress = Progress(len(specs))
    store = RecordStore(grid.out)
    done = {s.key for s in specs if store.is_done(s.key)}
    # Loading data and models only when something is left to run keeps a finished grid's rerun cheap.
    harness = None
    if len(done) < len(specs):
        harness = Harness.from_grid(grid, log=progress.log, method_progress=progress.step)
    else:    # (what a run killed after its last record left is cleared all the same)
        remove_leftovers(grid.out, grid.cache_dir)

    def report(spec, status, message):
        if status == DONE_BEFORE:
            progress.update(spec.describe(), "(done)")
            return
        if status != "ok":
            progress.log(f"{spec.describe()}: {status}: {message}")
        progress.update(spec.describe(), status)

    counts = run_pending(harness, specs, store, begin=lambda spec: progress.begin(spec.describe()), report=report)
    skipped = counts.pop(DONE_BEFORE, 0)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing new"
    print(f"{len(specs)} runs: {summary}, {skipped} already done; "
          f"{harness.reference_trainings if harness else 0} reference models trained; "
          f"{time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        from ..report.leaderboard import default_leaderboard_path
        from ..report.publish import publish

        md = Path(args.leaderboard) if args.leaderboard else default_leaderboard_path(Path(grid.out))
        if counts or not md.exists() or not (Path(grid.out) / "summary.csv").exists():
            publish(grid.out, args.leaderboard)
        else:   # every record was there already: so are the tables drawn from them
            print(f"nothing new: {md} left as it is (`unlearnbench leaderboard` redraws it)", file=sys.stderr)
    return 1 if counts.get("failed") or counts.get("diverged") else 0
