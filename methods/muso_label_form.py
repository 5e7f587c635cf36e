"""MUSO with the label form of the optimal labels (arXiv 2410.08557, eq. for
ŷ_f): each forget sample gets ``Z_f w₀ + K_fr(K_rr + εI)⁻¹(Y_r − Z_r w₀)`` on
the current features (K = ZZᵀ, Y_r the retain set's one-hot labels) plus the
paper's drift term, solved stably in float64.

It equals ``muso``'s label-free form only where w_p interpolates the retain
labels (head-only, squared loss).  Under cross-entropy it does not: the
original's logits are far from one-hot, so the label-free form keeps the
original's predictions while this form relabels (docs/muso.md).  Everything
else (rows, ε ramp, optimiser and defaults) is ``muso``'s.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, bounded, register_method
from ._muso import CLASS_DEFAULTS
from .muso import SEARCH_SPACE, muso
from .muso import Hyper as MusoHyper


@dataclass
class Hyper(MusoHyper):
    labels: str = bounded("label_form", choices=("label_free", "label_form"))


@register_method("muso_label_form", hyper=Hyper,
                 scenario_defaults=CLASS_DEFAULTS,
                 search_space=SEARCH_SPACE,
                 defaults_source="MUSO code, NN/random_subset/MUSO.py get_args (8c113dd); class: "
                                 "NN/full_and_sub_class/MUSO.py get_args (8c113dd)")
def muso_label_form(ctx: Context, hp: Hyper):
    """MUSO relabelling D_f by the label form (one-hot retain labels on the current features)."""
    return muso(ctx, hp)
