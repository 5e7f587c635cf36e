"""Records → ``summary.csv`` and ``leaderboard.md``.

One table per dataset × model × scenario; Original and Retrain first, then
methods ranked by Avg. Gap; every metric as mean ± std over seeds.  The output
is a pure function of the records (no clock, no machine), so the committed
leaderboard can be checked against regeneration.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import DEFINITIONS
from .records import RecordStore, write_text_atomic

TABLE_KEYS = ["dataset", "model", "scenario_kind", "ratio", "forget_class"]
METRICS = ["retain_acc", "forget_acc", "test_acc", "unlearn_acc", "test_acc_forget_class",
           "test_acc_other_classes", "mia_efficacy", "mia_entropy", "param_dist", "param_dist_rel",
           "js_forget", "avg_gap", "avg_gap_muso", "time_s", "rte"]
REFERENCE_ORDER = {"original": 0, "retrain": 1}
REGENERATE = "unlearnbench leaderboard"

# Extra sections appended by other commands' renderers: (title, "module:function"),
# each function takes the results folder and returns markdown or None.
SECTIONS: list[tuple[str, str]] = [
    ("MUSO exactness: the linear theorem on real data", "unlearnbench.harness.exactness:leaderboard_section"),
    ("Loss-attack MIA and the retrain noise floor", "unlearnbench.harness.floor:leaderboard_section"),
    ("Forgetting quality (NeurIPS 2023 challenge metric)", "unlearnbench.harness.forgetting_quality:leaderboard_section"),
    ("Hyperparameter tuning (equal budget)", "unlearnbench.harness.tuning:leaderboard_section"),
]


def _variant(hyper: dict, others: list[dict]) -> str:
    """Label a hyperparameter variant by the values in which it differs from
    the other variants of the same method (empty if there is only one)."""
    keys = sorted({k for o in others for k in o if any(o.get(k) != p.get(k) for p in others)})
    return ", ".join(f"{k}={hyper.get(k)}" for k in keys)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record (any status)."""
    rows = []
    for r in records:
        c = r["config"]
        sc = c["scenario"]
        row = {"dataset": c["dataset"], "model": c["model"], "scenario_kind": sc["kind"],
               "ratio": sc.get("ratio", np.nan), "forget_class": sc.get("forget_class", np.nan),
               "method": c["method"], "seed": c["seed"], "status": r["status"],
               "hyper": c.get("hyper", {}), "key": r["key"], "message": r.get("message")}
        for k, v in (r.get("sizes") or {}).items():
            row[f"n_{k}"] = v
        for m in METRICS:
            v = r.get("metrics", {}).get(m)
            row[m] = np.nan if v is None else float(v)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["variant"] = ""
    for _, group in df.groupby(TABLE_KEYS + ["method"], dropna=False):
        hypers = [dict(t) for t in {tuple(sorted((k, str(v)) for k, v in h.items())) for h in group["hyper"]}]
        if len(hypers) > 1:
            for i in group.index:
                df.at[i, "variant"] = _variant({k: str(v) for k, v in df.at[i, "hyper"].items()}, hypers)
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and seed count of every metric per table × method (ok runs)."""
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    keys = TABLE_KEYS + ["method", "variant"]
    grouped = ok.groupby(keys, dropna=False)
    summary = grouped.size().rename("n_seeds").to_frame()
    for m in METRICS:
        summary[f"{m}_mean"] = grouped[m].mean()
        summary[f"{m}_std"] = grouped[m].std(ddof=0)
    for k in ("n_retain", "n_forget", "n_test"):
        if k in ok:
            summary[k] = grouped[k].first()
    summary = summary.reset_index()
    summary["order"] = summary["method"].map(REFERENCE_ORDER).fillna(2)
    summary = summary.sort_values(["dataset", "model", "scenario_kind", "ratio", "forget_class",
                                   "order", "avg_gap_mean", "method", "variant"], na_position="last")
    return summary.drop(columns="order").reset_index(drop=True)


def _fmt(mean: float, std: float, metric: str) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if metric == "rte":
        return f"{mean:.1f}×"
    if metric in ("param_dist", "param_dist_rel", "js_forget"):
        body = f"{mean:.3g}" if mean >= 1e-3 or mean == 0 else f"{mean:.2e}"
        spread = f"{std:.2g}" if std >= 1e-3 or std == 0 else f"{std:.1e}"
        return f"{body} ± {spread}"
    if metric == "time_s":
        return f"{mean:.3g}"
    return f"{mean:.2f} ± {std:.2f}"


def _scenario_label(row) -> str:
    if row["scenario_kind"] == "random":
        return f"random {row['ratio'] * 100:g}%"
    if not (isinstance(row["forget_class"], float) and math.isnan(row["forget_class"])):
        return f"{row['scenario_kind']} {int(row['forget_class'])}"
    return str(row["scenario_kind"])


def table_markdown(rows: pd.DataFrame, statuses: pd.DataFrame) -> str:
    first = rows.iloc[0]
    metrics = ["retain_acc", "forget_acc", "test_acc", "unlearn_acc"]
    if first["scenario_kind"] != "random":
        metrics += ["test_acc_forget_class", "test_acc_other_classes"]
    metrics += ["mia_efficacy", "mia_entropy", "param_dist", "param_dist_rel", "js_forget",
                "avg_gap", "avg_gap_muso", "time_s", "rte"]
    header = ["method"] + [DEFINITIONS[m][0] for m in metrics] + ["seeds"]
    lines = [f"### {first['dataset']} · {first['model']} · {_scenario_label(first)}", ""]
    sizes = [f"|D_r| = {int(first['n_retain'])}", f"|D_f| = {int(first['n_forget'])}",
             f"|test| = {int(first['n_test'])}"] if "n_retain" in first and not pd.isna(first["n_retain"]) else []
    if sizes:
        lines += [" · ".join(sizes), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for _, r in rows.iterrows():
        name = r["method"] + (f" ({r['variant']})" if r["variant"] else "")
        if r["method"] in REFERENCE_ORDER:
            name = f"**{name}**"
        cells = [_fmt(r[f"{m}_mean"], r[f"{m}_std"], m) for m in metrics]
        lines.append("| " + " | ".join([name] + cells + [str(int(r["n_seeds"]))]) + " |")
    bad = statuses[statuses["status"] != "ok"]
    for (method, status), g in bad.groupby(["method", "status"]):
        seeds = ", ".join(str(s) for s in sorted(g["seed"]))
        message = g["message"].iloc[0] or ""
        lines.append(f"\n*{method}: {status} for seed(s) {seeds} — {message.splitlines()[0] if message else ''}*")
    return "\n".join(lines) + "\n"


def definitions_markdown() -> str:
    lines = ["| metric | column | definition | better |", "|---|---|---|---|"]
    for name, (label, definition, direction) in DEFINITIONS.items():
        lines.append(f"| `{name}` | {label} | {definition} | {direction} |")
    return "\n".join(lines) + "\n"


def render(out: Path, df: pd.DataFrame, summary: pd.DataFrame) -> str:
    parts = [
        "# unlearnbench leaderboard", "",
        f"Generated from the run records in `{out.as_posix()}/runs/` by `{REGENERATE}`"
        + ("" if out.as_posix() == "results" else f" --out {out.as_posix()}") + "; do not edit by hand.",
        "Reproduce the default tables from scratch with `make benchmark` (or `unlearnbench run`).", "",
        "Every number is a mean ± standard deviation (ddof 0) over seeds; `seeds` counts them.  "
        "Each seed fixes θ₀, the forget set and the data order; the Retrain reference starts from the "
        "same θ₀ as the Original, with identical hyperparameters.  Rows: **original** and **retrain** "
        "first, then methods by Avg. Gap (SalUn convention, lower is better).", "",
        "## Metrics", "", definitions_markdown(),
    ]
    if not summary.empty:
        parts += ["## Results", ""]
        for _, rows in summary.groupby(TABLE_KEYS, dropna=False, sort=False):
            mask = np.ones(len(df), dtype=bool)
            first = rows.iloc[0]
            for k in TABLE_KEYS:
                v = first[k]
                mask &= df[k].isna().to_numpy() if pd.isna(v) else (df[k] == v).to_numpy()
            parts.append(table_markdown(rows, df[mask]))
    else:
        parts += ["No successful runs yet.", ""]
    for title, target in SECTIONS:
        import importlib

        module, _, fn = target.partition(":")
        text = getattr(importlib.import_module(module), fn)(out)
        if text:
            parts += [f"## {title}", "", text.rstrip() + "\n"]
    return "\n".join(parts).rstrip() + "\n"


def default_leaderboard_path(out: Path) -> Path:
    """The repository's leaderboard.md for the default ``results`` folder,
    otherwise a leaderboard.md inside the results folder."""
    out = Path(out)
    return out.parent / "leaderboard.md" if out.name == "results" else out / "leaderboard.md"


def write_leaderboard(out, path=None) -> tuple[Path, Path]:
    """Aggregate every record under ``out`` into summary.csv and leaderboard.md."""
    out = Path(out)
    df = records_frame(RecordStore(out).all())
    summary = summarize(df) if not df.empty else pd.DataFrame()
    csv_path = out / "summary.csv"
    write_text_atomic(csv_path, summary.to_csv(index=False, float_format="%.6g"))
    md_path = Path(path) if path else default_leaderboard_path(out)
    write_text_atomic(md_path, render(out, df if not df.empty else pd.DataFrame(columns=TABLE_KEYS), summary))
    return csv_path, md_path
