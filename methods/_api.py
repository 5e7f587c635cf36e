"""The public method API: the context a method receives, the registry, and
hyperparameter handling.

A method is one function registered under a name, with its hyperparameters
as a dataclass of typed defaults::

    @dataclass
    class Hyper:
        epochs: int = 5
        lr: float = 0.01

    @register_method("finetune", hyper=Hyper)
    def finetune(ctx: Context, hp: Hyper) -> nn.Module:
        cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr)
        fit(ctx.model, cross_entropy, ctx.retain.tensors, cfg, ctx.generator)
        return ctx.model

The function receives ``ctx.model``, a private copy of the original model on
``ctx.device``, and returns the unlearned model (usually that same object).
It never sees the test set.  Every field of ``Hyper`` can be overridden from
the command line (``--method-arg finetune.lr=0.05``) or a TOML preset
(``[method_args.finetune]``); values are converted to the annotated type.

Where methods come from (see docs/adding-a-method.md):

- the files of this package (one file per method, imported on first use);
- installed packages, through the entry-point group ``unlearnbench.methods``
  (the entry point's name is the method's name, its value the module that
  registers it); :func:`list_methods` and :func:`get_method` discover them;
- a plain file or module handed to ``unlearnbench submit``.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import random
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ._bounds import Bounds, bounded, hyper_bounds  # noqa: F401  (the method files import them from here)
from ._plugins import load_entry_points
from ._train import TrainConfig


class UnknownMethod(ValueError):
    """An unknown method name or hyperparameter; the message lists what is accepted."""


class MethodImportError(UnknownMethod):
    """A method's code failed to import (an installed plugin or a submitted file)."""


@dataclass
class Split:
    """Images and labels of one split, on the run's device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.x, self.y)


@dataclass
class Context:
    """Everything an unlearning method may use.

    model:        copy of the original (trained) model; change it and return it
    original:     the original model itself, frozen (a teacher); do not modify
    retain/forget/val: the retain set D_r, the forget set D_f, and a held-out
                  validation split of the training data (never trained on)
    theta0:       the initial weights θ₀ both references started from
    make_model:   builds a new, randomly initialised model of the same architecture
    train_config: the hyperparameters the original and the retrain reference used
    augment:      the dataset's batch-wise training augmentation (or None)
    num_classes:  number of classes of the dataset
    device:       where the model and the data live
    generator:    seeded CPU generator: use it for every random choice
    scenario:     "random" or "class" (``forget_class`` is set for "class")
    seed:         the run's seed (θ₀, the forget set and ``generator`` derive from it)
    progress:     ``progress(fraction, message="")``, fraction in [0, 1]:
                  shown on the command line's progress bar (optional to call)
    diagnostics:  a dict the method may fill with JSON-serialisable values
                  (numbers, strings, lists): stored in the run's record under
                  ``diagnostics`` (e.g. MUSO's regime: head inputs, projector rows)

``train_config.trainable`` says which parameters may change: ``"all"``, or
``"head"`` (every layer but the last stays at θ₀; the harness freezes them in
``model`` — ``requires_grad`` is False — and refuses a result that changed them).

    The test split is never part of the context, and while the method runs
    the harness refuses any attempt to load it (see harness/protocol/guard.py).
    """

    model: nn.Module
    original: nn.Module
    retain: Split
    forget: Split
    val: Split
    theta0: dict[str, torch.Tensor]
    make_model: Callable[[], nn.Module]
    train_config: TrainConfig
    num_classes: int
    device: torch.device
    generator: torch.Generator
    scenario: str = "random"                 # random | class | ...
    forget_class: int | None = None
    augment: Callable | None = None
    seed: int = 0
    progress: Callable[..., None] = field(default=lambda fraction, message="": None)
    diagnostics: dict[str, Any] = field(default_factory=dict)


# ---- search spaces: what `unlearnbench tune` may vary, declared next to the method ----

def _significant(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from [low, high] (3 significant digits)."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return _significant(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class LogUniform(Uniform):
    """A float drawn log-uniformly from [low, high] (3 significant digits)."""

    def sample(self, rng: random.Random) -> float:
        return _significant(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def __str__(self) -> str:
        return "log-" + super().__str__()


@dataclass(frozen=True)
class IntRange:
    """An integer drawn uniformly from low..high (both included)."""

    low: int
    high: int

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def __str__(self) -> str:
        return f"integer {self.low}..{self.high}"


@dataclass(frozen=True)
class Choice:
    """One of a few values, uniformly."""

    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))

    def sample(self, rng: random.Random):
        return rng.choice(self.values)

    def __str__(self) -> str:
        return "one of {" + ", ".join(map(str, self.values)) + "}"


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, hyperparameter class and defaults."""

    name: str
    fn: Callable[[Context, Any], nn.Module]
    hyper: type | None
    summary: str
    scenario_defaults: dict[str, dict[str, Any]]
    reference: str | None = None   # "retrain"/"original": the harness uses its cached reference model
    search_space: dict[str, Any] = field(default_factory=dict)   # hyperparameter -> LogUniform/IntRange/...
    # where the registered defaults come from, e.g. "SalUn, Classification/arg_parser.py"
    defaults_source: str | None = None

    def defaults(self, scenario: str | None = None) -> dict[str, Any]:
        if self.hyper is None:
            return {}
        values = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                  for f in dataclasses.fields(self.hyper)}
        values.update(self.scenario_defaults.get(scenario or "", {}))
        return values

    def resolve(self, overrides: dict[str, Any] | None = None, scenario: str | None = None):
        """Build the hyperparameter object: defaults, then scenario defaults,
        then ``overrides`` (type-checked; unknown names rejected)."""
        values = self.defaults(scenario)
        overrides = dict(overrides or {})
        if self.hyper is None:
            if overrides:
                got = ", ".join(sorted(overrides))
                raise UnknownMethod(f"method {self.name!r} takes no hyperparameters (got {got})")
            return None
        hints = typing.get_type_hints(self.hyper)
        for key, value in overrides.items():
            if key not in values:
                raise UnknownMethod(
                    f"unknown hyperparameter {key!r} for method {self.name!r}; accepted: {', '.join(sorted(values))}")
            values[key] = coerce(value, hints.get(key), f"{self.name}.{key}")
        for key, bounds in hyper_bounds(self.hyper).items():
            if not bounds.accepts(values[key]):
                raise UnknownMethod(f"{self.name}.{key}={values[key]!r} is out of range; accepted: {bounds}")
        return self.hyper(**values)


def coerce(value: Any, hint: Any, what: str) -> Any:
    """Convert a config/CLI value to the annotated type (int, float, bool, str, tuple)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
        if origin in (tuple, list):
            items = value.split(",") if isinstance(value, str) else list(value)
            inner = args[0] if args else str
            return tuple(coerce(v, inner, what) for v in items)
    except (TypeError, ValueError):
        raise UnknownMethod(f"{what}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    return value


_REGISTRY: dict[str, MethodInfo] = {}


def register_method(name: str, *, hyper: type | None = None,
                    scenario_defaults: dict[str, dict[str, Any]] | None = None,
                    reference: str | None = None, search_space: dict[str, Any] | None = None,
                    defaults_source: str | None = None):
    """Decorator: register ``fn(ctx, hp) -> model`` as method ``name``.

    ``search_space`` maps hyperparameters to distributions (``LogUniform``,
    ``Uniform``, ``IntRange``, ``Choice``) for ``unlearnbench tune``; every
    method gets the same trial budget over its own space, and its trial 0 is
    the registered defaults.  ``defaults_source`` says where those come from
    (the paper or reference file, e.g. ``"SalUn, Classification/arg_parser.py"``);
    the leaderboard's tuning section shows it next to trial 0."""
    if hyper is not None and not dataclasses.is_dataclass(hyper):
        raise TypeError(f"hyper for method {name!r} must be a dataclass")
    fields = {f.name for f in dataclasses.fields(hyper)} if hyper is not None else set()
    bounds = hyper_bounds(hyper)
    for key, dist in (search_space or {}).items():
        if key not in fields or not callable(getattr(dist, "sample", None)):
            raise TypeError(f"search space of method {name!r}: {key!r} must be a hyperparameter "
                            f"({', '.join(sorted(fields)) or 'none'}) mapped to LogUniform/Uniform/IntRange/Choice")
        ends = dist.values if isinstance(dist, Choice) else (dist.low, dist.high)
        if key in bounds and not all(bounds[key].accepts(v) for v in ends):
            raise TypeError(f"search space of method {name!r}: {key} {dist} leaves its bounds ({bounds[key]})")

    def decorate(fn):
        doc = inspect.getdoc(fn) or inspect.getdoc(inspect.getmodule(fn)) or ""
        info = MethodInfo(name=name, fn=fn, hyper=hyper, summary=doc.strip().splitlines()[0] if doc else "",
                          scenario_defaults=dict(scenario_defaults or {}), reference=reference,
                          search_space=dict(search_space or {}), defaults_source=defaults_source)
        previous = _REGISTRY.get(name)
        if previous is not None and previous.fn.__module__ != fn.__module__:
            raise ValueError(f"method name {name!r} is already registered by {previous.fn.__module__}")
        _REGISTRY[name] = info
        return fn

    return decorate


ENTRY_POINT_GROUP = "unlearnbench.methods"
_PLUGINS: dict[str, str] = {}            # method name -> "distribution version" that installed it
_LOADED_ENTRY_POINTS: set[tuple[str, str]] = set()


def discover_methods() -> None:
    """Import the methods installed packages declare in the entry-point group
    ``unlearnbench.methods``, e.g. in the package's pyproject.toml::

        [project.entry-points."unlearnbench.methods"]
        my_method = "my_package.my_method"    # a module that calls @register_method("my_method")

    The entry point's name must be the name the module registers.  A plugin
    that fails to import raises :class:`MethodImportError` naming it."""
    _PLUGINS.update(load_entry_points(ENTRY_POINT_GROUP, "method", _REGISTRY.__contains__, _LOADED_ENTRY_POINTS,
                                      MethodImportError))


def method_origin(name: str) -> str:
    """Where a registered method comes from: "built-in", "plugin <dist> <version>"
    or the module that registered it."""
    module = get_method(name).fn.__module__
    if module.startswith(f"{__package__}."):
        return "built-in"
    return f"plugin {_PLUGINS[name]}" if name in _PLUGINS else module


def get_method(name: str) -> MethodInfo:
    if name not in _REGISTRY:
        discover_methods()   # an installed plugin may provide it
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMethod(f"unknown method {name!r}; accepted: {', '.join(list_methods())}") from None


def list_methods() -> list[str]:
    """Registered method names (installed plugins included): the reference
    rows first, then alphabetical."""
    discover_methods()
    refs = [n for n in ("original", "retrain") if n in _REGISTRY]
    return refs + sorted(n for n in _REGISTRY if n not in refs)


def unregister_method(name: str) -> None:
    _REGISTRY.pop(name, None)
    _PLUGINS.pop(name, None)
    for loaded in [ep for ep in _LOADED_ENTRY_POINTS if ep[0] == name]:
        _LOADED_ENTRY_POINTS.discard(loaded)
