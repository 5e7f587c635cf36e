"""The columns of the summary tables, shared by the leaderboard, the figures,
the forgetting-quality section, ``submit``'s comparison and MUSO's regime
study: what identifies a table and how it is titled, which metrics its rows
report, the reference rows that open every table, how variants of one method
are told apart, and which tables form a width sweep (:func:`sweep_series`)."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..metrics.definitions import metric_names
from ..protocol.spec import format_model_args

# A table: one dataset × model (and its arguments) × training × scenario.  ``model_args`` is the
# model's arguments as a label, ``loss`` / ``trainable`` the training options that change what is
# learnt, ``training`` the other training options that differ between records of one setting.
SETTING_KEYS = ["dataset", "model", "model_args", "loss", "trainable", "training"]
TABLE_KEYS = SETTING_KEYS + ["scenario_kind", "ratio", "forget_class", "train_subset", "test_subset"]
SERIES_KEYS = [k for k in TABLE_KEYS if k != "model_args"]   # a width sweep: these fixed, the model's arguments varying
TRAIN_DEFAULTS = {"loss": "cross_entropy", "trainable": "all"}   # training options older records lack
FLAGS = ("noop", "collapsed")   # per-run flags, counted per table row
METRICS = metric_names(summary=True)   # a table row's metrics (harness/metrics/definitions.py: MetricDef.summary)
# What a method reports about its regime through ctx.diagnostics (MUSO: M, N and rank of Z_r, the
# share of forget labels that differ from the Original's predictions): columns of the records frame.
DIAGNOSTICS = ["head_inputs", "proj_rows", "rank_z_retain", "label_change_first", "label_change_mean",
               "perm_flip_first", "exact_share_first", "proj_cond"]
REFERENCE_ORDER = {"original": 0, "retrain": 1}


def variant_label(hyper: dict, others: list[dict]) -> str:
    """Label a hyperparameter variant by the values in which it differs from
    the other variants of the same method (empty if there is only one)."""
    keys = sorted({k for o in others for k in o if any(o.get(k) != p.get(k) for p in others)})
    return ", ".join(f"{k}={hyper.get(k)}" for k in keys)


def table_fields(config: dict) -> dict:
    """The table columns a run's configuration (a record's ``config``) sets:
    every one of TABLE_KEYS but ``training``, which compares records."""
    sc, train = config["scenario"], {**TRAIN_DEFAULTS, **(config.get("train") or {})}
    return {"dataset": config["dataset"], "model": config["model"],
            "model_args": format_model_args(config.get("model_args") or {}),
            "loss": train["loss"], "trainable": train["trainable"], "scenario_kind": sc["kind"],
            "ratio": sc.get("ratio", np.nan), "forget_class": sc.get("forget_class", np.nan),
            "train_subset": config.get("train_subset") or np.nan, "test_subset": config.get("test_subset") or np.nan}


def scenario_label(row) -> str:
    if row["scenario_kind"] == "random":
        return f"random {row['ratio'] * 100:g}%"
    if not (isinstance(row["forget_class"], float) and math.isnan(row["forget_class"])):
        return f"{row['scenario_kind']} {int(row['forget_class'])}"
    return str(row["scenario_kind"])


def setting_label(row) -> str:
    """``digits · mlp(hidden=2048) · squared · head-only``: the dataset, the
    model with its arguments, and the training options that set it apart
    (none for a model's default training)."""
    model = row["model"] + (f"({row['model_args']})" if row.get("model_args") else "")
    parts = [row["dataset"], model]
    if row.get("loss", "cross_entropy") != "cross_entropy":
        parts.append(row["loss"])
    if row.get("trainable", "all") == "head":
        parts.append("head-only")
    if row.get("training"):
        parts.append(row["training"])
    return " · ".join(parts)


def table_label(row, subset_sep: str = " · ") -> str:
    """``setting · scenario · subset: …``; ``subset_sep`` puts the subset elsewhere (a figure: a second line)."""
    subsets = [f"{int(row[k]):,} {k.split('_')[0]}" for k in ("train_subset", "test_subset")
               if k in row and not pd.isna(row[k])]
    return (f"{setting_label(row)} · {scenario_label(row)}"
            + (f"{subset_sep}subset: {', '.join(subsets)}" if subsets else ""))


def natural_key(text: str) -> str:
    """A sort key that orders the numbers inside a label by value."""
    return re.sub(r"\d+", lambda m: m.group().zfill(12), str(text))


def regime_label(row) -> str:
    """``M/N = 4097/1092 (3.75)`` from a row's head_inputs / proj_rows
    diagnostics (a range over seeds where they differ); empty without them."""
    if "head_inputs_min" not in row or pd.isna(row["head_inputs_min"]) or pd.isna(row["proj_rows_min"]):
        return ""
    span = lambda k: (f"{int(row[f'{k}_min'])}" if row[f"{k}_min"] == row[f"{k}_max"]
                      else f"{int(row[f'{k}_min'])}–{int(row[f'{k}_max'])}")
    ratio = row["head_inputs_min"] / row["proj_rows_min"]
    label = f"M/N = {span('head_inputs')}/{span('proj_rows')} ({ratio:.3g})"
    if "perm_flip_first_mean" in row and not pd.isna(row["perm_flip_first_mean"]):
        # round-off: forget labels that flip when only Π_r's rows are reordered (first step, mean over seeds)
        label += f" · perm. flips {100 * row['perm_flip_first_mean']:.0f}%"
    return label


def sweep_series(summary: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Width sweeps (all layers trained): groups of tables equal in every key
    but the model's arguments, with at least two of them."""
    if summary.empty or "n_head_inputs" not in summary:
        return []
    swept = summary[summary["trainable"] == "all"]
    series = []
    for key, rows in swept.groupby(SERIES_KEYS, dropna=False, sort=False):
        if rows["model_args"].nunique() >= 2:
            series.append((dict(zip(SERIES_KEYS, key)), rows))
    return series
