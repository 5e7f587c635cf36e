"""The leaderboard's tuning section: how every row's hyperparameters were
chosen, read from the shipped presets (configs/tuned/, written by
``unlearnbench tune``; see harness/tuning/tune.py and harness/tuning/search.py)."""
from __future__ import annotations

import math

from .search import startup_trials
from .presets import presets_dir
from ..tomlio import tomllib
from .tune import DEFAULT_SEEDS, DEFAULT_TRIALS, describe_space


def _score(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def leaderboard_section(out) -> str | None:
    """The protocol and budget, each method's search space and, per table and
    method, the trials, trial 0's score and source, the best score and the
    chosen values."""
    from unlearnbench.methods import get_method, list_methods

    methods = [m for m in list_methods() if get_method(m).reference is None]
    if not methods:
        return None
    lines = [f"`unlearnbench tune METHOD|all`: each method × table is one Optuna study with the same budget of "
             f"{DEFAULT_TRIALS} complete trials: trial 0 is the method's registered defaults, the next "
             f"{startup_trials(DEFAULT_TRIALS) - 1} are random draws from the search space declared next to its "
             "code, the rest come from a seeded TPE sampler (a method with nothing to tune runs trial 0 only).  "
             "Failed trials do not count.  Each trial is scored by SalUn's Avg. Gap on a validation protocol that "
             f"never touches the test set (tuning seeds {', '.join(map(str, DEFAULT_SEEDS))}; forget set and "
             "references from the training pool; half of the validation split plays the test set, the method "
             "sees the other half), mean over the seeds; lower is better.  The winners are presets in "
             "`configs/tuned/` and are what the tables above ran (unless a row's hyperparameters say otherwise).",
             "", "| method | search space |", "|---|---|"]
    lines += [f"| {m} | {describe_space(get_method(m).search_space) or 'nothing to tune'} |" for m in methods]
    lines.append("")
    folder = presets_dir(True)
    rows = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        for label, entries in sorted(doc.get("tuning", {}).items()):
            for method, t in sorted(entries.items()):
                values = doc.get("hyper", {}).get(label, {}).get(method, {})
                budget = t.get("budget")
                trials = f"{t['trials']}/{budget}" if budget and t["trials"] != budget else str(t["trials"])
                source = t.get("defaults_source", "not cited")
                rows.append(f"| {path.stem} | {label} | {method} | {trials} | {_score(t.get('default'))} | "
                            f"{source} | {_score(t.get('best'))} | "
                            f"{', '.join(f'{k}={v}' for k, v in values.items()) or 'nothing to tune'} |")
    if rows:
        lines += ["Validation Avg. Gap of trial 0 (the defaults, with where they come from) and of the best trial; "
                  "`trials` counts complete trials (of the budget, when fewer).", "",
                  "| presets | scenario | method | trials | trial 0 | trial 0's defaults from | best | chosen values |",
                  "|---|---|---|---|---|---|---|---|"] + rows
    else:
        lines.append("No tuned presets yet: every method runs with its registered defaults.")
    return "\n".join(lines) + "\n"
