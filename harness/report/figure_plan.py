"""Which figures a set of records gives (harness/report/figures.py draws them; the
leaderboard links them): pure, no matplotlib, no file system.  Per table:
the trade-off, gap-vs-time and distance figures; per setting with two forget
ratios at least: every metric against the ratio; per width sweep (MUSO's
regime study): distance and Avg. Gap against M/N."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..metrics.definitions import DEFINITIONS
from .tables import METRICS, SETTING_KEYS, TABLE_KEYS, setting_label

FIGURES_DIR = "figures"       # inside the results folder
CLASS_ONLY = tuple(m for m, d in DEFINITIONS.items() if d.class_only)


@dataclass
class FigurePlan:
    name: str                 # file name inside <out>/figures/
    title: str
    caption: str
    panels: int
    kind: str
    select: dict = field(default_factory=dict)   # the setting of a metric-vs-ratio figure, dataset/model of a sweep's


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()


def figure_link(out: Path, name: str) -> str:
    """A figure's path relative to the leaderboard at its default place (see
    ``leaderboard.default_leaderboard_path``), so links do not depend on the file system."""
    out = Path(out)
    return (Path("results") if out.name == "results" else Path(".")).joinpath(FIGURES_DIR, name).as_posix()


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
    for key, rows in random.groupby(SETTING_KEYS, sort=True):
        if rows["ratio"].nunique() < 2:   # a figure against the forget ratio needs two ratios at least
            continue
        select = dict(zip(SETTING_KEYS, key))
        label = setting_label(select)
        default = label == f"{select['dataset']} · {select['model']}"
        plans.append(FigurePlan(
            f"metrics_vs_ratio_{slug(select['dataset'])}_{slug(select['model'])}.png" if default
            else f"metrics_vs_ratio_{slug(label)}.png", f"Metrics vs forget ratio ({label})",
            f"Every metric of the random-forgetting tables of {label} against the share of the "
            "training set forgotten (mean ± std over seeds); Retrain dashed, Original dotted.",
            len(ratio_metrics(rows)), "ratio", select))
    return plans   # the studies plan their own figures (harness/studies/__init__.py)

