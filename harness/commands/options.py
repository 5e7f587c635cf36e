"""Option groups several commands share, and the results-folder check.
argparse and pathlib only: the parser is built without importing torch."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import defaults as D
from ..errors import UsageError


def add_grid_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grid selection (comma-separated lists; default: the default benchmark)")
    g.add_argument("--config", metavar="FILE.toml", help="load a preset; options below override it")
    g.add_argument("--datasets", help="e.g. digits,fashion_mnist")
    g.add_argument("--models", help="e.g. mlp")
    g.add_argument("--scenarios", help="random, class and/or subclass")
    g.add_argument("--ratios", help="forget ratios in (0, 1) for the random scenario, e.g. 0.1,0.5")
    g.add_argument("--classes", help="classes to forget in the class scenario, by index or name, e.g. 0 or rocket")
    g.add_argument("--subclasses", help="fine classes to forget inside their superclass (subclass scenario, "
                                        "cifar20), by index or name, e.g. rocket,sea,cattle")
    g.add_argument("--methods", help="method names (default: every registered method)")
    g.add_argument("--seeds", help="e.g. 0,1,2")
    g.add_argument("--method-arg", action="append", metavar="METHOD.KEY=VALUE",
                   help="override a method hyperparameter (repeatable), e.g. finetune.lr=0.01")
    g.add_argument("--train-arg", action="append", metavar="KEY=VALUE",
                   help="override the reference training configuration (repeatable), e.g. epochs=10, "
                        "loss=squared, trainable=head")
    g.add_argument("--model-args", action="append", dest="model_args", metavar="[MODEL.]KEY=V1[,V2...]",
                   help="model arguments as grid axes (repeatable): each comma-separated value is one grid value "
                        "and part of the runs' identity; KEY applies to every model of the grid, MODEL.KEY to one. "
                        "E.g. hidden=128,512,2048 (an MLP with one hidden layer of each width; 128x128: two "
                        "layers), cnn.hidden=64,256 (the CNN's head width).  TOML: [model_grid.mlp] "
                        "hidden = [128, 512] (grid values); [model_args.mlp] hidden = [128, 128] (one fixed value)")
    g.add_argument("--val-frac", type=float, dest="val_frac", help="validation share carved from train (default 0.1)")
    g.add_argument("--train-subset", type=int, dest="train_subset", metavar="N",
                   help="use a fixed, class-balanced subset of N training images (default: all)")
    g.add_argument("--test-subset", type=int, dest="test_subset", metavar="N",
                   help="evaluate on a fixed, class-balanced subset of N test images (default: all)")
    g.add_argument("--floor-retrains", type=int, dest="floor_retrains", metavar="K",
                   help="extra retrains per forget set measuring the retrain noise floor (default 2; 0: none)")
    g.add_argument("--no-tuned", action="store_true", dest="no_tuned",
                   help="ignore the tuned presets in configs/tuned/ (use the methods' registered defaults)")
    add_location_options(p)


def add_location_options(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("where and how")
    o.add_argument("--out", help="results folder (default: results)")
    o.add_argument("--cache-dir", dest="cache_dir", help="reference-model cache (default: OUT/cache)")
    o.add_argument("--data-root", dest="data_root", help="folder holding the dataset files")
    o.add_argument("--download", action="store_true", help="allow downloading datasets that support it")
    o.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    o.add_argument("--precision",
                   help="auto (default: bf16, else fp16, autocast on CUDA; fp32 on CPU), fp32, bf16, fp16")
    o.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms only (reproducible on GPU, slower)")


def add_executor_options(p: argparse.ArgumentParser, default: str, runs: bool = True,
                         local: str = "in this process") -> None:
    e = p.add_argument_group("executor (Slurm job arrays through submitit; see docs/slurm.md)")
    e.add_argument("--executor", choices=("local", "slurm"), default=default,
                   help=f"local: {local}; slurm: submit job arrays (default: {default})")
    e.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    e.add_argument("--time", type=int, dest="time_min", default=D.SLURM_TIME_MIN, metavar="MINUTES",
                   help="time limit per array task; a task that hits it is requeued and resumes "
                        f"(default {D.SLURM_TIME_MIN})")
    e.add_argument("--cpus-per-task", type=int, dest="cpus_per_task", metavar="N",
                   help="CPUs per task, also the torch threads (local too; default: the cluster's default / all)")
    e.add_argument("--gpus-per-task", type=int, dest="gpus_per_task", default=D.SLURM_GPUS_PER_TASK, metavar="N",
                   help="GPUs per task")
    e.add_argument("--mem-gb", type=float, dest="mem_gb", metavar="GB", help="memory per task")
    e.add_argument("--array-parallelism", type=int, dest="array_parallelism", default=D.SLURM_ARRAY_PARALLELISM,
                   metavar="N", help=f"at most N tasks of an array run at once (default {D.SLURM_ARRAY_PARALLELISM})")
    if runs:
        e.add_argument("--runs-per-task", type=int, dest="runs_per_task", default=D.SLURM_RUNS_PER_TASK, metavar="N",
                       help="runs per task of the runs stage (default 0: all runs sharing one reference group)")
    e.add_argument("--signal-delay", type=int, dest="signal_delay_s", default=D.SLURM_SIGNAL_DELAY_S, metavar="SECONDS",
                   help="tell a task to checkpoint and requeue this long before its time limit "
                        f"(default {D.SLURM_SIGNAL_DELAY_S})")
    e.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                   help="any other sbatch option (repeatable), e.g. account=mylab, qos=high, constraint=a100")
    e.add_argument("--setup", action="append", metavar="COMMAND",
                   help="shell line run before each task (repeatable), e.g. 'module load cuda'")
    e.add_argument("--wait", action="store_true",
                   help="slurm: wait until every job has ended, then print the status and write the leaderboard")


def add_leaderboard_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate the leaderboard afterwards")
    p.add_argument("--leaderboard", metavar="FILE", help="leaderboard path (default: see `leaderboard --help`)")


def results_folder(out: str, need_records: bool = False) -> Path:
    """``--out`` of a command that reads a results folder: it must exist (a
    typo must not report an empty folder or write an empty board there), and
    with ``need_records`` hold run records."""
    path = Path(out)
    if not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        raise UsageError(f"--out {out!r} {state}; accepted: a results folder written by `unlearnbench run` "
                         "(e.g. results)")
    records = ("runs/*.json", "forgetting_quality/runs/*.json", "exactness.csv")
    if need_records and not any(next(path.glob(pattern), None) for pattern in records):
        raise UsageError(f"--out {out!r} holds no run records ({', '.join(records)}); nothing to aggregate — "
                         f"`unlearnbench run --out {out}` writes them")
    return path
