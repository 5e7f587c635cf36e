"""MUSO — exact unlearning by setting optimal labels (Yang et al., arXiv
2410.08557; code github.com/Yruikk/MUSO).  The paper's formula;
``muso_released`` is the authors' released network code.

Theorem (linear model on fixed features Z, more features than samples,
squared loss, SGD from w₀): fine-tuning w_p on D_r ∪ D_f with the forget
labels ``ŷ_f = Z_f w_r`` lands exactly on the retrained w_r, and ŷ_f has a
closed form without retraining — label form ``Z_f w₀ + K_fr K_rr⁻¹(y_r −
Z_r w₀)``, label-free form ``Z_f[w₀ + Π_r(w_p − w₀)]`` with ``Π_r =
Z_rᵀ(Z_r Z_rᵀ)⁻¹Z_r`` (:func:`optimal_labels`, :func:`optimal_labels_label_free`).

Fidelity to the reference, defaults and search window: docs/method-notes.md#muso.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._linear import gram_solve, least_squares_limit, project_rows
from ._muso import (
    CLASS_DEFAULTS,
    Relabeller,
    forget_outputs,
    head_weights,
    penultimate,
    ramp,
    ridge_at,
    ridge_projector,
    sample_subset,
    soft_targets,
    unlearn,
)

__all__ = ["Hyper", "forget_outputs", "head_weights", "optimal_labels", "optimal_labels_label_free", "penultimate",
           "relabel_weights", "ridge_at", "soft_targets"]


# ---- the closed form (linear model on fixed features) -----------------------------
def relabel_weights(z_retain: torch.Tensor, w0: torch.Tensor, wp: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """``w₀ + Π_r(w_p − w₀)``: for an over-parameterised linear model whose
    ``w_p`` interpolates the retain labels this *is* the retrained ``w_r``
    (the limit of SGD from ``w₀`` on D_r), computed without labels."""
    w0, wp = w0.double(), wp.double()
    return w0 + project_rows(z_retain, wp - w0, ridge)


def optimal_labels(z_forget: torch.Tensor, z_retain: torch.Tensor, y_retain: torch.Tensor,
                   w0: torch.Tensor) -> torch.Tensor:
    """Optimal forget labels, label form: ``ŷ_f = Z_f w_r =
    f₀(X_f) + K_fr K_rr⁻¹(y_r − f₀(X_r))`` with ``K = ZZᵀ``, ``f₀ = Z w₀``."""
    z_forget, z_retain, w0 = z_forget.double(), z_retain.double(), w0.double()
    if z_retain.shape[0] > z_retain.shape[1]:   # more samples than features: no kernel form
        return z_forget @ least_squares_limit(z_retain, y_retain, w0)
    residual = y_retain.double() - z_retain @ w0
    return z_forget @ w0 + (z_forget @ z_retain.T) @ gram_solve(z_retain, residual)


def optimal_labels_label_free(z_forget: torch.Tensor, z_retain: torch.Tensor, w0: torch.Tensor,
                              wp: torch.Tensor) -> torch.Tensor:
    """Optimal forget labels, label-free form: ``ŷ_f = Z_f[w₀ + Π_r(w_p − w₀)]``
    (uses only that ``w_p`` interpolates the retain labels)."""
    return z_forget.double() @ relabel_weights(z_retain, w0, wp)


# ---- the network algorithm --------------------------------------------------------
@dataclass
class Hyper:
    epochs: int = bounded(2, low=1)
    lr: float = bounded(3e-5, above=0)
    optimizer: str = bounded("adam", choices=("sgd", "adam", "adamw"))
    schedule: str = bounded("constant", choices=("constant", "cosine", "step"))
    weight_decay: float = bounded(0.0, low=0)
    batch_size: int = bounded(128, low=1)
    retain_subset: float = bounded(0.2, above=0, high=1)   # share of D_r whose features define Π_r each epoch
    eps_start: float = bounded(1e-6, low=0)                 # ridge of Π_r in the first epoch ...
    eps_end: float = bounded(1e-2, low=0)                   # ... and in the last (cosine ramp)
    soft_labels: bool = False                               # soft targets instead of argmax labels
    labels: str = bounded("label_free", choices=("label_free", "label_form"))   # which closed form relabels D_f


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# label-free MUSO changes predictions from lr 3e-4-3e-3 and breaks from 0.01-0.3; the label form from
# 3e-5-1e-4, breaking from 3e-4 (random 50%, 8 epochs) to 0.1.  One space spans both (and the released
# variants', methods/muso_released.py), so the four MUSO rows are tuned alike: 3e-5..0.1.
SEARCH_SPACE = {"lr": LogUniform(3e-5, 0.1), "epochs": IntRange(2, 8), "eps_end": LogUniform(1e-2, 3e3)}


@register_method("muso", hyper=Hyper,
                 scenario_defaults=CLASS_DEFAULTS,
                 search_space=SEARCH_SPACE,
                 defaults_source="MUSO code, NN/random_subset/MUSO.py get_args (8c113dd); class: "
                                 "NN/full_and_sub_class/MUSO.py get_args (8c113dd)")
def muso(ctx: Context, hp: Hyper):
    """MUSO (the paper's formula): fine-tune on D_r ∪ D_f with optimal forget labels, relabelled every batch."""
    relabeller = Relabeller(ctx, projector=ridge_projector, epsilons=ramp(hp.epochs, hp.eps_start, hp.eps_end),
                            rows=lambda n, generator: sample_subset(n, hp.retain_subset, generator),
                            soft=hp.soft_labels, rule="ridge" if hp.labels == "label_free" else "label_form")
    return unlearn(ctx, hp, relabeller)
