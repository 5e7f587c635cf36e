"""``unlearnbench leaderboard``: records → OUT/summary.csv and leaderboard.md, and the figures."""
from __future__ import annotations

import argparse

from .. import defaults as D
from .options import results_folder

NAME = "leaderboard"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="aggregate records into OUT/summary.csv and leaderboard.md, redraw the "
                                         "figures")
    p.add_argument("--out", default=D.RESULTS, help=f"results folder (default: {D.RESULTS})")
    p.add_argument("--leaderboard", metavar="FILE",
                   help="output path (default: leaderboard.md beside OUT when OUT is named 'results', "
                        "else OUT/leaderboard.md)")
    p.add_argument("--no-figures", action="store_true", help="do not redraw OUT/figures/*.png")
    return p


def run(args) -> int:
    from ..report.publish import publish

    results_folder(args.out, need_records=True)
    publish(args.out, args.leaderboard, figures=not args.no_figures)
    return 0
