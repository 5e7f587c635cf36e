"""Tune a method's hyperparameters on the validation split — never the test set.

For every combination of the ``--grid`` values, runs the method on the
default benchmark's scenarios (or ``--scenarios``/``--ratios``/``--classes``)
and seeds, and scores it by the SalUn Avg. Gap to the same-init Retrain model
(UA, RA, TA, MIA-efficacy) with the validation split standing in for the test
set: accuracy on it, and it as the MIA's non-members.  Reference models come
from (and go to) the usual cache, so a rerun costs only the method runs.

    .venv/bin/python scripts/tune_on_val.py --method muso --seeds 0,1 \
        --grid lr=1e-4,3e-4,1e-3 --grid epochs=2,5 --out /tmp/tune

Prints one line per candidate and scenario, then the best candidate per
scenario kind; writes every score to OUT/tune-METHOD.csv.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import time
from pathlib import Path

import torch

from unlearnbench.harness.config import Grid, expand
from unlearnbench.harness.evaluate import Outputs, standalone_metrics
from unlearnbench.harness.metrics import SALUN_GAP, avg_gap
from unlearnbench.harness.runner import Harness
from unlearnbench.harness.spec import derive_seed
from unlearnbench.methods import get_method


def validation_metrics(harness: Harness, spec, model) -> dict:
    split = harness.splits(spec)
    outputs = Outputs.of(model, {"retain": split["retain"].tensors, "forget": split["forget"].tensors,
                                 "test": split["val"].tensors})   # validation in the test set's place
    return standalone_metrics(outputs, harness._forget_class(spec))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="values to try (repeatable)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--scenarios", default="random,class")
    p.add_argument("--ratios", default="0.1,0.5")
    p.add_argument("--classes", default="0")
    p.add_argument("--datasets", default="digits")
    p.add_argument("--models", default="mlp")
    p.add_argument("--out", default="/tmp/unlearnbench-tune")
    args = p.parse_args(argv)
    torch.set_num_threads(len(os.sched_getaffinity(0)))

    info = get_method(args.method)
    axes = {}
    for item in args.grid:
        key, _, values = item.partition("=")
        axes[key] = values.split(",")
    grid = Grid(datasets=args.datasets.split(","), models=args.models.split(","),
                scenarios=args.scenarios.split(","), ratios=[float(r) for r in args.ratios.split(",")],
                classes=[int(c) for c in args.classes.split(",")], methods=[args.method],
                seeds=[int(s) for s in args.seeds.split(",")], out=args.out)
    harness = Harness(out=args.out)
    rows = []
    retrain_metrics = {}
    for spec in expand(grid):
        refs = harness.references(spec)
        key = (spec.dataset, spec.model, spec.scenario.label, spec.seed)
        retrain_metrics[key] = validation_metrics(harness, spec, refs.retrain)
        for values in itertools.product(*axes.values()):
            overrides = dict(zip(axes, values))
            hyper = info.resolve(overrides, spec.scenario.kind)
            generator = torch.Generator().manual_seed(derive_seed(spec.seed, "unlearn", spec.method))
            torch.manual_seed(derive_seed(spec.seed, "unlearn-global", spec.method))
            ctx = harness._context(spec, refs.original, refs.theta0, harness.splits(spec), generator)
            t0 = time.perf_counter()
            try:
                model = info.fn(ctx, hyper)
                own = validation_metrics(harness, spec, model)
                gap = avg_gap(own, retrain_metrics[key], SALUN_GAP)
            except Exception as e:  # a diverging candidate scores inf
                own, gap = {}, float("inf")
                print(f"  {overrides}: {type(e).__name__}: {e}", file=sys.stderr)
            row = {"dataset": spec.dataset, "model": spec.model, "scenario": spec.scenario.label,
                   "kind": spec.scenario.kind, "seed": spec.seed, **overrides, "val_gap": gap,
                   **{f"{m}": own.get(m) for m in SALUN_GAP}, "seconds": time.perf_counter() - t0}
            rows.append(row)
            print(f"{spec.scenario.label:12s} seed={spec.seed} {overrides} gap={gap:.2f}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"tune-{args.method}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for kind in sorted({r["kind"] for r in rows}):
        scores: dict = {}
        for r in rows:
            if r["kind"] == kind:
                scores.setdefault(tuple((k, r[k]) for k in axes), []).append(r["val_gap"])
        ranked = sorted(scores.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))
        print(f"\n{kind}: best of {len(ranked)} (mean validation gap over scenarios × seeds)")
        for cand, gaps in ranked[:5]:
            print(f"  {dict(cand)}  {sum(gaps) / len(gaps):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
