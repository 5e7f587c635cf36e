"""Does a rerun reproduce the committed tables?  A comparison of two results
folders' summaries, cell by cell (a cell: one table × method row, its mean
Avg. Gap), with the ranks and the environment that decides bit-identity."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from .ranking import rank_column

METRIC = "avg_gap"
TIMING = ("time_s", "rte")       # wall-clock measurements: never bit-reproducible, left out of the bit-identity count
KEY = ["table", "method", "variant"]


@dataclass
class TableVerdict:
    table: str
    cells: int = 0
    within: int = 0
    outside: list = field(default_factory=list)     # (method, committed mean ± ci, reproduced mean)
    moved: list = field(default_factory=list)       # (method, committed rank, reproduced rank)
    inverted: list = field(default_factory=list)    # (better before, worse before): order reversed
    missing: list = field(default_factory=list)     # rows of the committed table the rerun lacks

    def line(self) -> str:
        ranks = ("ranks inverted: " + "; ".join(f"{a} above {b} before, below it now" for a, b in self.inverted)
                 if self.inverted else "ranks moved within ties: " + ", ".join(
                     f"{m} {a:g}→{b:g}" for m, a, b in self.moved) if self.moved else "ranks equal")
        text = f"{self.table}: {self.within}/{self.cells} cells within their 95% intervals; {ranks}"
        if self.missing:
            text += f"; not rerun: {', '.join(self.missing)}"
        return text


def _label(row) -> str:
    return row["method"] + (f" · {row['variant']}" if isinstance(row["variant"], str) and row["variant"] else "")


def compare(committed: pd.DataFrame, rerun: pd.DataFrame, metric: str = METRIC) -> list[TableVerdict]:
    """Per table of ``rerun``: is each row's mean ``metric`` inside the
    committed row's 95% interval (mean ± half-width; a single seed: equal to
    1e-9), and do the ranks agree?  Two rows whose committed ranks differ and
    whose rerun ranks are reversed are an inversion; a rank that moves into or
    out of a tie is not.  Retrain (its Gap is 0 by definition) is left out."""
    from .leaderboard import table_label

    committed = committed.assign(table=[table_label(r) for _, r in committed.iterrows()])
    rerun = rerun.assign(table=[table_label(r) for _, r in rerun.iterrows()])
    mean, ci, rank = f"{metric}_mean", f"{metric}_ci95", rank_column(metric)
    old = committed[committed["method"] != "retrain"].set_index(KEY)
    verdicts = []
    for table, rows in rerun[rerun["method"] != "retrain"].groupby("table", sort=False):
        v = TableVerdict(table)
        pairs = []
        for _, r in rows.iterrows():
            key = (r["table"], r["method"], r["variant"])
            if key not in old.index:
                continue
            c = old.loc[key]
            v.cells += 1
            half = c[ci] if not pd.isna(c[ci]) else 1e-9
            if abs(r[mean] - c[mean]) <= half + 1e-12:
                v.within += 1
            else:
                v.outside.append((_label(r), c[mean], c[ci], r[mean]))
            if rank in r and not pd.isna(r[rank]) and not pd.isna(c[rank]):
                pairs.append((_label(r), float(c[rank]), float(r[rank])))
                if c[rank] != r[rank]:
                    v.moved.append(pairs[-1])
        for i, (a, a0, a1) in enumerate(pairs):
            for b, b0, b1 in pairs[i + 1:]:
                if (a0 < b0 and a1 > b1) or (b0 < a0 and b1 > a1):
                    v.inverted.append((a, b) if a0 < b0 else (b, a))
        labels = {(_label(r)) for _, r in rows.iterrows()}
        v.missing = sorted(_label(r) for _, r in committed[(committed["table"] == table)
                                                           & (committed["method"] != "retrain")].iterrows()
                           if _label(r) not in labels)
        if v.cells:
            verdicts.append(v)
    return verdicts


def environment_note(committed_records: list[dict], rerun_records: list[dict]) -> str:
    """Why two runs can or cannot be bit-identical: the reproducibility fields
    of the records' environments (harness/protocol/records.py) that differ."""
    from ..protocol.records import REPRODUCIBILITY_KEYS

    def values(records):
        return {k: sorted({str(r.get("env", {}).get(k, "not recorded")) for r in records})
                for k in REPRODUCIBILITY_KEYS}

    old, new = values(committed_records), values(rerun_records)
    differ = [f"{k} ({', '.join(old[k])} vs {', '.join(new[k])})" for k in REPRODUCIBILITY_KEYS if old[k] != new[k]]
    if differ:
        return "runs cannot be bit-identical: " + "; ".join(differ) + " differ"
    return "same environment (" + ", ".join(f"{k} {new[k][0]}" for k in REPRODUCIBILITY_KEYS) + \
        "): runs should be bit-identical"


def _same_value(x, y) -> bool:
    """Equal, counting two NaNs as equal (a metric undefined in both runs)."""
    return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))


def identical_share(committed_records: list[dict], rerun_records: list[dict], metric: str = METRIC) -> tuple[int, int]:
    """(records of the rerun whose metrics, timings aside, equal the committed
    record of the same key exactly, records compared)."""
    old = {r["key"]: r for r in committed_records}
    same = total = 0
    for r in rerun_records:
        c = old.get(r["key"])
        if c is None or r.get("status") != "ok" or c.get("status") != "ok":
            continue
        total += 1
        a, b = c.get("metrics", {}), r.get("metrics", {})
        same += all(_same_value(a.get(k), b.get(k)) for k in (set(a) | set(b)) - set(TIMING))
    return same, total


def verdict(verdicts: list[TableVerdict]) -> tuple[str, bool]:
    """(final line, ranks agree beyond ties)."""
    cells = sum(v.cells for v in verdicts)
    within = sum(v.within for v in verdicts)
    inverted = sum(len(v.inverted) for v in verdicts)
    moved = sum(len(v.moved) for v in verdicts)
    ranks = (f"{inverted} rank inversions" if inverted else f"ranks equal except {moved} moves within ties"
             if moved else "ranks equal")
    return f"{within}/{cells} cells within their 95% intervals; {ranks}", inverted == 0
