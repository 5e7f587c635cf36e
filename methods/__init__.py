"""Unlearning methods: one file per method, each registered by name.

    >>> from unlearnbench.methods import list_methods, get_method
    >>> get_method("finetune").defaults()

Every module in this package whose name does not start with ``_`` is
imported on first use, so adding a method is adding one file.
"""
from __future__ import annotations

import importlib
import pkgutil

from ._api import (Choice, Context, IntRange, LogUniform, MethodInfo, Split, Uniform, UnknownMethod, get_method,
                   list_methods, register_method, unregister_method)
from ._train import Diverged, TrainConfig, cross_entropy, fit, supervised_loss

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Choice", "Context", "Diverged", "IntRange", "LogUniform", "MethodInfo", "Split", "TrainConfig",
           "Uniform", "UnknownMethod", "cross_entropy", "fit", "get_method", "list_methods", "register_method",
           "supervised_loss", "unregister_method"]
