"""The leaderboard's ranks, from per-seed values (harness/metrics/statistics.py):
ranks inside each table by comparison with the table's best (and the
difference the test could detect), each method's mean rank over the tables
with its bootstrap interval, and the Friedman test with Conover's post-hoc
over blocks (table × seed).  Frames in, frames out; the tables are
told apart by a ``table`` column (the leaderboard's table label), the rows by
``method`` and ``variant``; the reference rows are not passed in."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.statistics import bootstrap_mean_rank, control_ranks, detectable_difference, friedman

# The measures ranked side by side (lower is better for each): SalUn's Avg.
# Gap, MUSO's, and the distance to Retrain in parameter space in units of the
# retrain noise floor.
RANKED = ("avg_gap", "avg_gap_muso", "param_dist_floor_ratio")
ROW = ["method", "variant"]


def rank_column(metric: str) -> str:
    return f"rank_{metric}"


def tied_rank_frame(runs: pd.DataFrame, metrics=RANKED) -> pd.DataFrame:
    """One row per table × method × variant of ``runs`` (ok runs: table,
    method, variant, seed and the metrics) with its rank by each metric (by
    comparison with the table's best, recursively; NaN where it has no value)
    and, for the first metric, the table's detectable difference
    (``mde_<metric>``: 80% power at its observed spread)."""
    out = []
    for table, group in runs.groupby("table", sort=False):
        rows = group[ROW].drop_duplicates().reset_index(drop=True)
        for metric in metrics:
            wide = group.pivot_table(index="seed", columns=ROW, values=metric, aggfunc="first", dropna=False)
            wide = wide.reindex(columns=pd.MultiIndex.from_frame(rows))
            rows[rank_column(metric)] = control_ranks(wide.to_numpy(dtype=float))
            if metric == metrics[0]:
                rows[f"mde_{metric}"] = detectable_difference(wide.to_numpy(dtype=float))
        out.append(rows.assign(table=table))
    columns = ["table", *ROW, *map(rank_column, metrics), f"mde_{metrics[0]}"]
    return pd.concat(out, ignore_index=True)[columns] if out else pd.DataFrame(columns=columns)


def overall(ranks: pd.DataFrame, metric: str = "avg_gap") -> pd.DataFrame:
    """One row per method and variant: its tied rank in each table (columns
    named by table, in order of appearance), the mean over the tables it has
    a rank in, the 95% bootstrap interval of that mean (``low``, ``high``),
    the number of those tables and ``community``; sorted by mean rank, with
    the position ``overall`` (equal means share it)."""
    column = rank_column(metric)
    ranks = ranks[ranks[column].notna()]
    if ranks.empty:
        return pd.DataFrame()
    tables = list(dict.fromkeys(ranks["table"]))
    wide = ranks.pivot_table(index=ROW, columns="table", values=column, aggfunc="first")[tables]
    mean, low, high = bootstrap_mean_rank(wide.to_numpy(dtype=float).T)
    out = pd.DataFrame({"mean_rank": mean, "low": low, "high": high,
                        "tables": wide.notna().sum(axis=1).to_numpy()}, index=wide.index)
    if "community" in ranks:
        out["community"] = ranks.groupby(ROW)["community"].any()
    out = out.join(wide).reset_index()
    out = out.sort_values(["mean_rank", "tables", *ROW], ascending=[True, False, True, True])
    out.insert(0, "overall", out["mean_rank"].rank(method="min").astype(int))
    return out.reset_index(drop=True)


def friedman_over_blocks(runs: pd.DataFrame, metric: str = "avg_gap") -> dict | None:
    """The Friedman test and Conover's post-hoc over blocks (table × seed) of
    ``runs`` (ok method runs with ``table``), on the methods (method · variant
    labels) that ran in every table, and the blocks where all of them have a
    value; None with fewer than 3 methods or 2 blocks.  Adds "methods", "tables"."""
    runs = runs[runs[metric].notna()]
    if runs.empty:
        return None
    labels = runs["method"] + np.where(runs["variant"].fillna("") != "", " · " + runs["variant"].fillna(""), "")
    runs = runs.assign(label=labels)
    tables = list(dict.fromkeys(runs["table"]))
    common = set.intersection(*(set(g["label"]) for _, g in runs.groupby("table")))
    names = sorted(common)
    wide = runs[runs["label"].isin(common)].pivot_table(index=["table", "seed"], columns="label", values=metric,
                                                        aggfunc="first")[names].dropna()
    if len(names) < 3 or len(wide) < 2:
        return None
    result = friedman(wide.to_numpy(dtype=float), names)
    result.update(methods=names, tables=tables)
    return result


def tie_summary(ranks: pd.DataFrame, metric: str = "avg_gap") -> dict:
    """Per table: (rows, distinct ranks, rows sharing their rank with another)."""
    out = {}
    for table, group in ranks.groupby("table", sort=False):
        r = group[rank_column(metric)].dropna()
        counts = r.value_counts()
        out[table] = (len(r), len(counts), int(counts[counts > 1].sum()))
    return out


def interval(low: float, high: float) -> str:
    return "—" if np.isnan(low) else f"{low:.1f}–{high:.1f}"
