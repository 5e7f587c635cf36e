"""The retrain noise floor: how far apart two exact retrains already are.

Retraining is itself random (data order, and θ₀ if it is not shared), so a
parameter distance to *the* Retrain model is only meaningful beside the
distance between two retrains.  For each forget set the harness trains K
extra retrains (cached like the references, ``Harness.extra_retrain``):

- ``order``: same θ₀, same D_r and hyperparameters, K other data-order seeds;
  the floor ``param_dist_floor_ratio`` divides by;
- ``init``: K other θ₀ with the reference's data order (reported for scale:
  it shows why the same-init reference matters).

Each floor is the mean over the pairs of the K+1 retrains (the reference and
the K extra ones) of the L2 parameter distance and of the mean forget-set JS
divergence.  K = ``floor_retrains`` (default 2: 4 extra ~0.4 s trainings per
forget set on digits/mlp); 0 disables the floor.
"""
from __future__ import annotations

import pandas as pd

from unlearnbench.methods import UnknownMethod, get_method

from ..protocol.records import RecordStore
from ..report.format import mean_spread
from . import definitions as M
from .evaluate import Outputs, parameters_of

VARIATIONS = ("order", "init")


def noise_floor(harness, spec, ref) -> dict | None:
    """Floor statistics of the run's forget set (None when K = 0)."""
    k = spec.floor_retrains
    if k < 1:
        return None
    forget = harness.splits(spec)["forget"].tensors
    floor: dict = {"k": k}
    for vary in VARIATIONS:
        models = [harness.extra_retrain(spec, i, vary)[0] for i in range(1, k + 1)]
        params = [ref.params] + [parameters_of(m) for m in models]
        probs = [ref.outputs.probs["forget"]] + [Outputs.of(m, {"forget": forget}).probs["forget"] for m in models]
        floor[vary] = M.retrain_noise_floor(params, probs)
    return floor


def floor_ratio_of(info, param_dist: float, floor: dict | None) -> float | None:
    """``param_dist_floor_ratio`` of a run.  The Retrain row's own distance
    is 0 by construction, so it reports what a fresh exact retrain scores:
    the extra retrains' mean distance to the reference, over the floor."""
    if floor is None:
        return None
    order = floor["order"]
    distance = order["retrain_param_dist"] if info.reference == "retrain" else param_dist
    return M.floor_ratio(distance, order["param_dist"])


# ---- leaderboard section ---------------------------------------------------------

NOTE = (
    "Two pieces of evidence the main tables leave out.  **MIA-loss** (`mia_loss_cv`): the NeurIPS 2023 starting-kit "
    "loss attack, forget vs test; ≈50% = forgotten samples look unseen, read it against Retrain's.  "
    "**Noise floor**: a Retrain model is one draw of a random process, so ‖θ−θr‖ is read against the distance "
    "between two retrains: K extra retrains per forget set from the same θ₀ with other data-order seeds give the "
    "floor (mean over the pairs of the K+1 retrains); ‖θ−θr‖/floor ≤ 1 means the model is as close to the Retrain "
    "reference as another exact retrain would be, so parameter distance cannot tell them apart.  Retrain's own "
    "ratio (its extra retrains against the reference) is ≈1 by construction.  Retrains from other θ₀ (same data "
    "order) are reported for scale: without a shared θ₀ parameter distance says nothing.")


def leaderboard_section(out) -> str | None:
    """Per table: each method's MIA-loss, ‖θ−θr‖, its ratio to the noise floor
    and JS, and the floors themselves (mean ± std over seeds)."""
    rows = []
    for r in RecordStore(out).all():
        m, c = r.get("metrics") or {}, r["config"]
        if r["status"] != "ok" or "mia_loss_cv" not in m:
            continue
        sc = c["scenario"]
        label = f"random {sc['ratio'] * 100:g}%" if sc["kind"] == "random" else f"{sc['kind']} {sc.get('forget_class')}"
        floor = (r.get("reference") or {}).get("floor") or {}
        rows.append({"table": (c["dataset"], c["model"], label), "method": c["method"], "seed": c["seed"],
                     "hyper": str(sorted(c["hyper"].items())), "mia_loss_cv": m["mia_loss_cv"],
                     "param_dist": m["param_dist"], "ratio": m.get("param_dist_floor_ratio"),
                     "js": m["js_forget"], "k": floor.get("k"),
                     **{f"{v}_{q}": floor.get(v, {}).get(q) for v in VARIATIONS for q in ("param_dist", "js_forget")}})
    if not rows:
        return None
    df = pd.DataFrame(rows)

    def rank(method):
        try:
            reference = get_method(method).reference
        except UnknownMethod:
            reference = None
        return {"original": 0, "retrain": 1}.get(reference, 2)

    lines = [NOTE, ""]
    for table, g in sorted(df.groupby("table"), key=lambda t: t[0]):
        lines += [f"### {' · '.join(table)}", ""]
        per_seed = g.drop_duplicates("seed")
        if per_seed["k"].notna().any():
            k = int(per_seed["k"].dropna().iloc[0])
            lines += [f"Floor (K = {k}): same θ₀, other data orders: "
                      f"‖θ−θ'‖ = {mean_spread(per_seed['order_param_dist'])}, "
                      f"JS = {mean_spread(per_seed['order_js_forget'])}; other θ₀: ‖θ−θ'‖ = "
                      f"{mean_spread(per_seed['init_param_dist'])}, "
                      f"JS = {mean_spread(per_seed['init_js_forget'])}.", ""]
        lines += ["| method | MIA-loss | ‖θ−θr‖ | ‖θ−θr‖/floor | JS | seeds |", "|---|---|---|---|---|---|"]
        groups = sorted(g.groupby(["method", "hyper"]), key=lambda t: (rank(t[0][0]), t[1]["ratio"].mean(), t[0]))
        variants = g.groupby("method")["hyper"].nunique()
        for (method, hyper), rs in groups:
            name = method + (f" ({hyper})" if variants[method] > 1 else "")
            name = f"**{name}**" if rank(method) < 2 else name
            lines.append(f"| {name} | {mean_spread(rs['mia_loss_cv'])} | {mean_spread(rs['param_dist'])} | "
                         f"{mean_spread(rs['ratio'])} | {mean_spread(rs['js'])} | {len(rs)} |")
        lines.append("")
    return "\n".join(lines)
