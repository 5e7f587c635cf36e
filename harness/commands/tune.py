"""``unlearnbench tune``: the same hyperparameter budget for every method, on a
validation protocol; writes configs/tuned/ presets (harness/tuning/tune.py)."""
from __future__ import annotations

import argparse

from .. import defaults as D
from .options import add_executor_options

NAME = "tune"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="tune methods' hyperparameters with the same budget on a validation "
                                         "protocol (Optuna TPE); writes configs/tuned/ presets")
    p.add_argument("tune_methods", metavar="METHOD", help="method name(s), comma-separated, or 'all' "
                                                          "(every method but the reference rows)")
    p.add_argument("--trials", type=int, default=D.TUNE_TRIALS,
                   help="budget: complete trials per method and table, trial 0 = the registered defaults "
                        f"(default {D.TUNE_TRIALS})")
    p.add_argument("--max-trials", type=int, dest="max_trials", metavar="N",
                   help="a study whose best at the full budget beats its best at half the budget by more than the "
                        "validation noise is extended by half the budget at a time, up to N trials "
                        "(default 2 x --trials)")
    _seeds = ",".join(map(str, D.TUNE_SEEDS))
    p.add_argument("--tune-seeds", default=_seeds, dest="tune_seeds",
                   help=f"seeds of the validation protocol, disjoint from the benchmark's (default {_seeds})")
    p.add_argument("--sampler-seed", type=int, default=D.TUNE_SAMPLER_SEED, dest="sampler_seed",
                   help=f"seed of the TPE sampler (default {D.TUNE_SAMPLER_SEED})")
    p.add_argument("--storage", metavar="URL", help="Optuna RDB storage of the studies, an SQLAlchemy URL "
                                                    "(default: sqlite:///OUT/tuning/studies.db)")
    p.add_argument("--jobs", type=int, default=D.TUNE_JOBS, metavar="N",
                   help="workers optimizing the studies together: local processes or Slurm array tasks "
                        f"(default {D.TUNE_JOBS})")
    p.add_argument("--presets", metavar="DIR", help="presets folder to write (default: the shipped configs/tuned/)")
    p.add_argument("--dry-run", action="store_true", help="list the studies and their complete trials, and exit")
    add_executor_options(p, default="local", runs=False, local="--jobs worker processes on this machine")
    g = p.add_argument_group("tables (default: those of the default benchmark)")
    for option in ("--config", "--datasets", "--models", "--scenarios", "--ratios", "--classes"):
        g.add_argument(option)
    g.add_argument("--train-arg", action="append", metavar="KEY=VALUE", help="override the reference training")
    g.add_argument("--val-frac", type=float, dest="val_frac", help="validation share carved from train (default 0.1)")
    for option, dest in (("--out", "out"), ("--cache-dir", "cache_dir"), ("--data-root", "data_root"),
                         ("--device", "device")):
        g.add_argument(option, dest=dest)
    return p


def run(args) -> int:
    from ..tuning.tune import command

    return command(args)
