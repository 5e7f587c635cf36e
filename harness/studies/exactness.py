"""`unlearnbench exactness`: MUSO's theorem, measured on real data.

On ``rf_linear`` (random Fourier features, more features than samples,
squared loss, trained to the limit of SGD) the theorem says: fine-tuning the
original ``w_p`` on D_r ∪ D_f with the forget labels set to ``ŷ_f = Z_f w_r``
(computable in closed form, without retraining) lands *exactly* on the
retrained ``w_r`` in parameter space; nothing else does.  For each task ×
forget ratio × seed this module trains Original and Retrain from the same θ₀
and runs FT, GA and RL (the registered methods, on this model), a
Bad-Teacher-style relabel (forget labels from a random linear model), MUSO's
labels on the forget set only, and MUSO, and writes one row per method to
``OUT/exactness.csv``.  Every training goes through ``methods._train.fit``,
which moves ``rf_linear`` to the limit of SGD (float64, Cholesky).

It also shows that real iterates go there: plain GD and per-sample SGD in the
N-dimensional dual (``w = w_start + Zᵀα``) on one task, for Retrain and for
MUSO's fine-tuning, distance to the closed-form ``w_r`` against steps, on a
well-conditioned bandwidth and on the default one (``OUT/exactness_convergence.csv``).
"""
from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import defaults as D

if TYPE_CHECKING:
    import torch

    from ..models import InputSpec

TASKS = {
    "digits": "scikit-learn digits, all 10 classes, one-hot targets (1,348 train / 449 test)",
    "digits_3v7": "digits 3 vs 7, ±1 targets (the paper's binary task; 2 output columns, each the ±1 problem)",
    "fashion_mnist": "Fashion-MNIST, class-balanced subset of 1,500 train / 1,000 test images, one-hot targets",
}
DEFAULT_TASKS = tuple(TASKS)
DEFAULT_RATIOS = (0.05, 0.1, 0.3)
DEFAULT_SEEDS = (0, 1, 2)
FASHION_SUBSET = (1500, 1000)
METHODS = {   # csv name -> label in the leaderboard
    "original": "Original",
    "retrain": "Retrain",
    "finetune": "FT",
    "gradient_ascent": "GA",
    "random_relabel": "RL",
    "bad_teacher_labels": "Bad-Teacher labels",
    "muso_forget_only": "MUSO labels, D_f only",
    "muso": "MUSO",
}
COLUMNS = ["dataset", "forget_ratio", "seed", "method", "param_dist", "param_dist_rel", "test_acc",
           "forget_acc", "retain_acc", "n_retain", "n_forget", "features", "sigma", "kernel_cond",
           "label_forms_rel_diff", "seconds"]
CONVERGENCE_COLUMNS = ["dataset", "forget_ratio", "seed", "sigma", "kernel_cond", "run", "algorithm", "step",
                       "param_dist_rel"]
CONVERGENCE_TASK = "digits_3v7"
TARGET_MUSO = 1e-6      # MUSO's relative parameter distance to Retrain must stay below this ...
TARGET_OTHERS = 1e-2    # ... and every other method's above this


@dataclass
class Task:
    name: str
    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    spec: "InputSpec"
    targets: str              # rf_linear target coding


def load_task(name: str, data_root=None) -> Task:
    """Real data for one task (fixed subsets, seed 0)."""
    import torch

    from unlearnbench import datasets as D
    from unlearnbench.datasets.splits import class_balanced_sample

    from ..errors import UsageError
    from ..models import InputSpec

    if name not in TASKS:
        raise UsageError(f"unknown exactness dataset {name!r}; accepted: {', '.join(TASKS)}")
    try:
        ds = D.load_dataset("fashion_mnist" if name == "fashion_mnist" else "digits", root=data_root)
    except D.DataError as e:
        raise UsageError(f"dataset {name!r}: {e}") from None
    spec = InputSpec.of(ds)
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    targets = "onehot"
    if name == "digits_3v7":
        keep, keep_t = (y == 3) | (y == 7), (yt == 3) | (yt == 7)
        x, y, xt, yt = x[keep], (y[keep] == 7).long(), xt[keep_t], (yt[keep_t] == 7).long()
        spec = InputSpec(spec.shape, 2, spec.scale, spec.mean, spec.std)
        targets = "pm1"
    elif name == "fashion_mnist":
        n_train, n_test = FASHION_SUBSET
        tr = torch.as_tensor(class_balanced_sample(y.numpy(), n_train, 0))
        te = torch.as_tensor(class_balanced_sample(yt.numpy(), n_test, 0))
        x, y, xt, yt = x[tr], y[tr], xt[te], yt[te]
    return Task(name, x, y, xt, yt, spec, targets)


def _split(x, y):
    from unlearnbench.methods import Split

    return Split(x, y)


def run_config(task: Task, ratios, seed: int, features: int, sigma: float | None, log=print) -> list[dict]:
    """Every method on one task and seed, for each forget ratio: one row each."""
    import numpy as np
    import torch

    from unlearnbench.datasets.splits import random_forget
    from unlearnbench.methods import Context, fit, get_method, supervised_loss
    from unlearnbench.methods.muso import optimal_labels, optimal_labels_label_free

    from ..metrics import definitions as M
    from ..metrics.evaluate import parameters_of, predict
    from ..models import build_model, get_model
    from ..protocol.spec import derive_seed

    args = {"features": features, "sigma": sigma, "targets": task.targets}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        init = build_model("rf_linear", task.spec, args)
    theta0 = copy.deepcopy(init.state_dict())
    train_cfg = get_model("rf_linear").train
    new_generator = lambda *tags: torch.Generator().manual_seed(derive_seed(seed, "exactness", *tags))

    def trained(x, targets, start=init):
        model = copy.deepcopy(start)
        fit(model, supervised_loss, (x, targets), train_cfg, new_generator("order"))
        return model.requires_grad_(False)

    z_all = init.features(task.x_train)
    eig = torch.linalg.eigvalsh(z_all @ z_all.T)
    kernel_cond = float(eig[-1] / eig[0])
    t0 = time.perf_counter()
    original = trained(task.x_train, task.y_train)
    original_time = time.perf_counter() - t0
    wp, w0 = original.head.weight.detach().T, init.head.weight.detach().T
    labels = task.y_train.numpy()
    rows = []
    for ratio in ratios:
        forget = torch.as_tensor(random_forget(labels, ratio, derive_seed(seed, "forget", ratio)))
        retain = torch.as_tensor(np.setdiff1d(np.arange(len(labels)), forget.numpy()))
        x_r, y_r, x_f, y_f = task.x_train[retain], task.y_train[retain], task.x_train[forget], task.y_train[forget]
        z_r, z_f = z_all[retain], z_all[forget]
        t0 = time.perf_counter()
        retrain = trained(x_r, y_r)
        models, times, extra = {"original": original, "retrain": retrain}, {"original": original_time}, {}
        times["retrain"] = time.perf_counter() - t0

        for name in ("finetune", "gradient_ascent", "random_relabel"):   # the registered methods, as they are
            info = get_method(name)
            ctx = Context(model=copy.deepcopy(original).requires_grad_(True), original=original,
                          retain=_split(x_r, y_r), forget=_split(x_f, y_f), val=_split(x_r[:0], y_r[:0]),
                          theta0=theta0, make_model=lambda: copy.deepcopy(init), train_config=train_cfg,
                          num_classes=task.spec.num_classes, device=torch.device("cpu"),
                          generator=new_generator(name, ratio), seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(seed, "exactness-global", name, ratio))
                t0 = time.perf_counter()
                models[name] = info.fn(ctx, info.resolve(None, "random")).requires_grad_(False)
                times[name] = time.perf_counter() - t0

        y_r_coded = original.encode_targets(y_r)
        with torch.random.fork_rng(devices=[]):   # an independent random linear model on the same features
            torch.manual_seed(derive_seed(seed, "bad-teacher", ratio))
            teacher = torch.randn_like(w0) * w0.std()
        t0 = time.perf_counter()
        models["bad_teacher_labels"] = trained(torch.cat([x_r, x_f]), torch.cat([y_r_coded, z_f @ teacher]), original)
        times["bad_teacher_labels"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        muso_labels = optimal_labels(z_f, z_r, y_r_coded, w0)            # label form: Z_f w_r, no retraining
        labels_time = time.perf_counter() - t0
        label_free = optimal_labels_label_free(z_f, z_r, w0, wp)         # uses y_r = Z_r w_p instead of labels
        extra["muso"] = float(torch.linalg.norm(muso_labels - label_free) / torch.linalg.norm(muso_labels))
        t0 = time.perf_counter()
        models["muso_forget_only"] = trained(x_f, muso_labels, original)
        times["muso_forget_only"] = labels_time + time.perf_counter() - t0
        t0 = time.perf_counter()
        models["muso"] = trained(torch.cat([x_r, x_f]), torch.cat([y_r_coded, muso_labels]), original)
        times["muso"] = labels_time + time.perf_counter() - t0

        reference = parameters_of(retrain)
        for name in METHODS:
            model = models[name]
            dist, rel = M.param_distance(parameters_of(model), reference)
            rows.append({
                "dataset": task.name, "forget_ratio": ratio, "seed": seed, "method": name,
                "param_dist": dist, "param_dist_rel": rel,
                "test_acc": M.accuracy(predict(model, task.x_test), task.y_test.numpy()),
                "forget_acc": M.accuracy(predict(model, x_f), y_f.numpy()),
                "retain_acc": M.accuracy(predict(model, x_r), y_r.numpy()),
                "n_retain": len(retain), "n_forget": len(forget), "features": features, "sigma": init.sigma,
                "kernel_cond": kernel_cond, "label_forms_rel_diff": extra.get(name, math.nan),
                "seconds": times[name]})
        muso_rel = next(r["param_dist_rel"] for r in rows[-len(METHODS):] if r["method"] == "muso")
        log(f"  {task.name} ratio={ratio} seed={seed}: MUSO ‖θ−θr‖/‖θr‖ = {muso_rel:.2e}")
    return rows


# ---- real iterates: GD and SGD in the dual ------------------------------------------
def convergence(task: Task, ratio: float, seed: int, features: int, sigma: float | None,
                gd_steps: int = 3000, sgd_epochs: int = 100) -> list[dict]:
    """Distance to the closed-form ``w_r`` of real GD (step 1/λ_max) and
    per-sample SGD (step 1 = 1/‖z_i‖², random order) iterates, for Retrain
    (from ``w₀`` on D_r) and for MUSO (from ``w_p`` on D_r ∪ relabelled D_f).
    Iterates live in the dual, ``w = w_start + Zᵀα``, so a step costs O(N²C)."""
    import numpy as np
    import torch

    from unlearnbench.datasets.splits import random_forget
    from unlearnbench.methods import least_squares_limit
    from unlearnbench.methods.muso import optimal_labels

    from ..models import build_model
    from ..protocol.spec import derive_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        model = build_model("rf_linear", task.spec, {"features": features, "sigma": sigma, "targets": task.targets})
    labels = task.y_train.numpy()
    forget = torch.as_tensor(random_forget(labels, ratio, derive_seed(seed, "forget", ratio)))
    retain = torch.as_tensor(np.setdiff1d(np.arange(len(labels)), forget.numpy()))
    z = model.features(task.x_train)
    y = model.encode_targets(task.y_train)
    w0 = model.head.weight.detach().T.double()
    wp = least_squares_limit(z, y, w0)
    wr = least_squares_limit(z[retain], y[retain], w0)
    eig = torch.linalg.eigvalsh(z @ z.T)
    cond = float(eig[-1] / eig[0])
    muso_targets = torch.cat([y[retain], optimal_labels(z[forget], z[retain], y[retain], w0)])
    z_muso = torch.cat([z[retain], z[forget]])
    runs = {"retrain": (z[retain], y[retain], w0), "muso": (z_muso, muso_targets, wp)}
    norm = float(torch.linalg.norm(wr))
    rows = []
    base = {"dataset": task.name, "forget_ratio": ratio, "seed": seed, "sigma": model.sigma, "kernel_cond": cond}
    gd_log = sorted({0, *np.unique(np.geomspace(1, gd_steps, 25).astype(int)).tolist()})
    sgd_log = sorted({0, *np.unique(np.geomspace(1, sgd_epochs, 15).astype(int)).tolist()})
    for run, (zz, t, start) in runs.items():
        gram = zz @ zz.T
        offset = zz @ start - t                       # residual at α = 0
        distance = lambda a: float(torch.linalg.norm(start + zz.T @ a - wr)) / norm
        # GD on ½‖Zw − T‖² with step 1/λ_max: α ← α − η(Kα + offset)
        step = 1.0 / float(torch.linalg.eigvalsh(gram)[-1])
        alpha = torch.zeros_like(t)
        for k in range(gd_steps + 1):
            if k in gd_log:
                rows.append({**base, "run": run, "algorithm": "GD", "step": k, "param_dist_rel": distance(alpha)})
            alpha -= step * (gram @ alpha + offset)
        # per-sample SGD, step 1 (= 1/‖z_i‖²: each step fits sample i exactly), one random order per epoch
        alpha = torch.zeros_like(t)
        residual = offset.clone()
        generator = torch.Generator().manual_seed(derive_seed(seed, "sgd-order"))
        n = len(t)
        for epoch in range(sgd_epochs + 1):
            if epoch in sgd_log:
                rows.append({**base, "run": run, "algorithm": "SGD", "step": epoch * n,
                             "param_dist_rel": distance(alpha)})
            if epoch == sgd_epochs:
                break
            for i in torch.randperm(n, generator=generator).tolist():
                delta = residual[i] / gram[i, i]
                alpha[i] -= delta
                residual -= gram[:, i, None] * delta
    return rows


# ---- command and leaderboard section ------------------------------------------------
def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    import io

    from ..protocol.records import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(path, buf.getvalue())


def run_exactness(out, datasets=DEFAULT_TASKS, ratios=DEFAULT_RATIOS, seeds=DEFAULT_SEEDS,
                  features=D.EXACTNESS_FEATURES, sigma=None, convergence_sigma=D.EXACTNESS_CONVERGENCE_SIGMA,
                  data_root=None, log=print) -> tuple[Path, Path | None]:
    """Run the experiment; returns the paths of the two CSV files written."""
    tasks = [load_task(name, data_root) for name in datasets]   # bad names / missing data fail before any work
    rows = []
    for task in tasks:
        for seed in seeds:
            rows += run_config(task, ratios, seed, features, sigma, log)
    out = Path(out)
    write_csv(out / "exactness.csv", rows, COLUMNS)
    conv_path = None
    if convergence_sigma:   # on the smallest task: per-sample SGD is a Python loop
        task = next((t for t in tasks if t.name == CONVERGENCE_TASK), tasks[0])
        conv = []
        for s in (convergence_sigma, sigma):
            log(f"  iterates: GD and SGD on {task.name}, sigma={'default' if s is None else s}")
            conv += convergence(task, ratios[0], seeds[0], features, s)
        conv_path = out / "exactness_convergence.csv"
        write_csv(conv_path, conv, CONVERGENCE_COLUMNS)
    return out / "exactness.csv", conv_path


def verdict(df) -> list[str]:
    """The target, checked: MUSO ≤ 1e-6 on every row, every other method (Retrain aside) ≥ 1e-2."""
    muso = df[df["method"] == "muso"]
    others = df[~df["method"].isin(["muso", "retrain"])]
    worst = muso.loc[muso["param_dist_rel"].idxmax()]
    closest = others.loc[others["param_dist_rel"].idxmin()]
    where = lambda r: f"{r['dataset']}, forget {r['forget_ratio']:g}, seed {int(r['seed'])}"
    return [
        f"- MUSO, largest ‖θ−θr‖/‖θr‖ over all {len(muso)} rows: **{worst['param_dist_rel']:.2e}** ({where(worst)}; "
        f"target ≤ {TARGET_MUSO:g}: {'met' if worst['param_dist_rel'] <= TARGET_MUSO else 'MISSED'}).",
        f"- Every other method (Retrain aside), smallest: **{closest['param_dist_rel']:.3g}** "
        f"({METHODS.get(closest['method'], closest['method'])}, {where(closest)}; target ≥ {TARGET_OTHERS:g}: "
        f"{'met' if closest['param_dist_rel'] >= TARGET_OTHERS else 'MISSED'}).",
    ]


def leaderboard_section(out) -> str | None:
    """Markdown for leaderboard.md, from ``<out>/exactness.csv`` (None if absent)."""
    import pandas as pd

    path = Path(out) / "exactness.csv"
    if not path.exists():
        return None
    df = pd.read_csv(path)
    if df.empty:
        return None
    first = df.iloc[0]
    lines = [
        "MUSO's theorem on the over-parameterised linear model `rf_linear` (random Fourier features, "
        f"M = {int(first['features'])}, squared loss, every model trained to the limit of SGD, float64). "
        "Relative parameter distance to the same-init Retrain model, ‖θ−θr‖/‖θr‖, mean over seeds "
        "(max for MUSO); TA / FA in %, mean over seeds and forget ratios. "
        f"Reproduce with `unlearnbench exactness` (writes `{Path(out).as_posix()}/exactness.csv`).", "",
    ] + verdict(df) + [""]
    order = list(TASKS)
    cells = sorted({(r.dataset, r.forget_ratio) for r in df.itertuples()},
                   key=lambda c: (order.index(c[0]) if c[0] in TASKS else 99, c[1]))
    header = ["method"] + [f"{d} {ratio * 100:g}%" for d, ratio in cells] + \
        [f"{d} TA / FA" for d in dict.fromkeys(d for d, _ in cells)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, label in METHODS.items():
        sub = df[df["method"] == method]
        if sub.empty:
            continue
        row = [label if method not in ("original", "retrain") else f"**{label}**"]
        for d, ratio in cells:
            vals = sub[(sub["dataset"] == d) & (sub["forget_ratio"] == ratio)]["param_dist_rel"]
            value = vals.max() if method == "muso" else vals.mean()
            row.append("0" if value == 0 else f"{value:.2e}" if value < 1e-3 else f"{value:.3g}")
        for d in dict.fromkeys(d for d, _ in cells):
            s = sub[sub["dataset"] == d]
            row.append(f"{s['test_acc'].mean():.1f} / {s['forget_acc'].mean():.1f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    labels = ", ".join(f"{d}: σ = {df[df['dataset'] == d]['sigma'].iloc[0]:.3g}, "
                       f"cond(ZZᵀ) ≤ {df[df['dataset'] == d]['kernel_cond'].max():.1e}"
                       for d in dict.fromkeys(df["dataset"]))
    lines.append(f"Kernels: {labels}. Label form and label-free form of MUSO's labels agree to "
                 f"{df['label_forms_rel_diff'].max():.1e} (relative). FT and GA stay at the Original: at the "
                 "limit of SGD the Original interpolates every training target, so the squared loss on D_r (FT) "
                 "and on D_f (GA) has zero gradient there.")
    conv_path = Path(out) / "exactness_convergence.csv"
    if conv_path.exists():
        lines += ["", convergence_markdown(pd.read_csv(conv_path))]
    return "\n".join(lines) + "\n"


def convergence_markdown(conv) -> str:
    """Real iterates: distance to the closed-form w_r after some steps."""
    first = conv.iloc[0]
    lines = [f"Real iterates ({first['dataset']}, forget {first['forget_ratio']:g}, seed {int(first['seed'])}): "
             "‖w_t − w_r‖/‖w_r‖ of GD (step 1/λ_max) and per-sample SGD (step 1) in the dual, "
             "for Retrain (from w₀ on D_r) and MUSO (from w_p on D_r ∪ relabelled D_f).", ""]
    lines += ["| σ (cond ZZᵀ) | run | algorithm | distance after steps |", "|---|---|---|---|"]
    for (sigma, run, alg), g in conv.groupby(["sigma", "run", "algorithm"], sort=False):
        g = g.sort_values("step")
        picks = sorted({0, len(g) // 3, 2 * len(g) // 3, len(g) - 1})
        cells = ", ".join(f"{int(g['step'].iloc[i])}: {g['param_dist_rel'].iloc[i]:.1e}" for i in picks)
        lines.append(f"| {sigma:.3g} ({g['kernel_cond'].iloc[0]:.1e}) | {run} | {alg} | {cells} |")
    return "\n".join(lines) + "\n"
