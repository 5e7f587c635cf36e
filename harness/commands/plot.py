"""``unlearnbench plot``: the figures of a results folder (seaborn)."""
from __future__ import annotations

import argparse

from .. import defaults as D
from .options import results_folder

NAME = "plot"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="draw the figures of the records in OUT to OUT/figures/*.png (seaborn)")
    p.add_argument("--out", default=D.RESULTS, help=f"results folder (default: {D.RESULTS})")
    return p


def run(args) -> int:
    from ..report.figures import write_figures

    results_folder(args.out, need_records=True)
    for path, _, panels in write_figures(args.out):
        print(f"wrote {path} ({panels} panels)")
    return 0
