"""``unlearnbench sweep``: a grid as Slurm job arrays (references, then runs)."""
from __future__ import annotations

import argparse
import sys
import time

from .options import add_executor_options, add_grid_options, add_leaderboard_options

NAME = "sweep"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="run a grid as Slurm job arrays (references, then runs); skips finished "
                                         "runs")
    add_grid_options(p)
    add_executor_options(p, default="slurm")
    p.add_argument("--dry-run", action="store_true",
                   help="print the number of jobs and their sbatch parameters; submit nothing")
    add_leaderboard_options(p)
    return p


def slurm_options(args):
    """The executor options, checked (``run`` checks them too: a bad value is bad input wherever it is given)."""
    from ..cluster import slurm as S
    from ..errors import UsageError

    options = S.SlurmOptions.from_args(args)
    if args.runs_per_task < 0:
        raise UsageError(f"--runs-per-task {args.runs_per_task}: accepted: 0 (one task per reference group) or more")
    return options


def run(args) -> int:
    from ..cluster import slurm as S
    from ..cluster.plan import make_plan
    from ..cluster.status import collect
    from ..protocol.config import expand, grid_from_args
    from ..report.publish import publish

    options = slurm_options(args)
    grid = grid_from_args(args)
    specs = expand(grid)
    active = set()
    if args.executor == "slurm":
        active = collect(grid.out).keys("running")   # a rerun does not resubmit what is still queued
    plan = make_plan(grid, specs, args.runs_per_task, active)
    print(S.describe_plan(plan, args.executor, options))
    if args.dry_run:
        print("nothing submitted (--dry-run)")
        return 0
    if not plan.run_tasks:
        print("nothing to do")
        return 0
    S.check_data(grid)
    settings = S.Settings.of(grid, threads=args.cpus_per_task)
    sweep_dir = S.new_sweep_dir(grid.out)
    start = time.perf_counter()
    if args.executor == "local":
        S.run_local(plan, settings, sweep_dir, S.argv_of(), log=lambda m: print(f"  {m}", file=sys.stderr))
    else:
        manifest = S.submit(plan, settings, options, sweep_dir, S.argv_of())
        for stage, info in manifest["stages"].items():
            print(f"submitted {stage}: job {info['job_id']} ({len(info['tasks'])} tasks)")
        print(f"manifest: {sweep_dir / 'manifest.json'}; `unlearnbench status --out {grid.out}` shows progress")
        if not args.wait:
            return 0
        S.wait(grid.out, sweep_dir, log=lambda m: print(f"  {m}", file=sys.stderr))
    report = collect(grid.out, only=[sweep_dir / "manifest.json"])
    print(report.format())
    print(f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        publish(grid.out, args.leaderboard)
    counts = report.counts()
    return 1 if counts.get("failed") or counts.get("missing") or report.diverged else 0
