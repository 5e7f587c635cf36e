"""The leaderboard's "Per-example evidence" section and its figure (per-example
attack accuracy against Avg. Gap), from the records of `unlearnbench
per-example` (harness/studies/per_example.py) and the benchmark's runs."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..metrics.definitions import DEFINITIONS
from ..protocol.records import RecordStore
from ..studies import per_example as S
from .format import format_value

FIGURE = "per_example_attack_vs_gap.png"
COLUMNS = ("ulira_acc", "ulira_auc", "ulira_tpr_1", "ulira_tpr_01", "ulira_exposed", "ulira_acc_retain",
           "ulira_tpr_1_retain", "relearn_steps", "probe_acc", "klom")
BOUNDS = ("original", "retrain")


def _label(sc: dict) -> str:
    return f"random {sc['ratio'] * 100:g}%" if sc["kind"] == "random" else f"{sc['kind']} {sc.get('forget_class')}"


def _groups(out) -> dict:
    """(dataset, model, scenario label, seed, shadows) -> {method: record}, ok records only."""
    groups: dict = {}
    for r in S.store(out).all():
        if r.get("metric") != "per_example" or r.get("status") != "ok" or r["config"].get("model_args"):
            continue
        c = r["config"]
        group = (c["dataset"], c["model"], _label(c["scenario"]), c["seed"], r["shadows"])
        groups.setdefault(group, {})[c["method"]] = r
    return groups


def _avg_gaps(out) -> dict:
    """(dataset, model, scenario label, method, hyper) -> the benchmark's mean Avg. Gap over its seeds."""
    gaps: dict = {}
    for r in RecordStore(Path(out)).all():
        c = r.get("config", {})
        if r.get("status") != "ok" or c.get("model_args") or "avg_gap" not in r.get("metrics", {}):
            continue
        key = (c["dataset"], c["model"], _label(c["scenario"]), c["method"], json.dumps(c["hyper"], sort_keys=True))
        gaps.setdefault(key, []).append(r["metrics"]["avg_gap"])
    return {k: float(np.mean(v)) for k, v in gaps.items()}


def _cell(metric: str, value) -> str:
    if value is None:
        return "—"
    if metric == "relearn_steps" and not np.isfinite(value):
        return f"> {S.RELEARN_MAX_STEPS}"
    return format_value(value, metric)


def note() -> str:
    return (
        "`unlearnbench per-example` (harness/studies/per_example.py; definitions: the `ulira_*`, `relearn_steps`, "
        "`probe_acc` and `klom` rows above).  Per forget set, S shadow models in complementary pairs: each "
        "*candidate* (random forgetting: twice the forget set's size, drawn from the pool; class forgetting: the "
        "whole class) and each *retain canary* is a member of exactly half of them; a shadow forgets the "
        "candidates it was trained on and keeps the canaries.  Each shadow has its own θ₀, Original and Retrain "
        "(cached reference models shared by every method); the method runs on every shadow with the benchmark's "
        "tuned hyperparameters.  U-LiRA (Hayes et al., arXiv 2403.01218): each shadow in turn is the target, and "
        "for each example a Gaussian likelihood-ratio test on its margin between the other shadows that forgot it "
        "and those that never saw it.  **original** (nothing forgotten) and **retrain** (exact) are the bounds; "
        "a row near Retrain's is indistinguishable from exact unlearning by this attack.  `U-LiRA-r`, `TPR-r`: the "
        "same attack on the retain canaries (kept vs never seen), which unlearning may expose.  `exposed`: "
        f"examples on which the attack is right for ≥ {100 * S.PE.EXPOSED_ACCURACY:.0f}% of the targets.  "
        f"`relearn`: median steps of gradient descent at the training lr on {100 * S.RELEARN_SHARE:.0f}% of D_f "
        f"until the accuracy on the rest of D_f is within {S.RELEARN_MARGIN:g} points of the shadow Original's "
        f"(> {S.RELEARN_MAX_STEPS}: not within the cap).  `probe`: the first {S.PROBE_SHADOWS} shadows.  KLoM's "
        "oracle is the Retrains of the shadows that never saw the example (S/2 models against S/2), so the "
        "Retrain row is the estimator's own floor at that size.  `Gap`: the benchmark table's Avg. Gap of the "
        "same method and hyperparameters (mean over its seeds), for comparison.")


def leaderboard_section(out) -> str | None:
    groups = _groups(out)
    if not groups:
        return None
    gaps = _avg_gaps(out)
    header = ["method"] + [DEFINITIONS[m].column for m in COLUMNS] + ["Gap", "time (s)"]
    lines = [note(), "", f"![per-example attack accuracy against Avg. Gap](results/figures/{FIGURE})", ""]
    for (dataset, model, label, seed, shadows), rows in sorted(groups.items()):
        retrain = rows.get("retrain", {}).get("metrics", {}).get("ulira_acc", 50.0)
        methods = sorted((m for m in rows if m not in BOUNDS),
                         key=lambda m: (abs(rows[m]["metrics"]["ulira_acc"] - retrain), m))
        lines += [f"### {dataset} · {model} · {label} · seed {seed} · S = {shadows}", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method in [m for m in BOUNDS if m in rows] + methods:
            r = rows[method]
            gap = gaps.get((dataset, model, label, method, json.dumps(r["config"]["hyper"], sort_keys=True)))
            t = r["timing"]
            name = f"**{method}**" if method in BOUNDS else method
            lines.append("| " + " | ".join([name] + [_cell(m, r["metrics"].get(m)) for m in COLUMNS] + [
                "—" if gap is None else f"{gap:.2f}",
                f"{t['unlearn_s'] + t['relearn_s'] + t['probe_s'] + t['score_s']:.1f}"]) + " |")
        any_record = next(iter(rows.values()))
        bank = any_record["timing"]["shadow_bank_train_s"]
        total = bank + sum(r["timing"][k] for r in rows.values() for k in ("unlearn_s", "relearn_s", "probe_s",
                                                                          "score_s"))
        env = any_record["env"]
        lines += ["", f"Cost: the {2 * shadows} shadow Originals and Retrains took {bank:.0f} s to train; the "
                  f"table {total:.0f} s of compute in all ({env.get('processor') or 'CPU'}, "
                  f"{env.get('torch_threads')} torch threads, device {env.get('device')}).", ""]
    return "\n".join(lines)


def write_figure(out) -> Path | None:
    """Per-example attack accuracy (U-LiRA) against the benchmark's Avg. Gap, one panel per table."""
    groups, gaps = _groups(out), _avg_gaps(out)
    if not groups:
        return None
    import matplotlib
    import seaborn as sns

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unlearnbench.methods import write_atomic

    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(groups), figsize=(5.6 * len(groups), 4.6), squeeze=False)
        for ax, ((dataset, model, label, seed, shadows), rows) in zip(axes.flat, sorted(groups.items())):
            for i, (method, r) in enumerate(sorted(rows.items())):
                gap = gaps.get((dataset, model, label, method, json.dumps(r["config"]["hyper"], sort_keys=True)))
                if gap is None:
                    continue
                y = r["metrics"]["ulira_acc"]
                bound = method in BOUNDS
                ax.scatter([gap], [y], s=46 if bound else 30, marker="s" if bound else "o",
                           color="black" if bound else sns.color_palette("tab20", 20)[i % 20], zorder=3)
                ax.annotate(method, (gap, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
            ax.axhline(50, color="0.5", ls=":", lw=1)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_title(f"{dataset} · {model} · {label} · S = {shadows}", fontsize=10)
            ax.set_xlabel("Avg. Gap (benchmark table, points)")
            ax.set_ylabel("U-LiRA balanced accuracy, %")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
    target = Path(out) / "figures" / FIGURE
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, png.getbuffer())
    return target
