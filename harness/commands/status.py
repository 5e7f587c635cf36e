"""``unlearnbench status``: done / running / failed / missing runs of a results folder."""
from __future__ import annotations

import argparse

from .. import defaults as D
from .options import results_folder

NAME = "status"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help="done / running / failed / missing runs of a results folder, and the "
                                         "failures")
    p.add_argument("--out", default=D.RESULTS, help=f"results folder (default: {D.RESULTS})")
    p.add_argument("--cache-dir", dest="cache_dir", help="reference-model cache, for its quarantined entries "
                                                         "(default: OUT/cache)")
    return p


def run(args) -> int:
    from ..cluster.status import collect

    results_folder(args.out)
    print(collect(args.out, cache_dir=args.cache_dir).format())
    return 0
