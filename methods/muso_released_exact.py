"""``muso_released`` with ``precision = "exact"``: the released code's
expression, rows, ε schedule and optimiser, but its projector solved stably
in float64 instead of the script's float32 chain of explicit inverses.  Side
by side with ``muso_released`` it shows how much of the released code's
forgetting is round-off (docs/muso.md)."""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, bounded, register_method
from ._muso import CLASS_DEFAULTS
from .muso_released import SEARCH_SPACE, muso_released
from .muso_released import Hyper as ReleasedHyper


@dataclass
class Hyper(ReleasedHyper):
    precision: str = bounded("exact", choices=("released", "exact"))


@register_method("muso_released_exact", hyper=Hyper,
                 scenario_defaults=CLASS_DEFAULTS,
                 search_space=SEARCH_SPACE,
                 defaults_source="MUSO code (8c113dd), argparse defaults of NN/random_subset/MUSO.py and "
                                 "NN/full_and_sub_class/MUSO.py; float64")
def muso_released_exact(ctx: Context, hp: Hyper):
    """MUSO as released, its projector solved exactly in float64 (no round-off)."""
    return muso_released(ctx, hp)
