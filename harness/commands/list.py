"""``unlearnbench list``: registered methods, datasets, models and scenarios."""
from __future__ import annotations

import argparse

NAME = "list"


def add_parser(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(NAME, help="list registered methods, datasets, models and scenarios")


def run(args) -> int:
    from unlearnbench import datasets as D
    from unlearnbench.methods import UnknownMethod, get_method, list_methods, method_origin

    from ..errors import UsageError
    from ..models import get_model, list_models
    from ..protocol.spec import SCENARIOS

    try:
        names = list_methods()
    except UnknownMethod as e:   # a broken plugin
        raise UsageError(str(e)) from None
    print("methods:")
    for name in names:
        info = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
        origin = method_origin(name)
        print(f"  {name:18s} {info.summary}" + (f"  [{defaults}]" if defaults else "")
              + ("" if origin == "built-in" else f"  ({origin})"))
    print("datasets:")
    for name in D.list_datasets():
        print(f"  {name:18s} {D.DATASETS[name][2]}")
    print("models:")
    for name in list_models():
        print(f"  {name:18s} {get_model(name).summary}")
    print("scenarios:")
    print("  " + ", ".join(SCENARIOS))
    return 0
