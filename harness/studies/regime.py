"""MUSO's regime: where exact unlearning holds in networks — the study's
leaderboard section and its two figures per swept dataset × model
(``regime_distance_*.png``, ``regime_gap_*.png``), registered in
harness/studies/__init__.py.

The study (configs/regime_*.toml) keeps its records in ``results/regime/``
so the main tables are not flooded; the section reads ``<out>/regime`` when
it exists (the main leaderboard), else ``<out>`` itself (the study's own
leaderboard).  Two parts, each from the records' numbers:

- **the bridge** (``train.trainable = "head"``): the network is a linear
  model on fixed random features, the theorem's setting; the target is
  ``‖θ_o − θ_r‖ / ‖θ − θ_r‖ ≥ 100`` on every seed (θ_o the Original, θ_r the
  same-init Retrain), reported for every method;
- **the width sweep** (all layers trained): series of tables that differ only
  in the model's arguments (the width), placed by M/N = head inputs (bias
  included) ÷ |D_r|.  MUSO is called *exact* at a width where it meets the
  bridge's target or lies within the retrain noise floor, *competitive*
  where its Avg. Gap is tied with the best method's, and *not* otherwise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..protocol.records import RecordStore
from ..report.figure_plan import FigurePlan, figure_link, slug
from ..report.format import compact, percent
from ..report.frame import records_frame
from ..report.plotting import axis_label, log_axis, panels
from ..report.ranking import rank_column, tied_rank_frame
from ..report.tables import (
    REFERENCE_ORDER,
    TABLE_KEYS,
    natural_key,
    scenario_label,
    setting_label,
    sweep_series,
    table_label,
)

REGIME_DIR = "regime"            # the study's results folder, inside the main one
MUSO_METHODS = ("muso", "muso_released")
EXACT_RATIO = 100.0              # ‖θ_o − θ_r‖ / ‖θ − θ_r‖ at least this on every seed: exact
FLOOR_EXACT = 1.0                # or ‖θ − θ_r‖ / floor at most this: as close as another exact retrain


def study_folder(out) -> Path:
    """Where the study's records are: ``<out>/regime`` if it holds runs, else ``out``."""
    nested = Path(out) / REGIME_DIR
    return nested if (nested / "runs").is_dir() else Path(out)


def study_summary(records: list[dict]) -> pd.DataFrame:
    """One row per table × method (× variant): means over seeds of the
    distances, their ratio to the Original's (``dist_ratio``: mean and the
    worst seed, ``dist_ratio_min``), Avg. Gap, MUSO's diagnostics, and
    ``m_over_n`` = head inputs ÷ |D_r|."""
    df = records_frame(records)
    if df.empty:
        return pd.DataFrame()
    ok = df[df["status"] == "ok"].copy()
    if ok.empty or "n_head_inputs" not in ok:
        return pd.DataFrame()
    ok["table"] = [table_label(r) for _, r in ok.iterrows()]
    original = ok[ok["method"] == "original"].set_index(["table", "seed"])["param_dist"]
    reference = pd.Series(list(zip(ok["table"], ok["seed"]))).map(original.to_dict()).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok["dist_ratio"] = reference / ok["param_dist"].to_numpy(dtype=float)
    ok["m_over_n"] = ok["n_head_inputs"] / ok["n_retain"]
    floors = {r["key"]: ((r.get("reference") or {}).get("floor") or {}).get("order", {}).get("param_dist")
              for r in records}
    # how far apart two retrains that differ only in data order are, relative to the Original's distance:
    # at the limit of SGD (the bridge) they coincide, so this measures how close the iterates are to it
    ok["retrain_spread"] = ok["key"].map(floors).astype(float) / reference
    grouped = ok.groupby(TABLE_KEYS + ["table", "method", "variant"], dropna=False, sort=False)
    out = grouped.size().rename("n_seeds").to_frame()
    for m in ("param_dist_rel", "param_dist_floor_ratio", "avg_gap", "dist_ratio", "test_acc", "forget_acc",
              "label_change_first", "label_change_mean", "proj_rows", "m_over_n", "retrain_spread"):
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_std"] = grouped[m].std(ddof=0)
    out["dist_ratio_min"] = grouped["dist_ratio"].min()
    runs = ok[~ok["method"].isin(list(REFERENCE_ORDER))]   # the leaderboard's tied ranks by Avg. Gap
    ranks = tied_rank_frame(runs, ("avg_gap",)).rename(columns={rank_column("avg_gap"): "gap_rank"})
    for k in ("n_head_inputs", "n_retain"):   # as in the leaderboard's summary
        out[k] = grouped[k].first()
    out = out.reset_index().merge(ranks, on=["table", "method", "variant"], how="left")
    out["order"] = out["model_args"].map(natural_key)
    out["training_order"] = out["training"].map(natural_key)
    return out.sort_values(["dataset", "model", "loss", "trainable", "scenario_kind", "ratio", "forget_class",
                            "training_order", "order", "method"], na_position="last").drop(
        columns=["order", "training_order"])


def verdict(rows: pd.DataFrame, i) -> str:
    """``exact``, ``competitive`` or ``not`` for row ``i`` of one table's rows.
    Within the noise floor counts as exact only where the Original is not:
    where it is, parameter distance cannot tell unlearning from none."""
    r = rows.loc[i]
    original = rows.loc[rows["method"] == "original", "param_dist_floor_ratio_mean"]
    floor_tells = not original.empty and original.iloc[0] > FLOOR_EXACT
    if r["dist_ratio_min"] >= EXACT_RATIO or (floor_tells and r["param_dist_floor_ratio_mean"] <= FLOOR_EXACT):
        return "exact"
    return "competitive" if r["gap_rank"] == 1 else "not"


def gap_rank(rows: pd.DataFrame, i) -> str:
    ranked = rows["gap_rank"].notna().sum()
    return "—" if pd.isna(rows.loc[i, "gap_rank"]) else f"{int(rows.loc[i, 'gap_rank'])}/{ranked}"


def _muso_rows(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["method"].isin(MUSO_METHODS)]


def _name(r) -> str:
    return r["method"] + (f" ({r['variant']})" if r["variant"] else "")


def bridge_markdown(study: pd.DataFrame) -> list[str]:
    head = study[study["trainable"] == "head"]
    if head.empty:
        return []
    lines = ["### The bridge: head-only training (a linear model on fixed random features)", "",
             f"Target: ‖θo−θr‖/‖θ−θr‖ ≥ {EXACT_RATIO:g} on every seed (θo the Original, θr the same-init Retrain). "
             "Per table: MUSO's ratio (mean over seeds, worst seed in brackets), the closest other method's, the "
             "retrain spread (the distance between two retrains that differ only in their data order, over "
             "‖θo−θr‖: at the limit of SGD they coincide, so it measures how far the iterates are from it; "
             f"the target needs it well below 1/{EXACT_RATIO:g}), and the Original's and Retrain's test accuracy. "
             "Tables that differ only in their training (e.g. `epochs`) show the distance against the number of "
             "SGD steps.", "",
             "| setting | scenario | M/N | method | ‖θo−θr‖/‖θ−θr‖ | target | next best method | retrain spread "
             "| TA original / retrain | seeds |", "|---|---|---|---|---|---|---|---|---|---|"]
    for _, rows in head.groupby("table", sort=False):
        named = list(REFERENCE_ORDER) + list(MUSO_METHODS)
        others = rows[~rows["method"].isin(named) & rows["dist_ratio_mean"].notna()]
        best = others.loc[others["dist_ratio_mean"].idxmax()] if not others.empty else None
        ref = {m: rows[rows["method"] == m] for m in REFERENCE_ORDER}
        ta = " / ".join(compact(g["test_acc_mean"].iloc[0]) if not g.empty else "—" for g in ref.values())
        spread = rows["retrain_spread_mean"].dropna()
        floor = compact(spread.iloc[0]) if len(spread) else "—"
        for _, r in _muso_rows(rows).iterrows():
            met = "met" if r["dist_ratio_min"] >= EXACT_RATIO else "missed"
            lines.append(f"| {setting_label(r)} | {scenario_label(r)} | {compact(r['m_over_n_mean'])} | {_name(r)} | "
                         f"{compact(r['dist_ratio_mean'])} ({compact(r['dist_ratio_min'])}) | {met} | "
                         + (f"{_name(best)}: {compact(best['dist_ratio_mean'])}" if best is not None else "—")
                         + f" | {floor} | {ta} | {int(r['n_seeds'])} |")
    return lines + [""]


def sweep_markdown(series: list[tuple[dict, pd.DataFrame]], link) -> list[str]:
    if not series:
        return []
    lines = ["### The width sweep: all layers trained", "",
             f"M/N = head inputs (bias included) ÷ |D_r|.  **exact**: ‖θo−θr‖/‖θ−θr‖ ≥ {EXACT_RATIO:g} on every "
             f"seed, or ‖θ−θr‖/floor ≤ {FLOOR_EXACT:g} (as close to Retrain as another exact retrain) where the "
             f"Original's is above {FLOOR_EXACT:g} (where it is not, parameter distance cannot tell unlearning "
             "from none); "
             "**competitive**: Avg. Gap tied with the best method's (rank 1 in the leaderboard's ranks with ties: "
             "no method is significantly better by the paired test over seeds, Holm-corrected; with one seed "
             "every method ties); **not**: neither.  Labels changed: the share of D_f whose MUSO label at the first "
             "step differs from the Original's prediction (`label_change_first`).", ""]
    statements: dict[tuple, list[str]] = {}
    for key, rows in series:
        first = rows.iloc[0]
        title = f"{setting_label({**first, 'model_args': ''})} · {scenario_label(first)}"
        lines += [f"#### {title}", "",
                  "| model | M/N | method | ‖θ−θr‖/‖θr‖ | ‖θ−θr‖/floor (Original's) | ‖θo−θr‖/‖θ−θr‖ | Gap (rank) "
                  "| labels changed | verdict |", "|---|---|---|---|---|---|---|---|---|"]
        words: dict[str, dict[str, list[str]]] = {}
        first_change: dict[str, str] = {}
        for _, table in rows.groupby("table", sort=False):
            for i, r in _muso_rows(table).iterrows():
                word = verdict(table, i)
                where = f"{r['model_args']} (M/N {compact(r['m_over_n_mean'], 2)})"
                words.setdefault(_name(r), {}).setdefault(word, []).append(where)
                if not pd.isna(r["label_change_first_mean"]):
                    first_change.setdefault(_name(r), None)
                    if first_change[_name(r)] is None and r["label_change_first_mean"] > 0:
                        first_change[_name(r)] = f"{where}: {percent(r['label_change_first_mean'])} of D_f"
                original = table.loc[table["method"] == "original", "param_dist_floor_ratio_mean"]
                lines.append(f"| {r['model']}({r['model_args']}) | {compact(r['m_over_n_mean'])} | {_name(r)} | "
                             f"{compact(r['param_dist_rel_mean'])} | {compact(r['param_dist_floor_ratio_mean'])} "
                             f"({compact(original.iloc[0]) if not original.empty else '—'}) | "
                             f"{compact(r['dist_ratio_mean'])} | {compact(r['avg_gap_mean'])} ({gap_rank(table, i)}) | "
                             f"{percent(r['label_change_first_mean'])} | {word} |")
        lines.append("")
        for name, by_word in words.items():
            said = "; ".join(f"{word} at {', '.join(by_word[word])}" if by_word.get(word) else f"{word} at no width"
                             for word in ("exact", "competitive", "not"))
            if name not in first_change:
                change = "Its labels' change is not recorded (no `label_change_first` diagnostics)."
            elif first_change[name] is None:
                change = "Its labels equal the Original's predictions at every width of the sweep."
            else:
                change = f"Its labels first differ from the Original's predictions at {first_change[name]}."
            statements.setdefault((first["dataset"], first["model"], first["loss"]), []).append(
                f"- {scenario_label(first)}, {name}: {said}.  {change}")
    lines += ["#### In words", ""]
    for (dataset, model, loss), said in statements.items():
        lines += [f"**{dataset} · {model} · {loss}**", ""] + said + [""]
    figures = sorted({(k["dataset"], k["model"]) for k, _ in series})
    for dataset, model in figures:
        for kind, what in zip(FIGURE_KINDS, ("distance to Retrain", "Avg. Gap")):
            name = figure_name(kind, dataset, model)
            lines += [f"![{what} against M/N ({dataset} · {model})]({link(name)})", ""]
    return lines


def leaderboard_section(out) -> str | None:
    """The "MUSO's regime" section, from the study's records (None without them)."""
    out = Path(out)
    folder = study_folder(out)
    study = study_summary(RecordStore(folder).all())
    if study.empty:
        return None
    series = sweep_series(study)
    if study[study["trainable"] == "head"].empty and not series:
        return None
    if folder == out:
        link = lambda name: figure_link(out, name)
    else:   # the main leaderboard links the study's figures in <out>/regime/figures
        link = lambda name: ((Path("results") if out.name == "results" else Path(".")) / REGIME_DIR / "figures"
                             / name).as_posix()
    lines = [f"From the records in `{folder.as_posix()}/` (the study's presets: `configs/regime_*.toml`; "
             f"regenerate with `unlearnbench leaderboard --out {folder.as_posix()}`).", ""]
    lines += bridge_markdown(study) + sweep_markdown(series, link)
    return "\n".join(lines).rstrip() + "\n"

FIGURE_PREFIX = "regime_"
FIGURE_KINDS = ("regime_distance", "regime_gap")             # a width sweep's figures
DISTANCE_METRICS = ("param_dist_rel", "param_dist_floor_ratio")


def figure_name(kind: str, dataset: str, model: str) -> str:
    return f"{kind}_{slug(dataset)}_{slug(model)}.png"


def plan_figures(summary: pd.DataFrame) -> list[FigurePlan]:
    """The width sweeps' figures (pure: no matplotlib): two per swept dataset × model."""
    plans: list[FigurePlan] = []
    if summary.empty:
        return plans
    swept: dict[tuple, int] = {}
    for key, _ in sweep_series(summary):
        swept[(key["dataset"], key["model"])] = swept.get((key["dataset"], key["model"]), 0) + 1
    for (dataset, model), n in sorted(swept.items()):
        select = {"dataset": dataset, "model": model}
        plans += [
            FigurePlan(figure_name("regime_distance", dataset, model),
                       f"Distance to Retrain against M/N ({dataset} · {model})",
                       "Width sweep, all layers trained: ‖θ−θr‖/‖θr‖ and ‖θ−θr‖ over the retrain noise floor against "
                       "M/N = head inputs ÷ |D_r| (log scales; mean ± std over seeds), one line per method; the "
                       "dotted line marks M = N, the dashed one a ratio of 1 to the floor.",
                       n * len(DISTANCE_METRICS), "regime_distance", select),
            FigurePlan(figure_name("regime_gap", dataset, model), f"Avg. Gap against M/N ({dataset} · {model})",
                       "Width sweep, all layers trained: Avg. Gap to Retrain (lower is better) against M/N = head "
                       "inputs ÷ |D_r| (log scale; mean ± std over seeds), one line per method, the Original dotted.",
                       n, "regime_gap", select)]
    return plans


def _regime_panels(rows: pd.DataFrame, style, legend: list[str], dataset: str, model: str,
                   metrics: tuple[str, ...]):
    series = [(k, r) for k, r in sweep_series(rows) if k["dataset"] == dataset and k["model"] == model]
    fig, axes = panels(len(series) * len(metrics), len(metrics) if len(metrics) > 1 else 2, 3.6, 2.9)
    drawn: set[str] = set()
    for i, (key, series_rows) in enumerate(series):
        series_rows = series_rows.assign(m_over_n=series_rows["n_head_inputs"] / series_rows["n_retain"])
        for j, metric in enumerate(metrics):
            ax = axes[i * len(metrics) + j]
            for label, g in series_rows.sort_values("m_over_n").groupby("label", sort=True):
                g = g[g[f"{metric}_mean"].notna() & ((g[f"{metric}_mean"] > 0) | (metric == "avg_gap"))]
                if g.empty or (label == "retrain" and metric != "param_dist_floor_ratio"):
                    continue
                drawn.add(label)
                ax.errorbar(g["m_over_n"], g[f"{metric}_mean"], yerr=g[f"{metric}_std"], color=style.colour[label],
                            linestyle={"original": ":", "retrain": "--"}.get(label, "-"), marker=style.marker[label],
                            markersize=9 if label == "retrain" else 5, capsize=2, linewidth=1.4)
            ax.axvline(1.0, color="0.4", linestyle=":", linewidth=1)
            if metric == "param_dist_floor_ratio":
                ax.axhline(1.0, color="0.4", linestyle="--", linewidth=1)
            log_axis(ax, "x", series_rows["m_over_n"])
            if metric != "avg_gap":
                log_axis(ax, "y", series_rows[f"{metric}_mean"].dropna())
            ax.set(title=f"{key['loss']} · {scenario_label(key)}", ylabel=axis_label(metric))
    fig.supxlabel("M/N = head inputs ÷ |D_r|")
    return fig, [label for label in legend if label in drawn]


def _draw_regime_distance(rows, style, legend, dataset, model):
    return _regime_panels(rows, style, legend, dataset, model, DISTANCE_METRICS)


def _draw_regime_gap(rows, style, legend, dataset, model):
    return _regime_panels(rows, style, legend, dataset, model, ("avg_gap",))


DRAW = {"regime_distance": _draw_regime_distance, "regime_gap": _draw_regime_gap}
