"""The leaderboard's ranks, from per-seed values (harness/metrics/statistics.py):
ranks with ties inside each table, and each method's mean rank over the
tables with its bootstrap interval.  Frames in, frames out; the tables are
told apart by a ``table`` column (the leaderboard's table label), the rows by
``method`` and ``variant``; the reference rows are not passed in."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics.statistics import bootstrap_mean_rank, tied_ranks

# The measures ranked side by side (lower is better for each): SalUn's Avg.
# Gap, MUSO's, and the distance to Retrain in parameter space in units of the
# retrain noise floor.
RANKED = ("avg_gap", "avg_gap_muso", "param_dist_floor_ratio")
ROW = ["method", "variant"]


def rank_column(metric: str) -> str:
    return f"rank_{metric}"


def tied_rank_frame(runs: pd.DataFrame, metrics=RANKED) -> pd.DataFrame:
    """One row per table × method × variant of ``runs`` (ok runs: table,
    method, variant, seed and the metrics) with its tied rank by each metric
    (NaN where it has no value)."""
    out = []
    for table, group in runs.groupby("table", sort=False):
        rows = group[ROW].drop_duplicates().reset_index(drop=True)
        for metric in metrics:
            wide = group.pivot_table(index="seed", columns=ROW, values=metric, aggfunc="first", dropna=False)
            wide = wide.reindex(columns=pd.MultiIndex.from_frame(rows))
            rows[rank_column(metric)] = tied_ranks(wide.to_numpy(dtype=float))
        out.append(rows.assign(table=table))
    columns = ["table", *ROW, *map(rank_column, metrics)]
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
