"""``unlearnbench per-example``: U-LiRA, relearning time, linear-probe recovery
and KLoM from a bank of shadow models (default: digits/mlp, random 10% and
class 0, seed 0, every method, S = 32 shadows)."""
from __future__ import annotations

import argparse
import sys
import time

from .options import add_grid_options, add_leaderboard_options

NAME = "per-example"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="per-example evidence from shadow models: U-LiRA, relearning time, "
                                         "linear-probe recovery, KLoM (default: digits/mlp, random 10%% and "
                                         "class 0, seed 0, every method, 32 shadows)")
    add_grid_options(p)
    p.add_argument("--shadows", type=int, default=32, metavar="S",
                   help="shadow models per forget set, an even number >= 8 (default 32)")
    p.add_argument("--probe-shadows", type=int, default=8, metavar="P",
                   help="shadows whose features are probed (default 8)")
    add_leaderboard_options(p)
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    return p


def run(args) -> int:
    from ..errors import UsageError
    from ..protocol.config import expand, grid_from_args
    from ..protocol.progress import Progress
    from ..protocol.runner import Harness
    from ..protocol.threads import set_threads
    from ..report.leaderboard import write_leaderboard
    from ..studies.forgetting_quality import with_ceiling
    from ..studies.per_example import PerExample, record_key

    if not args.config:   # this command's own defaults; a --config file sets its own
        for key, value in (("scenarios", "random,class"), ("ratios", "0.1"), ("classes", "0"), ("seeds", "0")):
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.shadows < 8 or args.shadows % 2:
        raise UsageError(f"--shadows {args.shadows}: accepted an even number >= 8")
    if args.probe_shadows < 1:
        raise UsageError(f"--probe-shadows {args.probe_shadows}: accepted an integer >= 1")
    grid = grid_from_args(args)
    grid.floor_retrains = 0
    for scenario in grid.scenarios:
        if scenario not in ("random", "class"):
            raise UsageError(f"per-example evidence: scenario {scenario!r}; accepted: random, class")
    if grid.methods is not None:
        grid.methods = with_ceiling(grid.methods)
        if "original" not in grid.methods:
            grid.methods = ["original"] + grid.methods
    specs = expand(grid)
    if args.dry_run:
        for s in specs:
            print(f"{record_key(s, args.shadows)}  {s.describe()}  S={args.shadows}")
        print(f"{len(specs)} runs over {args.shadows} shadows")
        return 0
    set_threads()
    progress = Progress(len(specs))
    harness = Harness.from_grid(grid, log=progress.log)
    runner = PerExample(harness, args.shadows, args.probe_shadows, log=progress.log)
    bad = 0
    for spec in specs:
        done = runner.store.is_done(record_key(spec, args.shadows))
        record = runner.run(spec)
        m = record["metrics"]
        status = "(done)" if done else record["status"]
        if record["status"] == "ok":
            status += f"  U-LiRA {m['ulira_acc']:.1f}% KLoM {m['klom']:.2f}"
        else:
            bad += 1
            progress.log(f"{spec.describe()}: {record['status']}: {record['message']}")
        progress.update(spec.describe(), status)
    print(f"{len(specs)} runs over S = {args.shadows} shadows; {harness.reference_trainings} shadow models trained; "
          f"{time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        csv_path, md_path = write_leaderboard(grid.out, args.leaderboard)
        print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    return 1 if bad else 0
