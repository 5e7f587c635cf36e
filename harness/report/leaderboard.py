"""Records → ``summary.csv`` and ``leaderboard.md``.

A short header (what was run, how to reproduce it, every metric's definition
and direction), an overall ranking (mean rank by Avg. Gap across tables,
with its bootstrap interval, and beside it the rankings by Gap-MUSO and the
parameter-space floor ratio), one table per dataset × model × scenario —
Original and Retrain first, then methods by Avg. Gap with their rank with ties (a paired
test over seeds, harness/metrics/statistics.py), every metric as mean ± the
half-width of its 95% interval over seeds, the best value of each metric in
bold — and links to the figures (harness/report/figures.py).
The output is a pure function of the records (no clock, no machine, no file
system), so the committed leaderboard can be checked against regeneration.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import definitions as M
from ..metrics.definitions import DEFINITIONS
from ..metrics.statistics import ALPHA, BOOTSTRAP_REPLICATES, TEST_NAME, t_interval
from ..protocol.records import RecordStore, write_text_atomic
from ..studies import all_figure_plans
from ..studies import sections as study_sections
from . import ranking as R
from .figure_plan import figure_link
from .format import format_cell
from .frame import records_frame
from .friedman import friedman_markdown
from .tables import FLAGS, METRICS, REFERENCE_ORDER, TABLE_KEYS, natural_key, regime_label, scenario_label, table_label

REGENERATE = "unlearnbench leaderboard"
RANK_METRIC = "avg_gap"       # the overall ranking: mean rank by Avg. Gap across tables
COMMUNITY = "community"       # submissions' folders, beside the leaderboard


def method_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The ok runs of methods (references left out), with their ``table`` label."""
    ok = df[(df["status"] == "ok") & ~df["method"].isin(list(REFERENCE_ORDER))]
    return ok.assign(table=[table_label(r) for _, r in ok.iterrows()])


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, the half-width of the 95% Student-t interval of the mean
    (``_ci95``) and seed count of every metric per table × method (ok runs),
    and the method rows' tied ranks (``rank_avg_gap`` ...; ranking.py)."""
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    keys = TABLE_KEYS + ["method", "variant"]
    grouped = ok.groupby(keys, dropna=False)
    summary = grouped.size().rename("n_seeds").to_frame()
    summary["community"] = grouped["community"].any()
    for m in METRICS:
        summary[f"{m}_mean"] = grouped[m].mean()
        summary[f"{m}_std"] = grouped[m].std(ddof=0)
        summary[f"{m}_ci95"] = grouped[m].agg(lambda x: t_interval(x)[1])
    for flag in FLAGS:   # how many of a row's seeds are a no-op / collapsed (NaN: never assessed)
        summary[f"{flag}_runs"] = grouped[flag].sum(min_count=1) if flag in ok else np.nan
    for k in ("n_retain", "n_forget", "n_test", "n_head_inputs"):
        if k in ok:
            summary[k] = grouped[k].first()
    for k in ("head_inputs", "proj_rows"):   # a method's regime diagnostics (MUSO: M and N of Π_r)
        summary[f"{k}_min"], summary[f"{k}_max"] = grouped[k].min(), grouped[k].max()
    for k in ("label_change_first", "label_change_mean", "perm_flip_first", "exact_share_first"):
        summary[f"{k}_mean"] = grouped[k].mean()
    summary = summary.reset_index()
    summary["table"] = [table_label(r) for _, r in summary.iterrows()]
    summary = summary.merge(R.tied_rank_frame(method_runs(df)), on=["table", "method", "variant"], how="left")
    summary["order"] = summary["method"].map(REFERENCE_ORDER).fillna(2)
    for k in ("model_args", "training"):   # widths in numeric order: hidden=128 before hidden=2048
        summary[f"{k}_order"] = summary[k].map(natural_key)
    summary = summary.sort_values(["dataset", "model", "model_args_order", "loss", "trainable", "training_order",
                                   "scenario_kind", "ratio", "forget_class", "order", "avg_gap_mean", "method",
                                   "variant"], na_position="last")
    return summary.drop(columns=["order", "table", "model_args_order", "training_order"]).reset_index(drop=True)


def method_label(row, link: bool = True) -> str:
    """``method (variant)``; a community submission links to its README."""
    name = row["method"] + (f" ({row['variant']})" if row["variant"] else "")
    if link and bool(row.get("community", False)):
        return f"[{name}]({COMMUNITY}/{row['method']}/README.md)"
    return name


def direction(metric: str) -> str | None:
    """How a metric is judged, from its DEFINITIONS entry's fields: "closer"
    (to Retrain's value; wins over its own direction, as for test accuracy),
    else "higher" or "lower"; None if it has neither."""
    definition = DEFINITIONS[metric]
    return "closer" if definition.closer_to_retrain else definition.better


def best_rows(rows: pd.DataFrame, metric: str) -> set:
    """Index labels of the method rows (references excluded) holding the best
    mean of ``metric``; empty when there is nothing to tell apart."""
    eligible = ~rows["method"].isin(list(REFERENCE_ORDER)) & (flag_label(rows) == "")
    candidates = rows.loc[eligible, f"{metric}_mean"].dropna()
    kind = direction(metric)
    if kind is None or len(candidates) < 2:
        return set()
    if kind == "closer":
        ref = rows.loc[rows["method"] == "retrain", f"{metric}_mean"].dropna()
        if ref.empty:
            return set()
        score = (candidates - ref.iloc[0]).abs()
    else:
        score = -candidates if kind == "higher" else candidates
    best = np.isclose(score, score.min(), rtol=1e-9, atol=1e-12)
    return set() if best.all() else set(score.index[best])


FLAG_NAMES = (("noop", "no-op"), ("collapsed", "collapsed"))


def flag_label(rows):
    """Per row: "no-op k/n" and/or "collapsed k/n" when any of its seeds is
    flagged, else "" (a Series for a frame, a str for one row)."""
    def one(r) -> str:
        parts = [f"{name} {int(r[f'{flag}_runs'])}/{int(r['n_seeds'])}" for flag, name in FLAG_NAMES
                 if f"{flag}_runs" in r and not pd.isna(r[f"{flag}_runs"]) and r[f"{flag}_runs"] > 0]
        return ", ".join(parts)
    if isinstance(rows, pd.DataFrame):
        return pd.Series([one(r) for _, r in rows.iterrows()], index=rows.index, dtype=object)
    return one(rows)


def table_ranks(summary: pd.DataFrame, metric: str = RANK_METRIC) -> pd.DataFrame:
    """Method rows (references excluded) with their ``table`` label and
    ``rank`` inside it by ``metric``: 1 + the number of rows the paired test
    over seeds finds significantly better (ties share a rank)."""
    rows = summary[~summary["method"].isin(list(REFERENCE_ORDER))].copy()
    rows = rows[rows[R.rank_column(metric)].notna()] if R.rank_column(metric) in rows else rows.iloc[:0]
    if rows.empty:
        return rows.assign(table=[], rank=[])
    rows["table"] = [table_label(r) for _, r in rows.iterrows()]
    rows["rank"] = rows[R.rank_column(metric)]
    return rows


def overall_ranking(summary: pd.DataFrame, metric: str = RANK_METRIC) -> pd.DataFrame:
    """One row per method (and variant): its mean rank by ``metric`` across
    the tables it ran in, the 95% bootstrap interval of that mean (``low``,
    ``high``), their number, and its rank in each (columns named by table
    label, in the order of the results section)."""
    return R.overall(table_ranks(summary, metric), metric)


def ranking_markdown(ranking: pd.DataFrame) -> str:
    tables = [c for c in ranking.columns
              if c not in ("overall", "method", "variant", "mean_rank", "low", "high", "tables", "community")]
    lines = ["| # | method | mean rank | 95% interval | tables | " + " | ".join(tables) + " |",
             "|" + "---|" * (5 + len(tables))]
    for _, r in ranking.iterrows():
        cells = ["—" if pd.isna(r[t]) else str(int(r[t])) for t in tables]
        lines.append(f"| {r['overall']} | {method_label(r)} | {r['mean_rank']:.2f} | {R.interval(r['low'], r['high'])} "
                     f"| {int(r['tables'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def side_by_side_markdown(summary: pd.DataFrame) -> str:
    """Mean rank (95% interval) and position by each measure in R.RANKED, in
    the order of the Avg. Gap ranking."""
    rankings = {m: overall_ranking(summary, m) for m in R.RANKED}
    order = rankings[RANK_METRIC]
    lines = ["| method | " + " | ".join(DEFINITIONS[m].column for m in R.RANKED) + " |",
             "|" + "---|" * (1 + len(R.RANKED))]
    for _, row in order.iterrows():
        cells = []
        for m in R.RANKED:
            hit = rankings[m][(rankings[m]["method"] == row["method"]) & (rankings[m]["variant"] == row["variant"])] \
                if not rankings[m].empty else rankings[m]
            cells.append("—" if hit.empty else f"#{hit['overall'].iloc[0]} · {hit['mean_rank'].iloc[0]:.2f} "
                         f"({R.interval(hit['low'].iloc[0], hit['high'].iloc[0])})")
        lines.append(f"| {method_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_markdown(rows: pd.DataFrame, statuses: pd.DataFrame) -> str:
    first = rows.iloc[0]
    metrics = M.metric_names(board=True, scenario_kind=first["scenario_kind"])
    header = ["method", "rank"] + [DEFINITIONS[m].column for m in metrics] + ["seeds"]
    lines = [f"### {table_label(first)}", ""]
    sizes = [f"|D_r| = {int(first['n_retain'])}", f"|D_f| = {int(first['n_forget'])}",
             f"|test| = {int(first['n_test'])}"] if "n_retain" in first and not pd.isna(first["n_retain"]) else []
    seeds = sorted(set(rows["n_seeds"].astype(int)))
    sizes.append(f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''} per row")
    mde = rows[f"mde_{RANK_METRIC}"].dropna() if f"mde_{RANK_METRIC}" in rows else rows.iloc[:0]
    if len(mde):
        sizes.append(f"detectable Avg. Gap difference (80% power): {mde.iloc[0]:.2f}")
    lines += [" · ".join(sizes), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    best = {m: best_rows(rows, m) for m in metrics}
    for i, r in rows.iterrows():
        name = method_label(r)
        if r["method"] in REFERENCE_ORDER:
            name = f"**{name}**"
        if regime_label(r):
            name += f" · {regime_label(r)}"
        if flag_label(r):
            name += f" · *{flag_label(r)}*"
        cells = [format_cell(r[f"{m}_mean"], r[f"{m}_ci95"], m) for m in metrics]
        cells = [f"**{c}**" if i in best[m] else c for c, m in zip(cells, metrics)]
        rank = r.get(R.rank_column(RANK_METRIC))
        rank = "ref" if r["method"] in REFERENCE_ORDER else "—" if pd.isna(rank) else str(int(rank))
        lines.append("| " + " | ".join([name, rank] + cells + [str(int(r["n_seeds"]))]) + " |")
    bad = statuses[statuses["status"] != "ok"]
    for (method, status), g in bad.groupby(["method", "status"]):
        seeds = ", ".join(str(s) for s in sorted(g["seed"]))
        message = g["message"].iloc[0] or ""
        lines.append(f"\n*{method}: {status} for seed(s) {seeds} — {message.splitlines()[0] if message else ''}*")
    return "\n".join(lines) + "\n"


def _listing(values) -> str:
    return ", ".join(str(v) for v in values)


def header_markdown(out: Path, df: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """What was run and how to reproduce it, derived from the records."""
    regenerate = REGENERATE + ("" if out.as_posix() == "results" else f" --out {out.as_posix()}")
    parts = [
        "# unlearnbench leaderboard", "",
        f"Generated from the run records in `{out.as_posix()}/runs/` by `{regenerate}` (which also redraws the "
        "figures); do not edit by hand.", "",
    ]
    if not df.empty and "status" in df:
        statuses = ", ".join(f"{n} {k}" for k, n in df["status"].value_counts().sort_index().items())
        scenarios = list(dict.fromkeys(scenario_label(r) for _, r in summary.iterrows())) if not summary.empty else []
        ran = set(df["method"])
        methods = [m for m in REFERENCE_ORDER if m in ran] + sorted(ran - set(REFERENCE_ORDER))
        parts += [
            f"**What was run.** {len(df)} runs ({statuses}): datasets {_listing(sorted(set(df['dataset'])))}; "
            f"models {_listing(sorted(set(df['model'])))}; scenarios {_listing(scenarios)}; "
            f"seeds {_listing(sorted(set(int(s) for s in df['seed'])))}; methods {_listing(methods)}.", "",
        ]
    parts += [
        "**Reproduce.** `make benchmark` (or `unlearnbench run`, the preset `configs/default.toml`) reruns the "
        "default tables from scratch; `unlearnbench run --config NAME` runs the preset `configs/NAME.toml`; "
        f"a community submission (a linked name) is rerun by the command in its `{COMMUNITY}/<name>/README.md`.", "",
        "**Reading the tables.** Every number is a mean over seeds ± the half-width of its 95% interval: "
        "mean ± t₀.₉₇₅,ₙ₋₁ · s/√n (Student t, s the standard deviation over the n seeds, ddof 1; a single seed "
        "gives the mean alone); `seeds` counts them.  Each seed fixes θ₀, the forget set and the data order; the "
        "Retrain reference starts from the same θ₀ as the Original, with identical hyperparameters.  Rows: "
        "**original** and **retrain** first, then methods by mean Avg. Gap (SalUn convention, lower is better).  "
        "`rank` (by Avg. Gap): the method with the table's lowest mean is the control; every other method is "
        f"compared with it by a {TEST_NAME} at α = {ALPHA}.  The methods not significantly worse than the control "
        "share rank 1; the rest are ranked by the same rule below them (their best mean the next control), and "
        "a rank is 1 + the number of methods in better groups.  The test is paired because a seed gives every "
        "method the same θ₀, forget set and references; comparing with a control needs k − 1 tests instead of "
        "k(k − 1)/2 (Demšar, JMLR 2006).  Each table states its *detectable Avg. Gap difference*: the smallest "
        "difference from the best that the strictest of those tests (one-sided, α/(k − 1)) finds with 80% "
        "power at the table's spread (the median standard deviation of the paired differences with the "
        "control); two methods closer than that may share a rank although they differ.  A **bold** value is the "
        "best mean of its column among the "
        "methods, by the metric's direction below: nearest to Retrain's value for the \"closer to Retrain\" "
        "metrics, else the highest or lowest.  A row marked *no-op k/n* left the Original unchanged in k of its "
        f"n seeds (relative parameter distance to the Original below {M.NOOP_REL_DIST:g}, or the Original's very "
        "predictions on D_f and the test set); *collapsed k/n*: retain accuracy below chance + "
        f"{M.COLLAPSE_SHARE:g} × (Retrain's retain accuracy − chance), halfway from chance to Retrain.  Flagged "
        "rows keep their numbers and ranks but never hold a bold cell.", "",
        "## Metrics", "", M.docs_table(),
    ]
    return parts


def render(out: Path, df: pd.DataFrame, summary: pd.DataFrame) -> str:
    parts = header_markdown(out, df, summary)
    if not summary.empty:
        ranking = overall_ranking(summary)
        if not ranking.empty:
            n_tables = len(summary.groupby(TABLE_KEYS, dropna=False))
            parts += ["## Overall ranking", "",
                      f"Rank of each method by Avg. Gap in each of the {n_tables} tables below (with ties: see "
                      "*Reading the tables*), their mean over the tables the method ran in, and the 95% interval "
                      f"of that mean from a seeded bootstrap over the tables ({BOOTSTRAP_REPLICATES:,} replicates, "
                      "percentiles; the seeds' noise is already in the tied ranks).  Methods whose intervals "
                      "overlap are not clearly ordered.", "", ranking_markdown(ranking),
                      "### By Avg. Gap, Gap-MUSO and the parameter-space floor ratio", "",
                      "The same ranking by three measures (lower is better for each): SalUn's Avg. Gap, MUSO's "
                      "(over TA, FA and MIA-ent) and ‖θ−θr‖/floor, the distance to Retrain in parameter space in "
                      "units of the retrain noise floor (only tables with extra retrains).  Each cell: position · "
                      "mean rank (95% interval).", "", side_by_side_markdown(summary)]
            parts += friedman_markdown(out, method_runs(df))   # report/friedman.py
        parts += ["## Results", ""]
        for _, rows in summary.groupby(TABLE_KEYS, dropna=False, sort=False):
            mask = np.ones(len(df), dtype=bool)
            first = rows.iloc[0]
            for k in TABLE_KEYS:
                v = first[k]
                mask &= df[k].isna().to_numpy() if pd.isna(v) else (df[k] == v).to_numpy()
            parts.append(table_markdown(rows, df[mask]))
        figures = all_figure_plans(summary)
        if figures:
            parts += ["## Figures", "", f"Drawn from the same records by `{REGENERATE}` (or `unlearnbench plot`).", ""]
            for fig in figures:
                parts += [f"### {fig.title}", "", fig.caption, "", f"![{fig.title}]({figure_link(out, fig.name)})", ""]
    else:
        parts += ["No successful runs yet.", ""]

    for title, text in study_sections(out):   # harness/studies/__init__.py
        parts += [f"## {title}", "", text.rstrip() + "\n"]
    return "\n".join(parts).rstrip() + "\n"


def default_leaderboard_path(out: Path) -> Path:
    """The repository's leaderboard.md for the default ``results`` folder,
    otherwise a leaderboard.md inside the results folder."""
    out = Path(out)
    return out.parent / "leaderboard.md" if out.name == "results" else out / "leaderboard.md"


def community_dir(out: Path) -> Path:
    """Where submissions' folders live: beside the default leaderboard."""
    return default_leaderboard_path(out).parent / COMMUNITY


def load_summary(out) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(records frame, summary) of every record under ``out``."""
    df = records_frame(RecordStore(Path(out)).all())
    summary = summarize(df) if not df.empty else pd.DataFrame()
    return df, summary


def write_leaderboard(out, path=None) -> tuple[Path, Path]:
    """Aggregate every record under ``out`` into summary.csv and leaderboard.md."""
    out = Path(out)
    df, summary = load_summary(out)
    csv_path = out / "summary.csv"
    write_text_atomic(csv_path, summary.to_csv(index=False, float_format="%.6g"))
    md_path = Path(path) if path else default_leaderboard_path(out)
    write_text_atomic(md_path, render(out, df if not df.empty else pd.DataFrame(columns=TABLE_KEYS), summary))
    return csv_path, md_path
