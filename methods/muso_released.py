"""MUSO as the authors' released network code runs it (github.com/Yruikk/MUSO,
commit 8c113dd = HEAD): NN/random_subset/MUSO.py for random forgetting and
NN/full_and_sub_class/MUSO.py for class and sub-class forgetting.  ``muso``
is the paper's formula; both share methods/_muso.py.  docs/muso.md gives the
derivations and the measurements behind what follows.

Fidelity to the reference, defaults and search window: docs/method-notes.md#muso_released.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._muso import (
    CLASS_DEFAULTS,
    Relabeller,
    released_projector,
    released_subset,
    ridge_projector,
    shifted_ramp,
    unlearn,
)

PROJECTORS = {"woodbury": released_projector, "ridge": ridge_projector}


@dataclass
class Hyper:
    epochs: int = bounded(2, low=1)                                  # --epoch
    lr: float = bounded(3e-5, above=0)                               # --lr
    optimizer: str = bounded("adam", choices=("sgd", "adam", "adamw"))   # --opt (sgd: momentum 0.9)
    schedule: str = bounded("constant", choices=("constant", "cosine", "step"))   # --lr_scheduler
    weight_decay: float = bounded(0.0, low=0)                        # --wd
    batch_size: int = bounded(128, low=1)                            # --batchsize
    retain_subset: float = bounded(0.2, above=0, high=1)             # --subset_ratio
    eps_start: float = bounded(1e-6, above=0)                        # --epsilon_rs
    eps_end: float = bounded(1e-2, above=0)                          # the ramp's end, fixed at 1e-2 in the script
    projector: str = bounded("woodbury", choices=tuple(PROJECTORS))  # woodbury: Zᵀ(εI+εZZᵀ)⁻¹Z; ridge: Zᵀ(ZZᵀ+εI)⁻¹Z
    precision: str = bounded("released", choices=("released", "exact"))   # float32 inverse chain | float64 solve


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# the float32 chain changes predictions from lr 3e-5-3e-4, the exact precision from 1e-3-3e-3; both break
# from 3e-3-0.3: 3e-5..0.1, as methods/muso.py.
SEARCH_SPACE = {"lr": LogUniform(3e-5, 0.1), "epochs": IntRange(2, 10), "eps_end": LogUniform(1e-6, 3e3)}


@register_method("muso_released", hyper=Hyper,
                 scenario_defaults=CLASS_DEFAULTS,
                 search_space=SEARCH_SPACE,
                 defaults_source="MUSO code (8c113dd), argparse defaults of NN/random_subset/MUSO.py and "
                                 "NN/full_and_sub_class/MUSO.py")
def muso_released(ctx: Context, hp: Hyper):
    """MUSO as released (github.com/Yruikk/MUSO): its projector expression, shifted ε schedule, rows and optimiser."""
    relabeller = Relabeller(ctx, projector=PROJECTORS[hp.projector],
                            epsilons=shifted_ramp(hp.epochs, hp.eps_start, hp.eps_end),
                            rows=lambda n, generator: released_subset(n, hp.retain_subset, hp.batch_size, generator),
                            soft=False, rule=hp.projector, precision=hp.precision)
    return unlearn(ctx, hp, relabeller, momentum=0.9 if hp.optimizer == "sgd" else None)
