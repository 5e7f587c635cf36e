"""The leaderboard's tuning section: how every row's hyperparameters were
chosen, read from the shipped presets (configs/tuned/, written by
``unlearnbench tune``; see harness/tuning/tune.py and harness/tuning/search.py)."""
from __future__ import annotations

import math
from pathlib import Path

from ..tomlio import tomllib
from .presets import presets_dir
from .search import startup_trials
from .tune import DEFAULT_SEEDS, DEFAULT_TRIALS, describe_space


def _score(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if math.isfinite(value) else str(value)


FIGURE = "tuning_best_so_far.png"     # in the results folder's figures/


def preset_entries():
    """(presets path, scenario, method, tuning record, chosen values) of every shipped preset."""
    folder = presets_dir(True)
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        for label, entries in sorted(doc.get("tuning", {}).items()):
            for method, t in sorted(entries.items()):
                yield path, label, method, t, doc.get("hyper", {}).get(label, {}).get(method, {})


def figure_path(out) -> Path:
    from ..report.figure_plan import FIGURES_DIR

    return Path(out) / FIGURES_DIR / FIGURE


def write_figure(out) -> Path | None:
    """Best-so-far validation score against trials, per presets file × scenario
    (one line per method), into ``<out>/figures/tuning_best_so_far.png``."""
    import io

    import matplotlib
    import seaborn as sns

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unlearnbench.methods import write_atomic

    panels: dict = {}
    for path, label, method, t, _ in preset_entries():
        scores = [h.get("avg_gap") for h in t.get("history", [])]
        if len(scores) < 2:
            continue
        best, curve = math.inf, []
        for v in scores:
            best = min(best, v if isinstance(v, (int, float)) else math.inf)
            curve.append(best)
        panels.setdefault((path.stem, label), []).append((method, curve, t.get("budget")))
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    methods = sorted({m for entries in panels.values() for m, _, _ in entries})
    colours = dict(zip(methods, sns.color_palette("tab20", len(methods))))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.9 * rows + 0.9), squeeze=False)
        for ax, ((stem, label), entries) in zip(axes.flat, sorted(panels.items())):
            for method, curve, budget in entries:
                finite = [(i + 1, v) for i, v in enumerate(curve) if math.isfinite(v) and v > 0]
                if finite:
                    ax.plot(*zip(*finite), color=colours[method], label=method, lw=1.6)
            budget = max((b or 0) for _, _, b in entries)
            if budget:
                ax.axvline(budget / 2, color="0.5", ls=":", lw=1)
            ax.set_yscale("log")
            ax.set_title(f"{stem}\n{label}", fontsize=10)
            ax.set_xlabel("complete trials")
            ax.set_ylabel("best validation Avg. Gap")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        handles = [plt.Line2D([], [], color=colours[m], lw=2) for m in methods]
        fig.legend(handles, methods, loc="lower center", ncol=min(6, len(methods)), frameon=False, fontsize=9)
        fig.tight_layout(rect=(0, 0.9 / (3.9 * rows + 0.9) + 0.04, 1, 1))
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
    target = figure_path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, png.getbuffer())
    return target


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
    rows, noops, unconverged = [], [], []
    for path, label, method, t, values in preset_entries():
        budget = t.get("budget")
        trials = f"{t['trials']}/{budget}" if budget and t["trials"] < budget else str(t["trials"])
        converged = t.get("converged")
        conv = "—" if converged is None else ("yes" if converged else "**not converged**")
        if converged is False:
            unconverged.append(f"{method} ({path.stem} {label})")
        if t.get("best_noop"):
            noops.append(f"{method} ({path.stem} {label})")
        rows.append(f"| {path.stem} | {label} | {method} | {trials} | {_score(t.get('default'))} | "
                    f"{t.get('defaults_source', 'not cited')} | {t.get('best_trial', '—')} | {_score(t.get('best'))} | "
                    f"{_score(t.get('best_at_half'))} | {_score(t.get('noise'))} | {conv}"
                    f"{' (no-op)' if t.get('best_noop') else ''} | "
                    f"{', '.join(f'{k}={v}' for k, v in values.items()) or 'nothing to tune'} |")
    if rows:
        lines += ["Validation Avg. Gap of trial 0 (the defaults, with where they come from) and of the best trial "
                  "(`best trial` is its number: which trial found it).  A study has **converged** when its best at "
                  "the full budget is within the validation noise of its best after the first half of its trials "
                  "(`at half`); the noise is the standard error of the best trial's mean over the tuning seeds.  "
                  "A study that has not converged is extended by half the budget at a time, up to twice the "
                  "budget, and is marked here if it still has not.  `trials` counts complete trials (of the "
                  "budget, when fewer); `(no-op)` marks a study whose best trial left the Original unchanged on "
                  "every tuning seed.", "",
                  "| presets | scenario | method | trials | trial 0 | trial 0's defaults from | best trial | best | "
                  "at half | noise | converged | chosen values |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows + [""]
        lines.append("Studies whose best trial is a no-op: " + (", ".join(noops) if noops else "none") + ".  "
                     "Studies not converged: " + (", ".join(unconverged) if unconverged else "none") + ".")
        if figure_path(out).is_file():
            from ..report.figure_plan import figure_link

            lines += ["", f"![best-so-far validation Avg. Gap against trials]({figure_link(Path(out), FIGURE)})", "",
                      "Best validation Avg. Gap so far against the number of complete trials, one panel per "
                      "presets file and scenario, one line per method (log scale; the dotted line is half the "
                      "budget)."]
    else:
        lines.append("No tuned presets yet: every method runs with its registered defaults.")
    return "\n".join(lines) + "\n"
