"""The ``unlearnbench`` command line.

Only argparse is imported here: each command imports torch and the rest of
the harness when it runs, so ``unlearnbench --help`` answers at once.
Bad input exits with status 2 and one line naming the value.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import UsageError


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
                   help="override the reference training configuration (repeatable), e.g. epochs=10")
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
    o.add_argument("--precision", help="auto (default: bf16, else fp16, autocast on CUDA; fp32 on CPU), fp32, bf16, fp16")
    o.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms only (reproducible on GPU, slower)")


def add_executor_options(p: argparse.ArgumentParser, default: str) -> None:
    e = p.add_argument_group("executor (Slurm job arrays through submitit; see README 'Running on Slurm')")
    e.add_argument("--executor", choices=("local", "slurm"), default=default,
                   help=f"local: in this process; slurm: submit job arrays (default: {default})")
    e.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    e.add_argument("--time", type=int, dest="time_min", default=60, metavar="MINUTES",
                   help="time limit per array task; a task that hits it is requeued and resumes (default 60)")
    e.add_argument("--cpus-per-task", type=int, dest="cpus_per_task", metavar="N",
                   help="CPUs per task, also the torch threads (local too; default: the cluster's default / all)")
    e.add_argument("--gpus-per-task", type=int, dest="gpus_per_task", default=0, metavar="N", help="GPUs per task")
    e.add_argument("--mem-gb", type=float, dest="mem_gb", metavar="GB", help="memory per task")
    e.add_argument("--array-parallelism", type=int, dest="array_parallelism", default=64, metavar="N",
                   help="at most N tasks of an array run at once (default 64)")
    e.add_argument("--runs-per-task", type=int, dest="runs_per_task", default=0, metavar="N",
                   help="runs per task of the runs stage (default 0: all runs sharing one reference group)")
    e.add_argument("--signal-delay", type=int, dest="signal_delay_s", default=90, metavar="SECONDS",
                   help="tell a task to checkpoint and requeue this long before its time limit (default 90)")
    e.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                   help="any other sbatch option (repeatable), e.g. account=mylab, qos=high, constraint=a100")
    e.add_argument("--setup", action="append", metavar="COMMAND",
                   help="shell line run before each task (repeatable), e.g. 'module load cuda'")
    e.add_argument("--wait", action="store_true",
                   help="slurm: wait until every job has ended, then print the status and write the leaderboard")


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
    add_executor_options(p, default="local")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("sweep", help="run a grid as Slurm job arrays (references, then runs); skips finished runs")
    add_grid_options(p)
    add_executor_options(p, default="slurm")
    p.add_argument("--dry-run", action="store_true",
                   help="print the number of jobs and their sbatch parameters; submit nothing")
    p.add_argument("--no-leaderboard", action="store_true", help="do not regenerate the leaderboard afterwards")
    p.add_argument("--leaderboard", metavar="FILE", help="leaderboard path (default: see `leaderboard --help`)")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser("status", help="done / running / failed / missing runs of a results folder, and the failures")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.set_defaults(handler=cmd_status)

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

    p = sub.add_parser("leaderboard", help="aggregate records into OUT/summary.csv and leaderboard.md, redraw the figures")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--leaderboard", metavar="FILE",
                   help="output path (default: leaderboard.md beside OUT when OUT is named 'results', "
                        "else OUT/leaderboard.md)")
    p.add_argument("--no-figures", action="store_true", help="do not redraw OUT/figures/*.png")
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

    p = sub.add_parser("plot", help="draw the figures of the records in OUT to OUT/figures/*.png (seaborn)")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.set_defaults(handler=cmd_plot)

    p = sub.add_parser(
        "submit", help="run a new method under the standard protocol, validate and rank it (docs/adding-a-method.md)",
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
    p.set_defaults(handler=cmd_submit)
    return parser


class Progress:
    """A one-line progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.start = time.perf_counter()
        self.current = ""

    def _bar(self, done: float) -> str:
        width = 24
        filled = int(width * done / max(1, self.total))
        return "#" * filled + "." * (width - filled)

    def begin(self, label: str) -> None:
        """A run starts: the methods' ``ctx.progress`` calls now refer to it."""
        self.current = label
        self.step(0.0)

    def step(self, fraction: float, message: str = "") -> None:
        """A method's ``ctx.progress(fraction, message)``: redraw the bar (terminals only)."""
        if not self.tty or not self.current:
            return
        fraction = min(max(float(fraction), 0.0), 1.0)
        elapsed = time.perf_counter() - self.start
        line = (f"[{self._bar(self.done + fraction)}] {self.done}/{self.total} {elapsed:6.0f}s  "
                f"{self.current} {100 * fraction:3.0f}% {message}")
        self.stream.write("\r\033[K" + line[:160])
        self.stream.flush()

    def log(self, message: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"  {message}\n")
        self.stream.flush()

    def update(self, label: str, status: str = "") -> None:
        self.done += 1
        self.current = ""
        elapsed = time.perf_counter() - self.start
        line = f"[{self._bar(self.done)}] {self.done}/{self.total} {elapsed:6.0f}s  {label} {status}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:160])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def cmd_run(args) -> int:
    from .config import expand, grid_from_args

    if args.executor == "slurm":
        return cmd_sweep(args)
    grid = grid_from_args(args)
    specs = expand(grid)
    if args.dry_run:
        for s in specs:
            print(f"{s.key}  {s.describe()}")
        print(f"{len(specs)} runs")
        return 0
    from .records import RecordStore
    from .runner import Harness

    _set_threads(args.cpus_per_task)
    progress = Progress(len(specs))
    store = RecordStore(grid.out)
    done = {s.key for s in specs if store.is_done(s.key)}
    # Loading data and models only when something is left to run keeps a finished grid's rerun cheap.
    harness = (Harness.from_grid(grid, log=progress.log, method_progress=progress.step)
               if len(done) < len(specs) else None)
    counts: dict[str, int] = {}
    skipped = 0
    for spec in specs:
        if spec.key in done:
            skipped += 1
            progress.update(spec.describe(), "(done)")
            continue
        progress.begin(spec.describe())
        record = harness.run(spec)
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        status = record["status"]
        if status != "ok":
            progress.log(f"{spec.describe()}: {status}: {record['message']}")
        progress.update(spec.describe(), status)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing new"
    print(f"{len(specs)} runs: {summary}, {skipped} already done; "
          f"{harness.reference_trainings if harness else 0} reference models trained; "
          f"{time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        from .leaderboard import default_leaderboard_path

        md = Path(args.leaderboard) if args.leaderboard else default_leaderboard_path(Path(grid.out))
        if counts or not md.exists() or not (Path(grid.out) / "summary.csv").exists():
            _publish(grid.out, args.leaderboard)
        else:   # every record was there already: so are the tables drawn from them
            print(f"nothing new: {md} left as it is (`unlearnbench leaderboard` redraws it)", file=sys.stderr)
    return 1 if counts.get("failed") or counts.get("diverged") else 0


def cmd_sweep(args) -> int:
    from . import sweep as S
    from .config import expand, grid_from_args

    grid = grid_from_args(args)
    specs = expand(grid)
    sbatch = {}
    for item in args.sbatch or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. account=mylab")
        sbatch[key.strip().lstrip("-")] = value
    options = S.SlurmOptions(partition=args.partition, time_min=args.time_min, cpus_per_task=args.cpus_per_task,
                             gpus_per_task=args.gpus_per_task, mem_gb=args.mem_gb,
                             array_parallelism=args.array_parallelism, signal_delay_s=args.signal_delay_s,
                             sbatch=sbatch, setup=args.setup or [])
    options.validate()
    if args.runs_per_task < 0:
        raise UsageError(f"--runs-per-task {args.runs_per_task}: accepted: 0 (one task per reference group) or more")
    active = set()
    if args.executor == "slurm":
        from .status import collect

        active = collect(grid.out).keys("running")   # a rerun does not resubmit what is still queued
    plan = S.make_plan(grid, specs, args.runs_per_task, active)
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
    from .status import collect

    report = collect(grid.out, only=[sweep_dir / "manifest.json"])
    print(report.format())
    print(f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    if not args.no_leaderboard:
        _publish(grid.out, args.leaderboard)
    counts = report.counts()
    return 1 if counts.get("failed") or counts.get("missing") or report.diverged else 0


def cmd_status(args) -> int:
    from .status import collect

    print(collect(args.out).format())
    return 0


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

    from unlearnbench.methods import UnknownMethod, method_origin

    from .errors import UsageError

    try:
        names = list_methods()
    except UnknownMethod as e:   # a broken plugin
        raise UsageError(str(e)) from None
    print("methods:")
    for name in names:
        info = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
        origin = method_origin(name)
        print(f"  {name:18s} {info.summary}" + (f"  [{defaults}]" if defaults else "")
              + ("" if origin == "built-in" else f"  ({origin})"))
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
    _publish(args.out, args.leaderboard, figures=not args.no_figures)
    return 0


def cmd_plot(args) -> int:
    from .figures import write_figures

    for path, _, panels in write_figures(args.out):
        print(f"wrote {path} ({panels} panels)")
    return 0


def cmd_submit(args) -> int:
    from .submit import comparison, load_submission, run_submission, unload_submission, write_community

    submission = load_submission(args.source, args.method)
    _set_threads()
    progress = Progress(0)
    try:
        result = run_submission(submission, args, progress)
    finally:
        unload_submission(submission)   # in-process callers (tests) must not keep a refused method registered
    out = result["grid"].out
    if not args.no_leaderboard:
        _publish(out, None)
    text = comparison(out, submission.name, result["specs"])
    folder = write_community(submission, args, result, text)
    print(text)
    reused = f" ({result['reused']} reused from earlier records)" if result["reused"] else ""
    print(f"accepted: {len(result['specs'])} runs of {submission.name!r}{reused}; wrote {folder}", file=sys.stderr)
    for line in result["failed_baselines"]:
        print(f"  note: baseline {line}", file=sys.stderr)
    return 0


def _publish(out, leaderboard=None, figures: bool = True) -> None:
    """Regenerate summary.csv, leaderboard.md and (unless told not to) the figures."""
    from .leaderboard import write_leaderboard

    csv_path, md_path = write_leaderboard(out, leaderboard)
    print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    if figures:
        from .figures import write_figures

        written = write_figures(out)
        if written:
            print(f"drew {len(written)} figures in {written[0][0].parent}", file=sys.stderr)


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


def _set_threads(threads: int | None = None) -> None:
    from .sweep import set_threads

    set_threads(threads)


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
