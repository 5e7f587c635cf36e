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
    from ..models import get_model, list_models, model_origin
    from ..protocol.spec import SCENARIOS

    try:   # every registry first, so that a broken plugin stops the listing before it starts
        names, datasets, models = list_methods(), D.list_datasets(), list_models()
    except (UnknownMethod, D.UnknownName) as e:
        raise UsageError(str(e)) from None
    print("methods:")
    for name in names:
        info = get_method(name)
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
        origin = method_origin(name)
        print(f"  {name:18s} {info.summary}" + (f"  [{defaults}]" if defaults else "")
              + ("" if origin == "built-in" else f"  ({origin})"))
    print("datasets:")
    for name in datasets:
        origin = D.dataset_origin(name)
        print(f"  {name:18s} {D.dataset_summary(name)}" + ("" if origin == "built-in" else f"  ({origin})"))
    print("models:")
    for name in models:
        origin = model_origin(name)
        print(f"  {name:18s} {get_model(name).summary}" + ("" if origin == "built-in" else f"  ({origin})"))
    print("scenarios:")
    print("  " + ", ".join(SCENARIOS))
    return 0
