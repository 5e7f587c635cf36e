"""The ``unlearnbench`` command line.

Only argparse is imported here: each command imports torch and the rest of
the harness when it runs, so ``unlearnbench --help`` answers at once.
Bad input exits with status 2 and one line naming the value.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def add_grid_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("grid selection (comma-separated lists; default: the default benchmark)")
    g.add_argument("--config", metavar="FILE.toml", help="load a preset; options below override it")
    g.add_argument("--datasets", help="e.g. digits,fashion_mnist")
    g.add_argument("--models", help="e.g. mlp")
    g.add_argument("--scenarios", help="random and/or class")
    g.add_argument("--ratios", help="forget ratios in (0, 1) for the random scenario, e.g. 0.1,0.5")
    g.add_argument("--classes", help="class indices to forget in the class scenario, e.g. 0")
    g.add_argument("--methods", help="method names (default: every registered method)")
    g.add_argument("--seeds", help="e.g. 0,1,2")
    g.add_argument("--method-arg", action="append", metavar="METHOD.KEY=VALUE",
                   help="override a method hyperparameter (repeatable), e.g. finetune.lr=0.01")
    g.add_argument("--train-arg", action="append", metavar="KEY=VALUE",
                   help="override the reference training configuration (repeatable), e.g. epochs=10")
    g.add_argument("--val-frac", type=float, dest="val_frac", help="validation share carved from train (default 0.1)")
    g.add_argument("--floor-retrains", type=int, dest="floor_retrains", metavar="K",
                   help="extra retrains per forget set measuring the retrain noise floor (default 2; 0: none)")
    g.add_argument("--no-tuned", action="store_true", dest="no_tuned",
                   help="ignore the tuned presets in configs/tuned/ (use the methods' registered defaults)")
    o = p.add_argument_group("where and how")
    o.add_argument("--out", help="results folder (default: results)")
    o.add_argument("--cache-dir", dest="cache_dir", help="reference-model cache (default: OUT/cache)")
    o.add_argument("--data-root", dest="data_root", help="folder holding the dataset files")
    o.add_argument("--download", action="store_true", help="allow downloading datasets that support it")
    o.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearnbench",
        description="A benchmark suite for machine unlearning in image classification. "
                    "`unlearnbench run` runs the default benchmark and writes leaderboard.md.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a benchmark grid (default: the default benchmark) and update the leaderboard")
    add_grid_options(p)
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate the leaderboard afterwards")
    p.add_argument("--leaderboard", metavar="FILE", help="leaderboard path (default: see `leaderboard --help`)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("forgetting-quality",
                       help="the NeurIPS 2023 challenge's many-model ε score (default: digits/mlp, random 10%%, "
                            "seed 0, every method, N = 32)")
    add_grid_options(p)
    p.add_argument("--num-models", type=int, default=32, metavar="N",
                   help="models per bank: N retrained and N runs of each method (default 32)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate the leaderboard afterwards")
    p.add_argument("--leaderboard", metavar="FILE", help="leaderboard path (default: see `leaderboard --help`)")
    p.add_argument("--dry-run", action="store_true", help="list the method banks and exit")
    p.set_defaults(handler=cmd_forgetting_quality)

    p = sub.add_parser("tune", help="tune methods' hyperparameters with the same budget on a validation "
                                    "protocol; writes configs/tuned/ presets")
    p.add_argument("tune_methods", metavar="METHOD", help="method name(s), comma-separated, or 'all' "
                                                          "(every method that declares a search space)")
    p.add_argument("--trials", type=int, default=12, help="configurations tried per method and table (default 12)")
    p.add_argument("--tune-seeds", default="100,101", dest="tune_seeds",
                   help="seeds of the validation protocol, disjoint from the benchmark's (default 100,101)")
    p.add_argument("--presets", metavar="DIR", help="presets folder to write (default: the shipped configs/tuned/)")
    p.add_argument("--dry-run", action="store_true", help="list what would be tuned and exit")
    g = p.add_argument_group("tables (default: those of the default benchmark)")
    for option in ("--config", "--datasets", "--models", "--scenarios", "--ratios", "--classes"):
        g.add_argument(option)
    g.add_argument("--train-arg", action="append", metavar="KEY=VALUE", help="override the reference training")
    g.add_argument("--val-frac", type=float, dest="val_frac", help="validation share carved from train (default 0.1)")
    for option, dest in (("--out", "out"), ("--cache-dir", "cache_dir"), ("--data-root", "data_root"),
                         ("--device", "device")):
        g.add_argument(option, dest=dest)
    p.set_defaults(handler=cmd_tune)

    p = sub.add_parser("list", help="list registered methods, datasets, models and scenarios")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("leaderboard", help="aggregate records into OUT/summary.csv and leaderboard.md")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--leaderboard", metavar="FILE",
                   help="output path (default: leaderboard.md beside OUT when OUT is named 'results', "
                        "else OUT/leaderboard.md)")
    p.set_defaults(handler=cmd_leaderboard)

    p = sub.add_parser("exactness", help="MUSO's theorem on real data: rf_linear, every method's parameter "
                                          "distance to Retrain (writes OUT/exactness.csv)")
    p.add_argument("--out", default="results", help="folder for exactness.csv (default: results)")
    p.add_argument("--datasets", help="digits, digits_3v7, fashion_mnist (default: all three)")
    p.add_argument("--ratios", help="forget ratios (default: 0.05,0.1,0.3)")
    p.add_argument("--seeds", help="seeds (default: 0,1,2)")
    p.add_argument("--features", type=int, default=5000, help="random features M (default: 5000)")
    p.add_argument("--sigma", type=float, help="RFF bandwidth on normalised inputs (default: √input-dim)")
    p.add_argument("--convergence-sigma", type=float, default=2.0, dest="convergence_sigma",
                   help="well-conditioned bandwidth for the GD/SGD iterates table; 0 skips it (default: 2)")
    p.add_argument("--data-root", dest="data_root", help="folder holding the Fashion-MNIST files")
    p.set_defaults(handler=cmd_exactness)
    return parser


class Progress:
    """A one-line progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()

    def log(self, message: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"  {message}\n")
        self.stream.flush()

    def update(self, label: str, status: str = "") -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        width = 24
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "." * (width - filled)
        line = f"[{bar}] {self.done}/{self.total} {elapsed:6.0f}s  {label} {status}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:160])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def cmd_run(args) -> int:
    from .config import expand, grid_from_args

    grid = grid_from_args(args)
    specs = expand(grid)
    if args.dry_run:
        for s in specs:
            print(f"{s.key}  {s.describe()}")
        print(f"{len(specs)} runs")
        return 0
    from .leaderboard import write_leaderboard
    from .runner import Harness

    _set_threads()
    progress = Progress(len(specs))
    harness = Harness.for_grid(grid, log=progress.log)
    counts: dict[str, int] = {}
    skipped = 0
    for spec in specs:
        if harness.store.is_done(spec.key):
            skipped += 1
            progress.update(spec.describe(), "(done)")
            continue
        record = harness.run(spec)
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        status = record["status"]
        if status != "ok":
            progress.log(f"{spec.describe()}: {status}: {record['message']}")
        progress.update(spec.describe(), status)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing new"
    print(f"{len(specs)} runs: {summary}, {skipped} already done; "
          f"{harness.reference_trainings} reference models trained; "
          f"{time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        csv_path, md_path = write_leaderboard(grid.out, args.leaderboard)
        print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    return 1 if counts.get("failed") or counts.get("diverged") else 0


def cmd_forgetting_quality(args) -> int:
    from .forgetting_quality import command

    return command(args)


def cmd_tune(args) -> int:
    from .tuning import command

    return command(args)


def cmd_list(args) -> int:
    from unlearnbench import datasets as D
    from unlearnbench.methods import get_method, list_methods

    from .models import get_model, list_models
    from .spec import SCENARIOS

    print("methods:")
    for name in list_methods():
        info = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
        print(f"  {name:18s} {info.summary}" + (f"  [{defaults}]" if defaults else ""))
    print("datasets:")
    for name in D.list_datasets():
        print(f"  {name:18s} {D.DATASETS[name][2]}")
    print("models:")
    for name in list_models():
        print(f"  {name:18s} {get_model(name).summary}")
    print("scenarios:")
    print("  " + ", ".join(SCENARIOS))
    return 0


def cmd_leaderboard(args) -> int:
    from .leaderboard import write_leaderboard

    csv_path, md_path = write_leaderboard(args.out, args.leaderboard)
    print(f"wrote {csv_path} and {md_path}")
    return 0


def cmd_exactness(args) -> int:
    from . import exactness as E
    from .config import parse_list
    from .errors import UsageError

    datasets = parse_list(args.datasets, str, "--datasets") if args.datasets else E.DEFAULT_TASKS
    ratios = parse_list(args.ratios, float, "--ratios") if args.ratios else E.DEFAULT_RATIOS
    seeds = parse_list(args.seeds, int, "--seeds") if args.seeds else E.DEFAULT_SEEDS
    for name in datasets:
        if name not in E.TASKS:
            raise UsageError(f"unknown exactness dataset {name!r}; accepted: {', '.join(E.TASKS)}")
    if any(not 0.0 < r < 1.0 for r in ratios):
        raise UsageError(f"forget ratios {args.ratios!r} must lie strictly between 0 and 1")
    if any(s < 0 for s in seeds):
        raise UsageError(f"seeds {args.seeds!r} must be non-negative integers")
    if args.features < 2 or args.features % 2:
        raise UsageError(f"--features {args.features} must be an even number >= 2")
    if args.sigma is not None and not args.sigma > 0:
        raise UsageError(f"--sigma {args.sigma} must be positive")
    _set_threads()
    start = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)
    csv_path, conv_path = E.run_exactness(args.out, datasets, ratios, seeds, args.features, args.sigma,
                                          args.convergence_sigma, args.data_root, log)
    import pandas as pd

    for line in E.verdict(pd.read_csv(csv_path)):
        print(line.replace("**", ""))
    print(f"wrote {csv_path}" + (f" and {conv_path}" if conv_path else "")
          + f" in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


def _set_threads() -> None:
    import torch

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("unlearnbench"))
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    from .errors import UsageError

    try:
        return args.handler(args)
    except UsageError as e:
        print(f"unlearnbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unlearnbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
