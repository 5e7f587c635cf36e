"""Unlearning methods: one file per method, each registered by name.

    >>> from unlearnbench.methods import list_methods, get_method
    >>> get_method("finetune").defaults()

Every module in this package whose name does not start with ``_`` is
imported on first use, so adding a method is adding one file.  Methods of
installed packages (entry-point group ``unlearnbench.methods``) are
discovered by ``list_methods()`` / ``get_method()``; see
docs/adding-a-method.md.
"""
from __future__ import annotations

import importlib
import pkgutil

# What the harness uses besides the method API: typed values, checkpoints, durable writes, mixed precision, the
# model losses
from ._api import (
    ENTRY_POINT_GROUP,
    Bounds,
    Choice,
    Context,
    IntRange,
    LogUniform,
    MethodImportError,
    MethodInfo,
    Split,
    Uniform,
    UnknownMethod,
    bounded,
    coerce,
    discover_methods,
    get_method,
    list_methods,
    method_origin,
    register_method,
    unregister_method,
)
from ._checkpoint import auto_checkpoint
from ._files import WriteError, append_line, fsync_dir, make_dirs, remove_stale_temporaries, write_atomic
from ._linear import least_squares_limit
from ._plugins import load_entry_points
from ._train import Diverged, TrainConfig, autocast, cross_entropy, fit, set_autocast, squared_loss, supervised_loss

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ENTRY_POINT_GROUP", "Bounds", "Choice", "Context", "Diverged", "IntRange", "LogUniform",
           "MethodImportError", "MethodInfo", "Split", "TrainConfig", "Uniform", "UnknownMethod", "bounded",
           "cross_entropy", "discover_methods", "fit", "get_method", "list_methods", "method_origin",
           "register_method", "supervised_loss", "unregister_method"]
__all__ += ["WriteError", "append_line", "auto_checkpoint", "autocast", "coerce", "fsync_dir", "least_squares_limit",
            "load_entry_points", "make_dirs", "remove_stale_temporaries", "set_autocast", "squared_loss",
            "write_atomic"]
