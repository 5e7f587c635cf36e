"""Which figures a set of records gives (harness/figures.py draws them; the
leaderboard links them): pure, no matplotlib, no file system."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .columns import METRICS, TABLE_KEYS

CLASS_ONLY = ("test_acc_forget_class", "test_acc_other_classes")


@dataclass
class FigurePlan:
    name: str                 # file name inside <out>/figures/
    title: str
    caption: str
    panels: int
    kind: str
    select: dict = field(default_factory=dict)   # dataset/model of a metric-vs-ratio figure


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()


def ratio_metrics(rows: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m not in CLASS_ONLY and f"{m}_mean" in rows and rows[f"{m}_mean"].notna().any()]


def plan_figures(summary: pd.DataFrame) -> list[FigurePlan]:
    """The figures the summary gives (pure: no matplotlib, no file system)."""
    if summary.empty:
        return []
    n_tables = len(summary.groupby(TABLE_KEYS, dropna=False))
    plans = [
        FigurePlan("tradeoff_forget_vs_test.png", "Forget vs test accuracy",
                   "Each method's forget accuracy against its test accuracy, per table (mean ± std over seeds). "
                   "The black star is Retrain, the target; the grey cross is the Original, the starting point.",
                   n_tables, "tradeoff"),
        FigurePlan("gap_vs_time.png", "Avg. Gap vs unlearning time",
                   "Avg. Gap to Retrain (lower is better) against the wall time of the unlearning call, log scale; "
                   "the black star is Retrain at its training time, the dashed line the Original's gap "
                   "(no unlearning, time 0).", n_tables, "gap_time"),
        FigurePlan("param_dist.png", "Distance to Retrain in parameter space",
                   "‖θ − θ_retrain‖₂ over all parameters, mean ± std over seeds (Retrain itself is at 0); "
                   "the Original's bar gives the scale.", n_tables, "param_dist"),
    ]
    random = summary[summary["scenario_kind"] == "random"]
    for (dataset, model), rows in random.groupby(["dataset", "model"], sort=True):
        plans.append(FigurePlan(
            f"metrics_vs_ratio_{slug(dataset)}_{slug(model)}.png", f"Metrics vs forget ratio ({dataset} · {model})",
            f"Every metric of the random-forgetting tables of {dataset} · {model} against the share of the "
            "training set forgotten (mean ± std over seeds); Retrain dashed, Original dotted.",
            len(ratio_metrics(rows)), "ratio", {"dataset": dataset, "model": model}))
    return plans
