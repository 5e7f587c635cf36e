"""`unlearnbench tune`: every method gets the same hyperparameter budget.

A method declares what may be tuned next to its code
(``register_method(..., search_space={"lr": LogUniform(1e-3, 0.1), ...})``).
For each table (dataset × model × scenario) the tuner evaluates
``trials`` configurations — trial 0 is the method's registered defaults,
the rest are drawn from its space with a seeded sampler — and keeps the one
with the lowest Avg. Gap on a **validation protocol** that never touches the
test set:

- its own seeds (default 100 and 101, disjoint from the benchmark's 0-2), so
  θ₀, the forget set and both references differ from the benchmark's;
- the forget split and the references come from the training pool only, as
  in the benchmark;
- a fixed class-balanced half of the validation split plays the test set
  (TA and the MIA's non-members); the method sees only the other half as
  ``ctx.val`` (``Harness(evaluate_on="val")``).

The winners are written to ``configs/tuned/<dataset>-<model>.toml`` —
``[hyper."<scenario>".<method>]`` — with the search, its budget and every
trial under ``[tuning."<scenario>".<method>]``.  ``unlearnbench run`` (and
every command that expands a grid) uses them unless ``tuned = false`` /
``--no-tuned``; explicit ``method_args`` override them.
"""
from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from pathlib import Path

from .errors import UsageError
from .locks import file_lock
from .presets import preset_path, presets_dir
from .records import write_text_atomic
from .tomlio import dumps, tomllib

DEFAULT_TRIALS = 12
DEFAULT_SEEDS = (100, 101)
OBJECTIVE = "avg_gap"


# ---- presets (read by harness/presets.py) ---------------------------------------

def dump_presets(doc: dict, dataset: str, model: str) -> str:
    """TOML text of a presets document {hyper|tuning: {scenario: {method: {...}}}}."""
    ordered = {section: {label: {method: doc[section][label][method] for method in sorted(doc[section][label])}
                         for label in sorted(doc[section])}
               for section in ("hyper", "tuning") if section in doc}
    return dumps(ordered, comment=(
        f"Tuned hyperparameters for {dataset} / {model}: written by `unlearnbench tune`, do not edit by hand.\n"
        "[hyper.\"<scenario>\".<method>] is what `unlearnbench run` uses (unless `tuned = false` or\n"
        "--no-tuned); [tuning.\"<scenario>\".<method>] records how it was chosen (see harness/tuning.py)."))


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


# ---- the search -----------------------------------------------------------------

def describe_space(space: dict) -> str:
    return "; ".join(f"{k}: {v}" for k, v in space.items())


def candidates(info, scenario_kind: str, trials: int, seed: int) -> list[dict]:
    """``trials`` distinct configurations of the searched hyperparameters:
    the registered defaults first, then seeded random draws."""
    defaults = info.defaults(scenario_kind)
    out = [{k: defaults[k] for k in info.search_space}]
    rng = random.Random(seed)
    for _ in range(100 * trials):
        if len(out) >= trials:
            break
        draw = {k: dist.sample(rng) for k, dist in info.search_space.items()}
        if draw not in out:
            out.append(draw)
    return out


def tune_table(harness, grid, method: str, table, trials: int, seeds, log=lambda msg: None) -> dict:
    """Search one method's space in one table (dataset, model, Scenario);
    returns the trials and the winner."""
    from unlearnbench.methods import get_method

    from .config import expand
    from .spec import derive_seed

    dataset, model, scenario = table
    info = get_method(method)
    kind_options = ({"ratios": [scenario.ratio]} if scenario.kind == "random" else {"classes": [scenario.forget_class]})
    history = []
    draws = candidates(info, scenario.kind, trials, derive_seed(0, "tune", dataset, model, scenario.label, method))
    for i, values in enumerate(draws):
        trial_grid = dataclasses.replace(grid, datasets=[dataset], models=[model], scenarios=[scenario.kind],
                                         methods=[method], seeds=list(seeds), method_args={method: values},
                                         floor_retrains=0, tuned=False, **kind_options)
        gaps, failures = [], []
        for spec in expand(trial_grid):
            record = harness.run(spec)
            gaps.append(record["metrics"][OBJECTIVE] if record["status"] == "ok" else math.inf)
            if record["status"] != "ok":   # a diverging candidate scores inf; say why
                failures.append(f"seed {spec.seed} {record['status']}: {record.get('message')}")
        gap = sum(gaps) / len(gaps)
        history.append({"trial": i, OBJECTIVE: round(gap, 4) if math.isfinite(gap) else gap, **values})
        log(f"  {method} {dataset}/{model} {scenario.label} trial {i + 1}/{len(draws)}: "
            f"{', '.join(f'{k}={v}' for k, v in values.items())} -> {OBJECTIVE} {gap:.3f}"
            + "".join(f"\n      {f}" for f in failures))
    best = min(range(len(history)), key=lambda i: (history[i][OBJECTIVE], i))
    if not math.isfinite(history[best][OBJECTIVE]):
        raise RuntimeError(f"tuning {method} on {dataset}/{model} {scenario.label}: every trial failed "
                           f"(last: {failures[-1] if failures else 'no run'}); no preset written")
    return {"best": {k: history[best][k] for k in info.search_space}, "best_trial": best, "history": history}


def tables_of(grid, method: str) -> list:
    """The (dataset, model, Scenario) tables of a grid, in order."""
    from .config import expand

    probe = dataclasses.replace(grid, methods=[method], seeds=[0], floor_retrains=0, tuned=False, method_args={})
    seen = []
    for spec in expand(probe):
        table = (spec.dataset, spec.model, spec.scenario)
        if table not in seen:
            seen.append(table)
    return seen


def tunable_methods(names: str) -> list[str]:
    from unlearnbench.methods import UnknownMethod, get_method, list_methods

    tunable = [m for m in list_methods() if get_method(m).search_space]
    if names.strip() == "all":
        return tunable
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    for name in chosen:
        try:
            info = get_method(name)
        except UnknownMethod as e:
            raise UsageError(str(e)) from None
        if not info.search_space:
            raise UsageError(f"method {name!r} declares no search space; tunable: {', '.join(tunable) or 'none'}")
    return chosen


def command(args) -> int:
    """``unlearnbench tune METHOD[,METHOD...]|all``."""
    from .config import grid_from_args, parse_list
    from .progress import Progress
    from .runner import Harness
    from .threads import set_threads

    methods = tunable_methods(args.tune_methods)
    if args.trials < 1:
        raise UsageError(f"--trials {args.trials} is not a positive integer")
    seeds = parse_list(args.tune_seeds, int, "--tune-seeds")
    if any(s < 0 for s in seeds):
        raise UsageError(f"--tune-seeds {args.tune_seeds!r}: seeds must be non-negative integers")
    grid = grid_from_args(args)
    grid = dataclasses.replace(grid, method_args={}, tuned=False)
    tables = tables_of(grid, methods[0]) if methods else []
    folder = Path(args.presets) if args.presets else presets_dir(True)
    if args.dry_run:
        for method in methods:
            for dataset, model, scenario in tables:
                print(f"{method}  {dataset}/{model} {scenario.label}: {args.trials} trials x {len(seeds)} seeds")
        print(f"{len(methods) * len(tables) * args.trials * len(seeds)} runs; presets -> {folder}")
        return 0
    set_threads()
    progress = Progress(len(methods) * len(tables))
    cache = Path(grid.cache_dir) if grid.cache_dir else Path(grid.out) / "cache"
    harness = Harness.from_grid(grid, log=progress.log, out=cache / "tuning", cache_dir=cache, evaluate_on="val")
    from unlearnbench.methods import get_method

    for method in methods:
        info = get_method(method)
        for dataset, model, scenario in tables:
            t0 = time.perf_counter()
            result = tune_table(harness, grid, method, (dataset, model, scenario), args.trials, seeds,
                                log=progress.log)
            default_gap = result["history"][0][OBJECTIVE]
            best_gap = result["history"][result["best_trial"]][OBJECTIVE]
            tuning = {"objective": f"{OBJECTIVE} (SalUn Avg. Gap) on the validation protocol, mean over seeds",
                      "trials": args.trials, "seeds": seeds, "search_space": describe_space(info.search_space),
                      "best_trial": result["best_trial"], "best": best_gap, "default": default_gap,
                      "history": result["history"]}
            path = write_preset(folder, dataset, model, scenario.label, method, result["best"], tuning)
            progress.update(f"{method} {dataset}/{model} {scenario.label}",
                            f"{OBJECTIVE} {default_gap} -> {best_gap} "
                            f"({', '.join(f'{k}={v}' for k, v in result['best'].items())}) "
                            f"[{time.perf_counter() - t0:.0f} s]")
            progress.log(f"wrote {path}")
    print(f"tuned {len(methods)} method(s) in {len(tables)} table(s); "
          f"{time.perf_counter() - progress.start:.1f} s", file=sys.stderr)
    return 0


# ---- leaderboard section --------------------------------------------------------

def leaderboard_section(out) -> str | None:
    """The budget, each method's search space and the tuned values (from the
    shipped presets), so a reader sees how every row was configured."""
    from unlearnbench.methods import get_method, list_methods

    folder = presets_dir(True)
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    tunable = [m for m in list_methods() if get_method(m).search_space]
    if not tunable:
        return None
    lines = [f"`unlearnbench tune METHOD|all`: every method gets the same budget — {DEFAULT_TRIALS} configurations "
             f"(its registered defaults, then seeded random draws from the search space declared next to its code), "
             f"each scored by SalUn's Avg. Gap on a validation protocol that never touches the test set (tuning seeds "
             f"{', '.join(map(str, DEFAULT_SEEDS))}; forget set and references from the training pool; half of the "
             f"validation split plays the test set, the method sees the other half).  The winners are presets in "
             f"`configs/tuned/` and are what the tables above ran (unless a row's hyperparameters say otherwise).", "",
             "| method | search space |", "|---|---|"]
    lines += [f"| {m} | {describe_space(get_method(m).search_space)} |" for m in tunable]
    lines.append("")
    rows = []
    for path in files:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        dataset_model = path.stem
        for label, methods in sorted(doc.get("tuning", {}).items()):
            for method, t in sorted(methods.items()):
                values = doc.get("hyper", {}).get(label, {}).get(method, {})
                rows.append(f"| {dataset_model} | {label} | {method} | "
                            f"{', '.join(f'{k}={v}' for k, v in values.items())} | {t['trials']} | "
                            f"{t['default']} | {t['best']} |")
    if rows:
        lines += ["| presets | scenario | method | tuned values | trials | val. gap (defaults) | val. gap (tuned) |",
                  "|---|---|---|---|---|---|---|"] + rows
    else:
        lines.append("No tuned presets yet: every method runs with its registered defaults.")
    return "\n".join(lines) + "\n"
