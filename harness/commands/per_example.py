"""``unlearnbench per-example``: U-LiRA, relearning time, linear-probe recovery
and KLoM from a bank of shadow models (default: digits/mlp, random 10% and
class 0, seed 0, every method, S = 32 shadows)."""
from __future__ import annotations

import argparse
import sys
import time

from .. import defaults as D
from .options import add_executor_options, add_grid_options, add_leaderboard_options

NAME = "per-example"
SHADOWS_PER_TASK = 4


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="per-example evidence from shadow models: U-LiRA, relearning time, "
                                         "linear-probe recovery, KLoM (default: digits/mlp, random 10%% and "
                                         "class 0, seed 0, every method, 32 shadows)")
    add_grid_options(p)
    p.add_argument("--shadows", type=int, default=D.SHADOWS, metavar="S",
                   help=f"shadow models per forget set, an even number >= 8 (default {D.SHADOWS})")
    p.add_argument("--probe-shadows", type=int, default=D.PROBE_SHADOWS, metavar="P",
                   help=f"shadows whose features are probed (default {D.PROBE_SHADOWS})")
    add_executor_options(p, default="local", runs=False,
                         local=f"train the shadow bank in this process (slurm: {SHADOWS_PER_TASK} shadows per "
                               "array task; the measurements then run here)")
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
        print(f"{len(specs)} runs over {args.shadows} shadows"
              + (f"; {len(bank_tasks(args, grid, specs))} Slurm array tasks train the bank"
                 if args.executor == "slurm" else ""))
        return 0
    if args.executor == "slurm":
        train_bank_on_slurm(args, grid, specs)
    set_threads(args.cpus_per_task)     # float sums depend on the thread count: --cpus-per-task 1 matches the tasks
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


def bank_tasks(args, grid, specs) -> list:
    """The ShadowTasks of the grid: SHADOWS_PER_TASK shadows of one forget set each."""
    from ..cluster.slurm import Settings
    from ..protocol.spec import stable_hash
    from ..studies.per_example import ShadowTask

    settings = Settings.of(grid, threads=args.cpus_per_task)
    banks = {}
    for spec in specs:      # one bank per forget set, whatever the method
        banks.setdefault(stable_hash(spec.scenario_identity()), spec)
    return [ShadowTask(spec.to_config(), settings, args.shadows,
                       range(k, min(k + SHADOWS_PER_TASK, args.shadows)))
            for spec in banks.values() for k in range(0, args.shadows, SHADOWS_PER_TASK)]


def train_bank_on_slurm(args, grid, specs) -> None:
    """Train every shadow Original and Retrain as one Slurm job array (submitit) and wait for it;
    the measurements then load them from the shared cache."""
    import shutil
    from pathlib import Path

    from ..cluster import slurm as S
    from ..errors import UsageError

    options = S.SlurmOptions.from_args(args)
    if shutil.which("sbatch") is None:
        raise UsageError("sbatch not found: --executor slurm needs a Slurm cluster "
                         "(scripts/slurm_localhost.sh start makes one here); accepted here: --executor local")
    S.check_data(grid)
    tasks = bank_tasks(args, grid, specs)
    executor = S.slurm_executor(Path(grid.out) / "per_example" / "slurm" / "%j", options,
                                "unlearnbench-shadows")
    with executor.batch():
        jobs = [executor.submit(task) for task in tasks]
    print(f"submitted the shadow bank: job {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks); waiting",
          file=sys.stderr)
    failed = []
    for job in jobs:
        try:
            job.result()
        except Exception as e:      # the measurements below train what is missing, or record the failure
            failed.append(f"{job.job_id}: {type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}")
    print(f"shadow bank: {len(jobs) - len(failed)}/{len(jobs)} tasks ok" + "".join(f"\n  {f}" for f in failed),
          file=sys.stderr)
