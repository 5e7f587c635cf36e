"""``unlearnbench forgetting-quality``: the NeurIPS 2023 challenge's many-model
ε score (default: digits/mlp, random 10%, seed 0, every method, N = 32)."""
from __future__ import annotations

import argparse
import sys
import time

from .. import defaults as D
from .options import add_grid_options, add_leaderboard_options

NAME = "forgetting-quality"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="the NeurIPS 2023 challenge's many-model ε score (default: digits/mlp, "
                                         "random 10%%, seed 0, every method, N = 32)")
    add_grid_options(p)
    p.add_argument("--num-models", type=int, default=D.FORGETTING_QUALITY_MODELS, metavar="N",
                   help="models per bank: N retrained and N runs of each method "
                        f"(default {D.FORGETTING_QUALITY_MODELS})")
    add_leaderboard_options(p)
    p.add_argument("--dry-run", action="store_true", help="list the method banks and exit")
    return p


def run(args) -> int:
    from ..errors import UsageError
    from ..protocol.config import expand, grid_from_args
    from ..protocol.progress import Progress
    from ..protocol.runner import Harness
    from ..protocol.threads import set_threads
    from ..report.leaderboard import write_leaderboard
    from ..studies.forgetting_quality import ForgettingQuality, record_key, with_ceiling

    if not args.config:   # this command's own defaults; a --config file sets its own
        for key, value in (("scenarios", "random"), ("ratios", "0.1"), ("seeds", "0")):
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.num_models < 3:
        raise UsageError(f"--num-models {args.num_models} is too small; accepted: an integer >= 3")
    grid = grid_from_args(args)
    grid.floor_retrains = 0          # the retrained bank replaces the noise floor here
    if grid.methods is not None:
        grid.methods = with_ceiling(grid.methods)
    specs = expand(grid)
    if args.dry_run:
        for s in specs:
            print(f"{record_key(s, args.num_models)}  {s.describe()}  N={args.num_models}")
        print(f"{len(specs)} method banks of {args.num_models} models")
        return 0
    set_threads()
    progress = Progress(len(specs))
    harness = Harness.from_grid(grid, log=progress.log)
    runner = ForgettingQuality(harness, args.num_models, log=progress.log)
    bad = 0
    for spec in specs:
        done = runner.store.is_done(record_key(spec, args.num_models))
        record = runner.run(spec)
        m = record["metrics"]
        status = "(done)" if done else record["status"]
        if record["status"] == "ok":
            status += f"  F={m['forgetting_quality']:.3f} score={m['challenge_score']:.3f}"
        else:
            bad += 1
            progress.log(f"{spec.describe()}: {record['status']}: {record['message']}")
        progress.update(spec.describe(), status)
    print(f"{len(specs)} method banks of N = {args.num_models}; {harness.reference_trainings} models trained for "
          f"the retrained banks; {time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        csv_path, md_path = write_leaderboard(grid.out, args.leaderboard)
        print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    return 1 if bad else 0
