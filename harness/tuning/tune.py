"""`unlearnbench tune`: every method gets the same hyperparameter budget.

The design in full: docs/design-notes.md#tuningtune.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

from .. import defaults as D
from ..errors import UsageError
from ..protocol.locks import file_lock
from ..protocol.records import write_text_atomic
from ..tomlio import dumps, tomllib
from .presets import preset_path, presets_dir

DEFAULT_TRIALS = D.TUNE_TRIALS   # harness/defaults.py: the command line shows the same
DEFAULT_SEEDS = D.TUNE_SEEDS
MAX_TRIALS_FACTOR = 2     # a study that has not converged is extended, by half the budget at a time, up to this × it
OBJECTIVE = "avg_gap"


# ---- presets (read by harness/tuning/presets.py) ---------------------------------------

def dump_presets(doc: dict, dataset: str, model: str) -> str:
    """TOML text of a presets document {hyper|tuning: {scenario: {method: {...}}}}."""
    ordered = {section: {label: {method: doc[section][label][method] for method in sorted(doc[section][label])}
                         for label in sorted(doc[section])}
               for section in ("hyper", "tuning") if section in doc}
    return dumps(ordered, comment=(
        f"Tuned hyperparameters for {dataset} / {model}: written by `unlearnbench tune`, do not edit by hand.\n"
        "[hyper.\"<scenario>\".<method>] is what `unlearnbench run` uses (unless `tuned = false` or\n"
        "--no-tuned); [tuning.\"<scenario>\".<method>] records how it was chosen (see harness/tuning/tune.py)."))


def write_preset(folder: Path, dataset: str, model: str, label: str, method: str, best: dict, tuning: dict) -> Path:
    """Update one method's entry of a presets file (others kept), under a lock."""
    path = preset_path(folder, dataset, model)
    with file_lock(path.with_name(f".{path.name}.lock")):
        doc = {}
        if path.is_file():
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        doc.setdefault("hyper", {}).setdefault(label, {})[method] = best
        doc.setdefault("tuning", {}).setdefault(label, {})[method] = tuning
        write_text_atomic(path, dump_presets(doc, dataset, model))
    return path


# ---- the studies --------------------------------------------------------------

def describe_space(space: dict) -> str:
    return "; ".join(f"{k}: {v}" for k, v in space.items())


def default_storage(out) -> str:
    """The SQLite file of a results folder's studies."""
    return f"sqlite:///{(Path(out) / 'tuning' / 'studies.db').resolve()}"


def trial_grid(grid, study_or_table, method: str, seeds, values: dict):
    """The grid of one configuration: its table, its method, the tuning seeds."""
    dataset, model, scenario = study_or_table
    kind = {"random": {"ratios": [scenario.ratio]}, "class": {"classes": [scenario.forget_class]},
            "subclass": {"subclasses": [scenario.forget_class]}}[scenario.kind]
    return dataclasses.replace(grid, datasets=[dataset], models=[model], scenarios=[scenario.kind],
                               methods=[method], seeds=list(seeds), method_args={method: values} if values else {},
                               floor_retrains=0, tuned=False, **kind)


def make_studies(grid, methods: list[str], seeds, budget: int) -> list:
    """One study per method × table.  Its name says what it tunes and ends
    with a hash of everything its trials depend on (the tuning runs'
    identities at the defaults, the space, the budget): change any of them
    and the rerun starts a new study instead of mixing two objectives."""
    from unlearnbench.methods import get_method

    from ..protocol.config import expand
    from ..protocol.spec import stable_hash
    from .search import Study, distributions

    tables = tables_of(grid, methods[0]) if methods else []
    studies = []
    for method in methods:
        info = get_method(method)
        for dataset, model, scenario in tables:
            defaults = info.defaults(scenario.kind)
            searched = {k: defaults[k] for k in info.search_space}
            specs = expand(trial_grid(grid, (dataset, model, scenario), method, seeds, searched))
            ident = stable_hash([[s.identity() for s in specs], describe_space(info.search_space), budget])
            studies.append(Study(name=f"{dataset}/{model}/{scenario.label}/{method}/{budget} trials/{ident[:12]}",
                                 method=method, dataset=dataset, model=model, scenario=scenario,
                                 target=budget if info.search_space else 1, defaults=searched,
                                 space=distributions(info.search_space, defaults)))
    return studies


def evaluator(harness, grid, seeds):
    """``evaluate(study, values)``: mean Avg. Gap of one configuration over
    the tuning seeds (a run that fails or diverges scores inf)."""
    from ..protocol.config import expand

    def evaluate(study, values: dict) -> tuple[float, dict]:
        gaps, failures, noop = [], [], []
        table = (study.dataset, study.model, study.scenario)
        for spec in expand(trial_grid(grid, table, study.method, seeds, values)):
            record = harness.run(spec)
            gaps.append(record["metrics"][OBJECTIVE] if record["status"] == "ok" else math.inf)
            noop.append(bool(record.get("flags", {}).get("noop")))
            if record["status"] != "ok":
                failures.append(f"seed {spec.seed} {record['status']}: {record.get('message')}")
        return sum(gaps) / len(gaps), {"per_seed": [round(g, 4) for g in gaps], "failures": failures, "noop": noop}

    return evaluate


def convergence(history: list[dict]) -> dict:
    """Has a study converged?  Its best score over all complete trials (in
    trial order) is compared with its best over the first half of them; the
    study has converged when the half-budget best is no worse than the full
    best by more than the validation noise: the standard error of the full
    best's mean over the tuning seeds (sample standard deviation / √seeds)."""
    scores = [h[OBJECTIVE] for h in history]
    if not scores:
        return {"converged": False, "best_at_half": None, "noise": None, "half": 0}
    half = max(1, len(scores) // 2)
    best_index = min(range(len(scores)), key=lambda i: (scores[i], i))
    per_seed = [g for g in history[best_index].get("per_seed", []) if math.isfinite(g)]
    noise = 0.0
    if len(per_seed) > 1:
        mean = sum(per_seed) / len(per_seed)
        noise = math.sqrt(sum((g - mean) ** 2 for g in per_seed) / (len(per_seed) - 1) / len(per_seed))
    at_half = min(scores[:half])
    converged = len(scores) == 1 or (math.isfinite(at_half) and at_half - scores[best_index] <= noise)
    return {"converged": bool(converged), "best_at_half": at_half, "noise": noise, "half": half}


def publish(storage, study, presets, seeds, budget: int, sampler_seed: int) -> str:
    """Write a complete study's winner and history into its presets file;
    returns a one-line summary."""
    import optuna

    from unlearnbench.methods import get_method

    from .search import result, startup_trials

    r = result(storage, study, OBJECTIVE)
    c = r["counts"]
    if r["best"] is None or not math.isfinite(r["best_score"]):
        return f"{study.label}: every trial failed; no preset written"
    info = get_method(study.method)
    tuning = {"objective": f"{OBJECTIVE} (SalUn Avg. Gap) on the validation protocol, mean over seeds",
              "sampler": f"Optuna {optuna.__version__} TPESampler (multivariate, constant liar, "
                         f"{startup_trials(budget)} random startup trials), seed {sampler_seed}",
              "study": study.name, "budget": budget, "trials": c.complete, "failed": c.failed,
              "duplicates": c.duplicates, "seeds": list(seeds),
              "search_space": describe_space(info.search_space) or "nothing to tune",
              "trial0": study.defaults, "best_trial": r["best_trial"], "best": round(r["best_score"], 4)}
    if info.defaults_source:
        tuning["defaults_source"] = info.defaults_source
    if r["default_score"] is not None:
        tuning["default"] = round(r["default_score"], 4)
    conv = convergence(r["history"]) if study.space else {"converged": True, "best_at_half": r["best_score"],
                                                          "noise": 0.0, "half": 1}
    best_entry = next(h for h in r["history"] if h["trial"] == r["best_trial"])
    tuning.update({"converged": conv["converged"], "best_at_half": round(conv["best_at_half"], 4)
                   if conv["best_at_half"] is not None and math.isfinite(conv["best_at_half"]) else None,
                   "half_trials": conv["half"], "noise": round(conv["noise"], 4) if conv["noise"] is not None else None,
                   "best_noop": bool(best_entry.get("noop")) and all(best_entry["noop"])})
    tuning["history"] = [{k: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v for k, v in h.items()}
                         for h in r["history"]]
    write_preset(presets, study.dataset, study.model, study.scenario.label, study.method, r["best"], tuning)
    values = ", ".join(f"{k}={v}" for k, v in r["best"].items()) or "nothing to tune"
    return (f"{study.label}: {c.complete} trials; {OBJECTIVE} {tuning.get('default')} (defaults) -> "
            f"{tuning['best']} (trial {r['best_trial']}: {values}); "
            f"{'converged' if conv['converged'] else 'not converged'} (best at {conv['half']} trials: "
            f"{tuning['best_at_half']}, noise {tuning['noise']}){'; a no-op' if tuning['best_noop'] else ''}")


@dataclasses.dataclass
class TuneWorker:
    """One worker: a local process, or a Slurm array task through submitit
    (picklable; on a time limit it requeues itself and goes on where the
    studies are)."""

    grid: object
    studies: list
    storage: str
    seeds: list
    budget: int
    sampler_seed: int
    presets: str
    worker: int = 0
    threads: int | None = None
    poll_s: float | None = None

    def __call__(self) -> list[str]:
        from ..protocol.runner import Harness
        from ..protocol.threads import set_threads
        from .search import POLL_S, open_storage, optimize

        set_threads(self.threads)
        prefix = f"[worker {self.worker}] " if self.worker else ""
        log = lambda msg: print(prefix + msg.lstrip(), file=sys.stderr, flush=True)   # noqa: E731
        cache = Path(self.grid.cache_dir) if self.grid.cache_dir else Path(self.grid.out) / "cache"
        harness = Harness.from_grid(self.grid, log=log, out=cache / "tuning", cache_dir=cache, evaluate_on="val")
        storage = open_storage(self.storage)
        done = []
        optimize(storage, self.studies, evaluator(harness, self.grid, self.seeds), self.sampler_seed, self.worker,
                 log, on_done=lambda study: done.append(publish(storage, study, self.presets, self.seeds,
                                                                self.budget, self.sampler_seed)),
                 poll_s=POLL_S if self.poll_s is None else self.poll_s)
        return done

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def extend(storage, studies: list, max_trials: int, step: int) -> list:
    """The complete studies that have not converged and may grow: their target
    raised by ``step`` complete trials (at most ``max_trials``)."""
    from .search import counts, load, result

    grown = []
    for study in studies:
        c = counts(load(storage, study).get_trials(deepcopy=False))
        if not study.space or c.complete < study.target or c.exhausted(study.target) or c.complete >= max_trials:
            continue
        if not convergence(result(storage, study, OBJECTIVE)["history"])["converged"]:
            study.target = min(max_trials, c.complete + step)
            print(f"{study.label}: not converged at {c.complete} trials; extended to {study.target}", file=sys.stderr)
            grown.append(study)
    return grown


def run_local(worker: TuneWorker, jobs: int) -> None:
    """``jobs`` worker processes on this machine (one: in this process)."""
    if jobs == 1:
        worker()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(dataclasses.replace(worker, worker=i)) for i in range(jobs)]
        errors = [f.exception() for f in futures]
    if any(errors):
        raise next(e for e in errors if e)


def submit_slurm(worker: TuneWorker, jobs: int, options, folder: Path) -> list:
    """``jobs`` workers as one Slurm job array (submitit)."""
    import shutil

    from ..cluster.slurm import slurm_executor

    if shutil.which("sbatch") is None:
        raise UsageError("sbatch not found: --executor slurm needs a Slurm cluster "
                         "(scripts/slurm_localhost.sh start makes one here); accepted here: --executor local")
    executor = slurm_executor(folder / "%j", options, "unlearnbench-tune")
    with executor.batch():
        return [executor.submit(dataclasses.replace(worker, worker=i)) for i in range(jobs)]


def tables_of(grid, method: str) -> list:
    """The (dataset, model, Scenario) tables of a grid, in order."""
    from ..protocol.config import expand

    probe = dataclasses.replace(grid, methods=[method], seeds=[0], floor_retrains=0, tuned=False, method_args={})
    seen = []
    for spec in expand(probe):
        table = (spec.dataset, spec.model, spec.scenario)
        if table not in seen:
            seen.append(table)
    return seen


def tunable_methods(names: str) -> list[str]:
    """Every method but the reference rows ('all'), or the named ones."""
    from unlearnbench.methods import UnknownMethod, get_method, list_methods

    tunable = [m for m in list_methods() if get_method(m).reference is None]
    if names.strip() == "all":
        return tunable
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    for name in chosen:
        try:
            info = get_method(name)
        except UnknownMethod as e:
            raise UsageError(str(e)) from None
        if info.reference is not None:
            raise UsageError(f"method {name!r} is a reference model, nothing to tune; accepted: "
                             f"{', '.join(tunable)} or all")
    return chosen


def command(args) -> int:
    """``unlearnbench tune METHOD[,METHOD...]|all``."""
    from ..cluster.slurm import SlurmOptions, check_data
    from ..protocol.config import grid_from_args, parse_list
    from .search import counts, load, open_storage, prepare

    methods = tunable_methods(args.tune_methods)
    for option, value in (("--trials", args.trials), ("--jobs", args.jobs), ("--max-trials", args.max_trials or 1)):
        if value < 1:
            raise UsageError(f"{option} {value} is not a positive integer")
    seeds = parse_list(args.tune_seeds, int, "--tune-seeds")
    if any(s < 0 for s in seeds):
        raise UsageError(f"--tune-seeds {args.tune_seeds!r}: seeds must be non-negative integers")
    # a config's own tables only: the presets it includes are tuned on their own (configs/tuned/ per table)
    grid = dataclasses.replace(grid_from_args(args), method_args={}, tuned=False, include=[], parts=())
    options = SlurmOptions.from_args(args) if args.executor == "slurm" else None
    studies = make_studies(grid, methods, seeds, args.trials)
    folder = Path(args.presets) if args.presets else presets_dir(True)
    url = args.storage or default_storage(grid.out)
    if args.dry_run:
        new_file = url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file()
        storage = None if new_file else open_storage(url)     # a dry run creates no database
        for study in studies:
            have = 0
            if storage is not None and study.name in {s.study_name for s in storage.get_all_studies()}:
                have = counts(load(storage, study).get_trials(deepcopy=False)).complete
            print(f"{study.label}: {have}/{study.target} trials x {len(seeds)} seeds"
                  + ("" if study.space else " (nothing to tune)"))
        print(f"{len(studies)} studies in {url}; presets -> {folder}")
        return 0
    check_data(grid)
    if not args.storage:
        Path(grid.out, "tuning").mkdir(parents=True, exist_ok=True)
    storage = open_storage(url)
    for study in studies:
        prepare(storage, study)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    worker = TuneWorker(grid=grid, studies=studies, storage=url, seeds=seeds, budget=args.trials,
                        sampler_seed=args.sampler_seed, presets=str(folder),
                        threads=args.cpus_per_task or (None if args.executor == "slurm" else max(1, cpus // args.jobs)))
    start = time.perf_counter()
    max_trials = args.max_trials if args.max_trials is not None else MAX_TRIALS_FACTOR * args.trials
    running = studies
    while running:
        worker = dataclasses.replace(worker, studies=running)
        if args.executor == "slurm":
            jobs = submit_slurm(worker, args.jobs, options, Path(grid.out) / "tuning" / "jobs")
            print(f"submitted {len(jobs)} tuning workers: job {jobs[0].job_id.split('_')[0]}; "
                  f"`unlearnbench tune {args.tune_methods} --dry-run` (same options) shows progress")
            if not args.wait:
                return 0
            for job in jobs:
                job.wait()
        else:
            run_local(worker, args.jobs)
        running = extend(storage, running, max_trials, max(1, args.trials // 2))
    incomplete = 0
    for study in studies:
        c = counts(load(storage, study).get_trials(deepcopy=False))
        if c.complete >= study.target or c.exhausted(study.target):
            line = publish(storage, study, folder, seeds, args.trials, args.sampler_seed)
            incomplete += "no preset written" in line
        else:
            line = (f"{study.label}: {c.complete}/{study.target} trials ({c.failed} failed); "
                    f"rerun the same command to continue")
            incomplete += 1
        print(line)
    print(f"{len(studies)} studies, presets in {folder}; {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 1 if incomplete else 0
