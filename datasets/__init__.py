"""Datasets as in-memory tensors, and the seeded splits built on them.

    >>> from unlearnbench.datasets import load_dataset, list_datasets
    >>> ds = load_dataset("digits")

Each loader is one module with a ``load(root=None, download=False)``
function; the table below maps the public name to it.
"""
from __future__ import annotations

import importlib
import sys

from ._base import DataError, Dataset, UnknownName

# name -> (module, number of classes, one-line description)
DATASETS: dict[str, tuple[str, int, str]] = {
    "digits": ("digits", 10, "scikit-learn 8x8 digits, 1,797 images, embedded (no download)"),
    "fashion_mnist": ("fashion_mnist", 10, "Fashion-MNIST 28x28, 60k/10k, IDX files"),
}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def check_name(name: str) -> None:
    if name not in DATASETS:
        raise UnknownName(f"unknown dataset {name!r}; accepted: {', '.join(list_datasets())}")


def num_classes(name: str) -> int:
    check_name(name)
    return DATASETS[name][1]


def load_dataset(name: str, root=None, download: bool = False) -> Dataset:
    """Load a dataset by name. ``root`` overrides the loader's default folder."""
    check_name(name)
    # An audit event (PEP 578) lets the harness refuse loads made by a method while it unlearns.
    sys.audit("unlearnbench.datasets.load", name)
    module = importlib.import_module(f"{__name__}.{DATASETS[name][0]}")
    return module.load(root=root, download=download)


__all__ = ["DataError", "Dataset", "UnknownName", "DATASETS", "list_datasets", "load_dataset", "num_classes"]
