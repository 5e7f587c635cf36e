"""How much `mia_loss_cv` varies with its truncation subsample, one draw vs the average of D.

For each model (seed 0 of the default tables: the Original and Retrain references, and any --methods), the
single-subsample score is computed for subsample seeds 0..K-1 (``draws=1``); its standard deviation over
those K values is the one-draw noise.  A D-subsample average is distributed as the mean of D independent
single draws, so its standard deviation is measured over the K/D disjoint blocks of D of them.

    python scripts/mia_subsample_noise.py --out results --draws 500     # reuses the cached reference models
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from unlearnbench.harness.metrics import definitions as M
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder whose cache holds the reference models")
    parser.add_argument("--draws", type=int, default=200, help="single-subsample scores per model (K)")
    parser.add_argument("--methods", default="original,retrain")
    args = parser.parse_args()
    harness = Harness(out=Path(args.out))
    print("| table | model | n per side | mean | σ, 1 subsample (max deviation) | σ, mean of 5 | σ, mean of 10 "
          "(max deviation) | σ, mean of 20 |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in expand(Grid(seeds=[0], methods=args.methods.split(","), out=args.out)):
        model, _ = harness.unlearn(spec, harness.references(spec))
        out = harness.outputs(spec, model)
        forget = M.cross_entropy_loss(out.probs["forget"], out.labels["forget"])
        test = M.cross_entropy_loss(out.probs["test"], out.labels["test"])
        single = np.array([M.mia_loss_cv(forget, test, seed=s, draws=1) for s in range(args.draws)])
        mean = single.mean()
        cells = []
        for d in (1, 5, 10, 20):
            blocks = single[: len(single) // d * d].reshape(-1, d).mean(axis=1)
            dev = f" ({np.abs(blocks - mean).max():.1f})" if d in (1, 10) else ""
            cells.append(f"{blocks.std(ddof=1):.2f}{dev}")
        print(f"| {spec.scenario.label} | {spec.method} | {min(len(forget), len(test))} | {mean:.1f} | "
              + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
