"""Figures drawn from the run records with seaborn, to ``<out>/figures/*.png``.

- ``tradeoff_forget_vs_test.png``: forget vs test accuracy, one panel per table, Retrain marked;
- ``gap_vs_time.png``: Avg. Gap vs unlearning time (log scale), one panel per table;
- ``param_dist.png``: distance to the Retrain model in parameter space, with error bars;
- ``metrics_vs_ratio_<dataset>_<model>.png``: every metric against the forget ratio (a setting
  with two ratios at least; another model argument or training: ``metrics_vs_ratio_<setting>.png``);
- the studies' own figures (harness/studies/__init__.py), e.g. the regime study's
  ``regime_distance_*.png`` and ``regime_gap_*.png``, drawn with the helpers here
  (:func:`panels`, :func:`log_axis`, :func:`axis_label`).

Points are the tables' means over seeds and error bars their standard
deviations (ddof 0), the numbers of leaderboard.md.  :func:`plan_figures` says
which figures a set of records gives (the leaderboard links them) without
importing matplotlib; :func:`write_figures` draws them.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unlearnbench.methods import write_atomic

from ..metrics.definitions import DEFINITIONS
from ..studies import all_figure_plans, study_drawers, study_figure_prefixes
from .figure_plan import FIGURES_DIR, FigurePlan, ratio_metrics
from .friedman import CD_FIGURE
from .leaderboard import load_summary, method_label, method_runs, table_label
from .plotting import axis_label, log_axis, panels
from .ranking import friedman_over_blocks
from .tables import REFERENCE_ORDER, TABLE_KEYS

REFERENCE_STYLE = {"original": dict(color="0.55", marker="X"), "retrain": dict(color="black", marker="*")}
PANEL_COLUMNS = 3          # per-table figures
METRIC_COLUMNS = 4         # the metric-vs-ratio figure
RC = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 10.5, "xtick.labelsize": 9.5,
      "ytick.labelsize": 9.5, "legend.fontsize": 10, "legend.title_fontsize": 10}
DPI = 110


# ---- drawing ------------------------------------------------------------------
def _labelled(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary.copy()
    rows["label"] = [method_label(r, link=False) for _, r in rows.iterrows()]
    return rows


METHOD_MARKERS = ("o", "s", "D", "^", "v", "P", "h", "<", ">", "p")


@dataclass
class Styles:
    """One colour and one marker per method label, the same in every figure;
    references in grey (Original, a cross) and black (Retrain, a star)."""

    colour: dict
    marker: dict


def _styles(rows: pd.DataFrame) -> Styles:
    import seaborn as sns

    methods = sorted(set(rows.loc[~rows["method"].isin(list(REFERENCE_ORDER)), "label"]))
    # Qualitative colours without their greys (grey is the Original's); markers tell apart what colours cannot.
    base = [c for i, c in enumerate(sns.color_palette("tab10")) if i != 7]
    if len(methods) > len(base):
        base = [c for i, c in enumerate(sns.color_palette("tab20")) if i not in (14, 15)]
    if len(methods) > len(base):
        base = sns.color_palette("husl", len(methods))
    colour = {m: base[i] for i, m in enumerate(methods)}
    marker = {m: METHOD_MARKERS[i % len(METHOD_MARKERS)] for i, m in enumerate(methods)}
    for ref, style in REFERENCE_STYLE.items():   # a reference row's label is its name
        colour[ref], marker[ref] = style["color"], style["marker"]
    return Styles(colour, marker)


def _legend(fig, style: Styles, labels: list[str]) -> None:
    """One legend for the whole figure, outside the panels (never over data)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=style.colour[label], marker=style.marker[label], linestyle="",
                      markersize=13 if label == "retrain" else 8, label=label) for label in labels]
    if fig.get_figwidth() < 6:   # a single narrow panel: the legend goes beside it
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        return
    per_row = max(1, int(fig.get_figwidth() / 1.7))   # as many entries per row as the width holds
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), per_row), frameon=False)


def _tables(summary: pd.DataFrame):
    for _, rows in summary.groupby(TABLE_KEYS, dropna=False, sort=False):
        # a panel is ~3.4 in wide: the subset goes on a second line so neighbouring titles never overlap
        yield table_label(rows.iloc[0], subset_sep="\n"), rows


def _scatter(ax, rows: pd.DataFrame, x: str, y: str, style: Styles) -> None:
    """Means as markers (seaborn), standard deviations as error bars, Retrain a large star."""
    import seaborn as sns

    for _, r in rows.iterrows():
        ax.errorbar(r[f"{x}_mean"], r[f"{y}_mean"], xerr=r[f"{x}_std"], yerr=r[f"{y}_std"], fmt="none",
                    ecolor=style.colour[r["label"]], capsize=3, elinewidth=1.1, zorder=1)
    labels = list(rows["label"])
    sns.scatterplot(data=rows, x=f"{x}_mean", y=f"{y}_mean", hue="label", style="label", size="label",
                    palette={m: style.colour[m] for m in labels}, markers={m: style.marker[m] for m in labels},
                    sizes={m: 260 if m == "retrain" else 70 for m in labels}, ax=ax, legend=False, zorder=2)


def _draw_tradeoff(rows: pd.DataFrame, style: Styles, legend: list[str]):
    tables = list(_tables(rows))
    fig, axes = panels(len(tables), PANEL_COLUMNS, 3.4, 3.1)
    for ax, (title, table) in zip(axes, tables):
        _scatter(ax, table, "forget_acc", "test_acc", style)
        ax.set(title=title, xlabel="forget accuracy, FA (%)", ylabel="test accuracy, TA (%)")
        ax.margins(0.12)
    return fig, legend


def _draw_gap_time(rows: pd.DataFrame, style: Styles, legend: list[str]):
    tables = list(_tables(rows))
    fig, axes = panels(len(tables), PANEL_COLUMNS, 3.4, 3.1)
    for ax, (title, table) in zip(axes, tables):
        timed = table[(table["time_s_mean"] > 0) & table["avg_gap_mean"].notna()]
        _scatter(ax, timed, "time_s", "avg_gap", style)
        original = table[table["method"] == "original"]
        if not original.empty:
            ax.axhline(original["avg_gap_mean"].iloc[0], color=style.colour["original"], linestyle="--", linewidth=1.2)
        log_axis(ax, "x", timed["time_s_mean"])
        ax.set(title=title, xlabel="unlearning time (s, log scale)", ylabel="Avg. Gap to Retrain (points)")
        ax.margins(x=0.15, y=0.1)
    return fig, legend


def _draw_param_dist(rows: pd.DataFrame, style: Styles, legend: list[str]):
    import seaborn as sns

    tables = list(_tables(rows))
    fig, axes = panels(len(tables), PANEL_COLUMNS, 3.4, 0.42 * rows["label"].nunique() + 1.2)
    for ax, (title, table) in zip(axes, tables):
        table = table[table["method"] != "retrain"].sort_values("param_dist_mean")
        sns.barplot(data=table, y="label", x="param_dist_mean", hue="label", ax=ax, legend=False, orient="h",
                    palette={m: style.colour[m] for m in table["label"]})
        ax.errorbar(table["param_dist_mean"], np.arange(len(table)), xerr=table["param_dist_std"], fmt="none",
                    ecolor="black", capsize=3, elinewidth=1.1)
        ax.set(title=title, xlabel=f"L2 distance to Retrain, {DEFINITIONS['param_dist'].column}", ylabel="")
    return fig, []   # the methods are named on the axis


def _draw_ratio(rows: pd.DataFrame, style: Styles, legend: list[str], **setting):
    mask = rows["scenario_kind"] == "random"
    for key, value in setting.items():
        mask &= rows[key] == value
    rows = rows[mask].copy()
    rows["ratio_pct"] = rows["ratio"] * 100
    metrics = ratio_metrics(rows)
    fig, axes = panels(len(metrics), METRIC_COLUMNS, 2.6, 2.3)
    ratios = sorted(rows["ratio_pct"].unique())
    for ax, metric in zip(axes, metrics):
        for label, g in rows.sort_values("ratio_pct").groupby("label", sort=True):
            ax.errorbar(g["ratio_pct"], g[f"{metric}_mean"], yerr=g[f"{metric}_std"], color=style.colour[label],
                        linestyle={"original": ":", "retrain": "--"}.get(label, "-"), marker=style.marker[label],
                        markersize=9 if label == "retrain" else 5, capsize=2, linewidth=1.4)
        ax.set_xticks(ratios, [f"{r:g}%" for r in ratios])
        ax.set_ylabel(axis_label(metric))
        if metric == "time_s":
            log_axis(ax, "y", rows["time_s_mean"])
        ax.margins(x=0.12)
    fig.supxlabel("forget ratio (% of the training set, random forgetting)")
    return fig, [label for label in legend if label in set(rows["label"])]


DRAW = {"tradeoff": _draw_tradeoff, "gap_time": _draw_gap_time, "param_dist": _draw_param_dist, "ratio": _draw_ratio}


def _draw_critical_difference(df: pd.DataFrame):
    """The critical-difference diagram of the Friedman / Conover test over
    blocks (scikit-posthocs), or None when the records give no test."""
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    result = friedman_over_blocks(method_runs(df))
    if result is None:
        return None
    import re

    fig, ax = plt.subplots(figsize=(9, 0.35 * len(result["methods"]) + 1.6))
    # Integer labels while drawing: scikit-posthocs stacks its crossbars from sets of labels, and the order
    # of a set of strings changes with Python's hash seed (a different figure on every run); ints hash alike.
    names = list(result["mean_ranks"].index)
    ranks = pd.Series(result["mean_ranks"].to_numpy(), index=range(len(names)))
    posthoc = pd.DataFrame(result["posthoc"].to_numpy(), index=ranks.index, columns=ranks.index)
    sp.critical_difference_diagram(ranks, posthoc, ax=ax, alpha=0.05, label_fmt_left="@{label}@ ({rank:.2g})",
                                   label_fmt_right="({rank:.2g}) @{label}@")
    for text in ax.texts:
        text.set_text(re.sub(r"@(\d+)@", lambda m: names[int(m.group(1))], text.get_text()))
    ax.set_title(f"Mean rank by Avg. Gap over {result['blocks']} blocks (table × seed); "
                 "bars join methods Conover–Holm cannot separate", fontsize=10)
    fig.tight_layout()
    return fig


def write_figures(out, figures_dir=None) -> list[tuple[Path, FigurePlan, int]]:
    """Draw every planned figure of the records under ``out`` into
    ``figures_dir`` (default ``<out>/figures``); returns (path, plan, panels
    drawn).  Stale figures of ours that the records no longer give are removed."""
    import matplotlib
    import seaborn as sns

    out = Path(out)
    folder = Path(figures_dir) if figures_dir else out / FIGURES_DIR
    df, summary = load_summary(out)
    plans = all_figure_plans(summary)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if plans:
        rows = _labelled(summary)
        style = _styles(rows)
        legend_order = [r for r in REFERENCE_ORDER if r in set(rows["method"])] + \
            sorted(set(rows.loc[~rows["method"].isin(list(REFERENCE_ORDER)), "label"]))
        draw = {**DRAW, **study_drawers()}
        with sns.axes_style("whitegrid"), matplotlib.rc_context(RC):
            for plan in plans:
                fig, labels = draw[plan.kind](rows, style, legend_order, **plan.select)
                if labels:
                    _legend(fig, style, labels)
                path = folder / plan.name
                png = io.BytesIO()
                fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
                write_atomic(path, png.getbuffer())
                written.append((path, plan, len(fig.axes)))
    cd = _draw_critical_difference(df) if not summary.empty else None
    if cd is not None:
        path = folder / CD_FIGURE
        png = io.BytesIO()
        cd.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        write_atomic(path, png.getbuffer())
        written.append((path, None, 1))
    keep = {plan.name for plan in plans} | ({CD_FIGURE} if cd is not None else set())
    for stale in folder.glob("*.png"):
        ours = ("tradeoff_", "gap_vs_time", "param_dist", "metrics_vs_ratio_", "critical_difference") \
            + study_figure_prefixes()
        if stale.name not in keep and stale.name.startswith(ours):
            stale.unlink()
    return written
