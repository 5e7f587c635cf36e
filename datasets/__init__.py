"""Datasets as in-memory tensors, and the seeded splits built on them.

    >>> from unlearnbench.datasets import load_dataset, list_datasets
    >>> ds = load_dataset("digits")

Each loader is one module with a ``load(root=None, download=False)``
function and its ``CLASS_NAMES`` (known without reading any file, so a grid
can name classes before loading); the table below maps the public name to it.
Files are looked for under ``root`` (``--data-root``, default ``./data``).
"""
from __future__ import annotations

import importlib
import sys

from ._base import DataError, Dataset, UnknownName

# name -> (module, number of classes, one-line description)
DATASETS: dict[str, tuple[str, int, str]] = {
    "digits": ("digits", 10, "scikit-learn 8x8 digits, 1,797 images, embedded (no download)"),
    "fashion_mnist": ("fashion_mnist", 10, "Fashion-MNIST 28x28, 60k/10k, IDX files (Debian package or torchvision)"),
    "mnist": ("mnist", 10, "MNIST 28x28, 60k/10k, torchvision"),
    "cifar10": ("cifar10", 10, "CIFAR-10 32x32 RGB, 50k/10k, torchvision"),
    "cifar100": ("cifar100", 100, "CIFAR-100 32x32 RGB, 50k/10k, 100 fine classes, torchvision"),
    "cifar20": ("cifar20", 20, "CIFAR-100 images with the 20 superclass labels (fine labels kept), torchvision"),
    "svhn": ("svhn", 10, "SVHN cropped digits 32x32 RGB, 73k/26k, torchvision"),
}


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def check_name(name: str) -> None:
    if name not in DATASETS:
        raise UnknownName(f"unknown dataset {name!r}; accepted: {', '.join(list_datasets())}")


def num_classes(name: str) -> int:
    check_name(name)
    return DATASETS[name][1]


def _module(name: str):
    check_name(name)
    return importlib.import_module(f"{__name__}.{DATASETS[name][0]}")


def class_names(name: str) -> tuple[str, ...]:
    """The class names, in label order, without reading the data."""
    return tuple(_module(name).CLASS_NAMES)


def subclass_names(name: str) -> tuple[str, ...] | None:
    """Names of the fine classes inside the labels (``cifar20``), or None."""
    names = getattr(_module(name), "SUBCLASS_NAMES", None)
    return tuple(names) if names is not None else None


def load_dataset(name: str, root=None, download: bool = False) -> Dataset:
    """Load a dataset by name. ``root`` overrides the loader's default folder."""
    # An audit event (PEP 578) lets the harness refuse loads made by a method while it unlearns.
    sys.audit("unlearnbench.datasets.load", name)
    return _module(name).load(root=root, download=download)


__all__ = ["DataError", "Dataset", "UnknownName", "DATASETS", "class_names", "list_datasets", "load_dataset",
           "num_classes", "subclass_names"]
