"""Bounds: the values a hyperparameter accepts, declared on its ``Hyper``
dataclass field with :func:`bounded` and checked whenever a method's
hyperparameters are resolved (``MethodInfo.resolve``)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bounds:
    """The values a hyperparameter accepts: ``low <= v <= high`` (``above``:
    strictly greater), or one of ``choices``.  ``None`` leaves a side open."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple | None = None

    def accepts(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, float) and math.isnan(value):
            return False
        return ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above))

    def __str__(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(repr, self.choices))
        parts = [f">= {self.low:g}" if self.low is not None else None,
                 f"> {self.above:g}" if self.above is not None else None,
                 f"<= {self.high:g}" if self.high is not None else None]
        return " and ".join(p for p in parts if p) or "any value"


def bounded(default, low: float | None = None, high: float | None = None, *, above: float | None = None,
            choices: tuple | None = None):
    """A ``Hyper`` field with its accepted values, checked whenever the method's
    hyperparameters are resolved (defaults, tuned presets, ``--method-arg``)::

        epochs: int = bounded(10, low=1)
        lr: float = bounded(0.02, above=0)
        optimizer: str = bounded("adam", choices=("sgd", "adam", "adamw"))
    """
    return field(default=default, metadata={"bounds": Bounds(low, high, above,
                                                             tuple(choices) if choices is not None else None)})


def hyper_bounds(hyper: type | None) -> dict[str, Bounds]:
    """The declared bounds of a Hyper dataclass's fields (unbounded fields omitted)."""
    if hyper is None:
        return {}
    return {f.name: f.metadata["bounds"] for f in dataclasses.fields(hyper) if "bounds" in f.metadata}
