"""MUSO — exact unlearning by setting optimal labels (R. Yang, M. He, Z. He,
Y. Qiu, X. Huang, "MUSO: Achieving Exact Machine Unlearning in
Over-Parameterized Regimes", arXiv 2410.08557, 2024; code: github.com/Yruikk/MUSO).
This is the paper's formula; ``muso_released`` is the authors' released
network code (methods/muso_released.py says how the two differ).

The theorem (linear model on fixed features ``Z``, more features than samples,
squared loss, SGD to convergence from ``w₀``): fine-tuning the pretrained
``w_p`` on retain ∪ forget with the forget labels replaced by ``ŷ_f = Z_f w_r``
lands *exactly* on the retrained ``w_r``, and ``ŷ_f`` has a closed form that
needs no retraining: label form ``Z_f w₀ + K_fr K_rr⁻¹(y_r − Z_r w₀)``,
label-free form ``Z_f [w₀ + Π_r(w_p − w₀)]`` with ``Π_r = Z_rᵀ(Z_r Z_rᵀ)⁻¹Z_r``
(:func:`optimal_labels`, :func:`optimal_labels_label_free`;
``unlearnbench exactness`` checks it on real data).

Networks (this method): the head's inputs (penultimate features and a ones
column for the bias) play ``Z`` and the head plays ``w``; ``w₀`` comes from
θ₀, ``w_p`` from the original.  Before each epoch, ``Π_r = Zᵀ(ZZᵀ + εI)⁻¹Z``
is built from the *current* network's eval-mode features of a uniform random
``retain_subset`` share of D_r (Cholesky in float64), ε on a cosine ramp
``eps_start`` (first epoch) → ``eps_end`` (last epoch).  On every mini-batch
of D_r ∪ D_f (shuffled together), under ``no_grad`` in eval mode, each forget
sample gets ``y_f = Z_f^cur[w₀ + Π_r(w_p − w₀)] + (Z_f^cur − Z_f^p)w_p`` — the
linear formula plus a correction for the drift of the features away from the
original's (``Z^p``; zero at the first step) — as a hard label (argmax) or,
with ``soft_labels``, as the soft target whose loss minimiser is ``y_f``
(under ``train.loss = "squared"``: ``y_f`` itself).  Retain samples keep
their labels; the loss is the model's own training loss; the parameters
``train.trainable`` allows are trained.

Exact where the theorem applies: with ``train.trainable = "head"`` (the
network is a linear model on fixed random features), ``train.loss =
"squared"``, SGD without weight decay, ``retain_subset = 1``, ε = 0 and soft
labels, the labels of the first step are the closed-form ``Z_f w_r``
(tests/test_muso.py checks it to 1e-6), and SGD from there converges to the
retrained head.

The regime decides what the formula can do.  If the head sees fewer inputs
than Π_r has rows (``M ≤ N``) and Z_r has full column rank, Π_r is the
projector onto all of R^M, so ``w₀ + Π_r(w_p − w₀) = w_p`` and the forget
labels are the original's own predictions: MUSO is fine-tuning on
self-labels, and only a large ε (which shrinks Π_r towards 0, pulling the
labels towards w₀'s outputs) makes it forget.  The default digits MLP is
there (a 128-wide head: M = 129 against N ≈ 120-220 retain rows), and so is
the paper's ResNet-18 (M = 513 against 10k-20k rows).  Every run records
the regime in its ``diagnostics`` (M, N, the rank of Z_r, the share of
forget labels that differ from the original's predictions, the ε used; see
methods/_muso.py:unlearn).

Defaults (registered): the released random-subset script's settings,
github.com/Yruikk/MUSO NN/random_subset/MUSO.py (``get_args``, commit
8c113dd): Adam, lr 3e-5, constant, 2 epochs, weight decay 0, batch 128,
subset 20%, ε from 1e-6 (``--epsilon_rs``) to 1e-2 on a cosine ramp, hard
labels.  Class forgetting: AdamW, lr 2.8e-4, cosine, 5 epochs — the
full-class / sub-class setting recorded in the project's MUSO note
(shared/notes/muso.md); the released NN/full_and_sub_class/MUSO.py has
other argparse defaults (SGD, lr 5.55e-5, cosine, 10 epochs, ε fixed at
1e-6), which ``muso_released`` uses.  Tuned presets (configs/tuned/) override
these in the benchmark.  Unlike the released code, Π_r is the projector
written above, our Retrain shares θ₀, and w₀ / w_p are θ₀'s and the
original's heads.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._linear import gram_solve, least_squares_limit, project_rows
from ._muso import (Relabeller, forget_outputs, head_weights, penultimate, ramp, ridge_at, ridge_projector,
                    sample_subset, soft_targets, unlearn)

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


@register_method("muso", hyper=Hyper,
                 scenario_defaults={"class": {"optimizer": "adamw", "lr": 2.8e-4, "schedule": "cosine", "epochs": 5}},
                 search_space={"lr": LogUniform(1e-5, 1e-3),
                               "epochs": IntRange(2, 8),
                               "eps_end": LogUniform(1e-2, 3e3)},
                 defaults_source="MUSO code, NN/random_subset/MUSO.py get_args (8c113dd); class: shared/notes/muso.md")
def muso(ctx: Context, hp: Hyper):
    """MUSO (the paper's formula): fine-tune on D_r ∪ D_f with optimal forget labels, relabelled every batch."""
    relabeller = Relabeller(ctx, projector=ridge_projector, epsilons=ramp(hp.epochs, hp.eps_start, hp.eps_end),
                            rows=lambda n, generator: sample_subset(n, hp.retain_subset, generator),
                            soft=hp.soft_labels)
    return unlearn(ctx, hp, relabeller)
