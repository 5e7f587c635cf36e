"""Records → one row per run (:func:`records_frame`): the table columns of
harness/report/tables.py, the metrics, the split and model sizes and a method's
regime diagnostics.  The leaderboard summarises it per table × method
(``leaderboard.summarize``); MUSO's regime study (harness/studies/regime.py) reads it
too."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import DIAGNOSTICS, FLAGS, METRICS, TABLE_KEYS, TRAIN_DEFAULTS, table_fields, variant_label


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record (any status)."""
    rows = []
    for r in records:
        c = r["config"]
        diagnostics = r.get("diagnostics") or {}
        row = {**table_fields(c), "train": {**TRAIN_DEFAULTS, **(c.get("train") or {})},
               **{k: np.nan if diagnostics.get(k) is None else diagnostics[k] for k in DIAGNOSTICS},
               "method": c["method"], "seed": c["seed"], "status": r["status"],
               "hyper": c.get("hyper", {}), "key": r["key"], "message": r.get("message"),
               "community": bool(r.get("submission"))}
        for k, v in {**(r.get("sizes") or {}), **(r.get("model_size") or {})}.items():
            row[f"n_{k}"] = v
        for flag in FLAGS:   # no-op / collapse (harness/metrics/definitions.run_flags); absent on reference rows
            v = (r.get("flags") or {}).get(flag)
            row[flag] = np.nan if v is None else float(v)
        for m in METRICS:
            v = r.get("metrics", {}).get(m)
            row[m] = np.nan if v is None else float(v)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["training"] = ""   # the training options in which records of one setting differ
    for _, group in df.groupby(["dataset", "model", "model_args", "loss", "trainable", "train_subset", "test_subset"],
                               dropna=False):
        trains = [dict(t) for t in {tuple(sorted((k, str(v)) for k, v in t.items())) for t in group["train"]}]
        if len(trains) > 1:
            for i in group.index:
                df.at[i, "training"] = variant_label({k: str(v) for k, v in df.at[i, "train"].items()}, trains)
    df["variant"] = ""
    for _, group in df.groupby(TABLE_KEYS + ["method"], dropna=False):
        hypers = [dict(t) for t in {tuple(sorted((k, str(v)) for k, v in h.items())) for h in group["hyper"]}]
        if len(hypers) > 1:
            for i in group.index:
                df.at[i, "variant"] = variant_label({k: str(v) for k, v in df.at[i, "hyper"].items()}, hypers)
    return df
