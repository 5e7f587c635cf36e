"""Measure each method's working window on the tuning protocol.

For every tunable method and table of a grid (default: the default benchmark's),
sweep the method's strength knob (``lr``; SSD: ``alpha``) over a log grid, at
its registered defaults and, where ``epochs`` is searched, also at the top of
its epoch range, on one validation seed (``Harness(evaluate_on="val")``, as
``unlearnbench tune`` scores trials).  Each point records whether the run was
a no-op (it left the Original unchanged), whether it collapsed (retain
accuracy below the collapse bound), or failed (diverged), and its validation
Avg. Gap.  The window is [the smallest value that changes the model, the
largest value that neither collapses nor fails]; the search spaces in methods/
are chosen to span it (docs/metrics.md, "Tuning").

    .venv/bin/python scripts/tuning_windows.py --out results/tuning_windows.json [--methods a,b] [--jobs 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

LR_GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
ALPHA_GRID = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]   # SSD: selection threshold (lower damps more)


def knob(method: str) -> tuple[str, list[float]]:
    return ("alpha", ALPHA_GRID) if method == "ssd" else ("lr", LR_GRID)


def probe(method: str, out: str, seed: int) -> list[dict]:
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.runner import Harness
    from unlearnbench.harness.protocol.threads import set_threads
    from unlearnbench.harness.tuning.tune import tables_of, trial_grid
    from unlearnbench.methods import get_method

    set_threads(1)
    grid = dataclasses.replace(Grid(), out=out, tuned=False)
    harness = Harness.from_grid(grid, out=Path(out) / "runs", cache_dir=Path(out) / "cache", evaluate_on="val")
    info = get_method(method)
    name, values = knob(method)
    rows = []
    for table in tables_of(grid, method):
        scenario = table[2]
        epoch_levels = [None]
        if "epochs" in info.search_space:
            epoch_levels.append(info.search_space["epochs"].high)
        for epochs in epoch_levels:
            for value in values:
                args = {name: value} if epochs is None else {name: value, "epochs": epochs}
                spec = expand(trial_grid(grid, table, method, [seed], args))[0]
                record = harness.run(spec)
                flags = record.get("flags", {})
                m = record.get("metrics", {})
                rows.append({"method": method, "scenario": scenario.label, "knob": name, "value": value,
                             "epochs": epochs if epochs is not None else info.defaults(scenario.kind).get("epochs"),
                             "status": record["status"], "avg_gap": m.get("avg_gap"),
                             "retain_acc": m.get("retain_acc"), "forget_acc": m.get("forget_acc"),
                             "noop": flags.get("noop"), "collapsed": flags.get("collapsed"),
                             "rel_dist": flags.get("param_dist_original_rel")})
                print(f"{method} {scenario.label} {name}={value} epochs={rows[-1]['epochs']}: {record['status']} "
                      f"gap={m.get('avg_gap')} noop={flags.get('noop')} collapsed={flags.get('collapsed')}",
                      file=sys.stderr, flush=True)
    return rows


def windows(rows: list[dict]) -> list[dict]:
    """Per method × table × epoch level: the smallest knob value that changes
    the model and the largest that neither collapses nor fails, and the best point."""
    out = []
    keys = sorted({(r["method"], r["scenario"], r["epochs"] or 0) for r in rows})
    for method, scenario, epochs in keys:
        pts = sorted((r for r in rows if (r["method"], r["scenario"], r["epochs"] or 0) == (method, scenario, epochs)),
                     key=lambda r: r["value"])
        ok = [r for r in pts if r["status"] == "ok" and not r["collapsed"]]
        acting = [r for r in ok if not r["noop"]]
        best = min(ok, key=lambda r: r["avg_gap"]) if ok else None
        out.append({"method": method, "scenario": scenario, "epochs": epochs, "knob": pts[0]["knob"],
                    "starts": acting[0]["value"] if acting else None,
                    "last_sound": ok[-1]["value"] if ok else None,
                    "first_broken": next((r["value"] for r in pts if r["status"] != "ok" or r["collapsed"]), None),
                    "best": best["value"] if best else None,
                    "best_gap": round(best["avg_gap"], 3) if best else math.nan})
    return out


def main() -> int:
    from unlearnbench.methods import get_method, list_methods

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/tuning_windows.json")
    p.add_argument("--work", default="results/cache/windows", help="records and cache of the probe runs")
    p.add_argument("--methods", default="all")
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    methods = ([m for m in list_methods() if get_method(m).reference is None] if args.methods == "all"
               else args.methods.split(","))
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = [r for part in pool.map(probe, methods, [args.work] * len(methods), [args.seed] * len(methods))
                for r in part]
    result = {"seed": args.seed, "protocol": "validation (evaluate_on='val'), registered defaults otherwise",
              "points": rows, "windows": windows(rows)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for w in result["windows"]:
        print(f"{w['method']:20s} {w['scenario']:11s} epochs={w['epochs']:<3} {w['knob']}: changes from {w['starts']}, "
              f"sound up to {w['last_sound']} (broken from {w['first_broken']}); best {w['best']} gap {w['best_gap']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
