"""Datasets as in-memory tensors, and the seeded splits built on them.

    >>> from unlearnbench.datasets import load_dataset, list_datasets
    >>> ds = load_dataset("digits")

Each built-in loader is one module with a ``load(root=None, download=False)``
function and its ``CLASS_NAMES`` (known without reading any file, so a grid
can name classes before loading); the table below maps the public name to it.
Files are looked for under ``root`` (``--data-root``, default ``./data``).

A dataset of your own registers its loader with :func:`register_dataset`, in
your code or in an installed package that names the module in the entry-point
group ``unlearnbench.datasets`` (docs/adding-a-dataset.md)::

    @register_dataset("my_data", class_names=("cat", "dog"), summary="my photos, 2 classes")
    def load(root=None, download=False) -> Dataset: ...
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from unlearnbench.methods import load_entry_points

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


ENTRY_POINT_GROUP = "unlearnbench.datasets"


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its loader and what is known without loading it."""

    name: str
    load: Callable[..., Dataset]                  # load(root=None, download=False) -> Dataset
    class_names: tuple[str, ...]
    summary: str
    subclass_names: tuple[str, ...] | None = None
    origin: str = "built-in"


_REGISTRY: dict[str, DatasetInfo] = {}
_LOADED_ENTRY_POINTS: set[tuple[str, str]] = set()
_PLUGINS: dict[str, str] = {}


def register_dataset(name: str, *, class_names, summary: str, subclass_names=None):
    """Decorator: register ``load(root=None, download=False) -> Dataset`` as dataset ``name``.

    ``class_names`` are the labels' names in label order (a grid names classes
    before any data is read); ``subclass_names``, the fine classes inside the
    labels for sub-class forgetting (``Dataset.extras["fine_labels"]``)."""
    if name in DATASETS:
        raise ValueError(f"dataset name {name!r} is a built-in dataset")
    names = tuple(str(c) for c in class_names)
    if len(names) < 2:
        raise ValueError(f"dataset {name!r}: class_names must name at least 2 classes, got {class_names!r}")

    def decorate(load):
        previous = _REGISTRY.get(name)
        if previous is not None and previous.load.__module__ != load.__module__:
            raise ValueError(f"dataset name {name!r} is already registered by {previous.load.__module__}")
        _REGISTRY[name] = DatasetInfo(name, load, names, summary,
                                      tuple(subclass_names) if subclass_names is not None else None,
                                      origin=load.__module__)
        return load

    return decorate


def unregister_dataset(name: str) -> None:
    _REGISTRY.pop(name, None)
    _PLUGINS.pop(name, None)
    for loaded in [ep for ep in _LOADED_ENTRY_POINTS if ep[0] == name]:
        _LOADED_ENTRY_POINTS.discard(loaded)


def discover_datasets() -> None:
    """Import the datasets installed packages declare in ``unlearnbench.datasets``."""
    _PLUGINS.update(load_entry_points(ENTRY_POINT_GROUP, "dataset", _REGISTRY.__contains__, _LOADED_ENTRY_POINTS,
                                      UnknownName))


def list_datasets() -> list[str]:
    discover_datasets()
    return sorted(DATASETS) + sorted(_REGISTRY)


def _builtin(name: str) -> DatasetInfo:
    module = importlib.import_module(f"{__name__}.{DATASETS[name][0]}")
    sub = getattr(module, "SUBCLASS_NAMES", None)
    return DatasetInfo(name, module.load, tuple(module.CLASS_NAMES), DATASETS[name][2],
                       tuple(sub) if sub is not None else None)


def get_dataset(name: str) -> DatasetInfo:
    """A dataset's entry (built-in, registered, or from an installed plugin)."""
    if name in DATASETS:
        return _builtin(name)
    if name not in _REGISTRY:
        discover_datasets()   # an installed plugin may provide it
    if name not in _REGISTRY:
        raise UnknownName(f"unknown dataset {name!r}; accepted: {', '.join(list_datasets())}")
    return _REGISTRY[name]


def dataset_origin(name: str) -> str:
    """"built-in", "plugin <dist> <version>" or the module that registered it."""
    return f"plugin {_PLUGINS[name]}" if name in _PLUGINS else get_dataset(name).origin


def dataset_summary(name: str) -> str:
    return DATASETS[name][2] if name in DATASETS else get_dataset(name).summary


def check_name(name: str) -> None:
    if name not in DATASETS:
        get_dataset(name)


def num_classes(name: str) -> int:
    return DATASETS[name][1] if name in DATASETS else len(get_dataset(name).class_names)


def class_names(name: str) -> tuple[str, ...]:
    """The class names, in label order, without reading the data."""
    return get_dataset(name).class_names


def subclass_names(name: str) -> tuple[str, ...] | None:
    """Names of the fine classes inside the labels (``cifar20``), or None."""
    return get_dataset(name).subclass_names


def load_dataset(name: str, root=None, download: bool = False) -> Dataset:
    """Load a dataset by name. ``root`` overrides the loader's default folder."""
    info = get_dataset(name)
    # An audit event (PEP 578) lets the harness refuse loads made by a method while it unlearns.
    sys.audit("unlearnbench.datasets.load", name)
    data = info.load(root=root, download=download)
    if not isinstance(data, Dataset):
        raise DataError(f"dataset {name!r}: its loader returned {type(data).__name__}, expected "
                        f"unlearnbench.datasets.Dataset")
    if tuple(data.class_names) != info.class_names:
        raise DataError(f"dataset {name!r}: the loaded class names {tuple(data.class_names)} differ from the "
                        f"registered ones {info.class_names}")
    return data


__all__ = ["DataError", "Dataset", "DatasetInfo", "UnknownName", "DATASETS", "class_names", "dataset_origin",
           "dataset_summary", "discover_datasets", "get_dataset", "list_datasets", "load_dataset", "num_classes",
           "register_dataset", "subclass_names", "unregister_dataset"]
