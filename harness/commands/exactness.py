"""``unlearnbench exactness``: MUSO's theorem on real data (harness/studies/exactness.py)."""
from __future__ import annotations

import argparse
import sys
import time

from .. import defaults as D

NAME = "exactness"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="MUSO's theorem on real data: rf_linear, every method's parameter "
                                         "distance to Retrain (writes OUT/exactness.csv)")
    p.add_argument("--out", default=D.RESULTS, help=f"folder for exactness.csv (default: {D.RESULTS})")
    p.add_argument("--datasets", help="digits, digits_3v7, fashion_mnist (default: all three)")
    p.add_argument("--ratios", help="forget ratios (default: 0.05,0.1,0.3)")
    p.add_argument("--seeds", help="seeds (default: 0,1,2)")
    p.add_argument("--features", type=int, default=D.EXACTNESS_FEATURES,
                   help=f"random features M (default: {D.EXACTNESS_FEATURES})")
    p.add_argument("--sigma", type=float, help="RFF bandwidth on normalised inputs (default: √input-dim)")
    p.add_argument("--convergence-sigma", type=float, default=D.EXACTNESS_CONVERGENCE_SIGMA, dest="convergence_sigma",
                   help="well-conditioned bandwidth for the GD/SGD iterates table; 0 skips it "
                        f"(default: {D.EXACTNESS_CONVERGENCE_SIGMA:g})")
    p.add_argument("--data-root", dest="data_root", help="folder holding the Fashion-MNIST files")
    return p


def run(args) -> int:
    import pandas as pd

    from ..errors import UsageError
    from ..protocol.config import parse_list
    from ..protocol.threads import set_threads
    from ..studies import exactness as E

    datasets = parse_list(args.datasets, str, "--datasets") if args.datasets else E.DEFAULT_TASKS
    ratios = parse_list(args.ratios, float, "--ratios") if args.ratios else E.DEFAULT_RATIOS
    seeds = parse_list(args.seeds, int, "--seeds") if args.seeds else E.DEFAULT_SEEDS
    for name in datasets:
        if name not in E.TASKS:
            raise UsageError(f"unknown exactness dataset {name!r}; accepted: {', '.join(E.TASKS)}")
    if any(not 0.0 < r < 1.0 for r in ratios):
        raise UsageError(f"forget ratios {args.ratios!r} must lie strictly between 0 and 1")
    if any(s < 0 for s in seeds):
        raise UsageError(f"seeds {args.seeds!r} must be non-negative integers")
    if args.features < 2 or args.features % 2:
        raise UsageError(f"--features {args.features} must be an even number >= 2")
    if args.sigma is not None and not args.sigma > 0:
        raise UsageError(f"--sigma {args.sigma} must be positive")
    set_threads()
    start = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)
    csv_path, conv_path = E.run_exactness(args.out, datasets, ratios, seeds, args.features, args.sigma,
                                          args.convergence_sigma, args.data_root, log)
    for line in E.verdict(pd.read_csv(csv_path)):
        print(line.replace("**", ""))
    print(f"wrote {csv_path}" + (f" and {conv_path}" if conv_path else "")
          + f" in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0
