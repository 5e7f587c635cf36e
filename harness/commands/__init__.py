"""The commands of ``unlearnbench``, one module each: ``add_parser(subparsers)``
builds its parser (argparse only: no torch at start-up), ``run(args)`` does
the work and returns the exit status (imports happen there)."""
from __future__ import annotations

import importlib

# In the order `unlearnbench --help` lists them.
MODULES = ("run", "reproduce", "sweep", "status", "forgetting_quality", "per_example", "tune", "list", "leaderboard",
           "exactness", "plot", "submit")


def modules() -> list:
    return [importlib.import_module(f"{__name__}.{name}") for name in MODULES]
