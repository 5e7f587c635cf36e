"""MUSO as the authors' released network code does it: github.com/Yruikk/MUSO,
NN/random_subset/MUSO.py (random-subset forgetting; ``get_args``,
``get_right_side``, ``train_yrk`` and the epoch loop of ``__main__``, commit
8c113dd) and NN/full_and_sub_class/MUSO.py (full-class / sub-class
forgetting, commit 172809c).  ``muso`` is the paper's formula; both run the
same relabelling routine (methods/_muso.py), parametrised by the projector
rule, the ε of each epoch and the rows Π_r is built from.

What the released code does, and so does this method by default:

- Projector (random subset, ``get_right_side``): the matrix inverse is
  rewritten with the Woodbury identity from ``εI_N`` and ``εI_D``, which
  computes ``Zᵀ(εI + εZZᵀ)⁻¹Z`` — not the paper's ``Zᵀ(ZZᵀ + εI)⁻¹Z``.  It
  equals ``(1/ε)·Zᵀ(I + ZZᵀ)⁻¹Z``: the ridge is fixed at 1 and
  ``Zᵀ(I + ZZᵀ)⁻¹Z(w_p − w₀)`` is scaled by 1/ε (10⁶ at ε = 10⁻⁶), so it
  dominates the relabelling weights ``w₀ + Π_r(w_p − w₀)``; with M ≤ N and
  a well-spread spectrum ``Zᵀ(I + ZZᵀ)⁻¹Z ≈ I`` and the argmax labels are
  nearly those of ``Z_f(w_p − w₀)``.
  ``projector = "woodbury"``.  The class script (``get_right_side`` of
  full_and_sub_class) uses the paper's ``Zᵀ(ZZᵀ + εI)⁻¹Z``:
  ``projector = "ridge"`` there.
- ε schedule (random subset): ``rs = ε₀ + (1e-2 − ε₀)(1 − cos(linspace(0, π,
  E)))/2`` with ε₀ = ``--epsilon_rs`` = 1e-6, but Π_r is built once before
  the loop (with ε₀) and then at the *end* of each epoch e with ``rs[e]``, for
  use in epoch e+1: epoch e uses ``rs[e−1]`` (epoch 0: ε₀), and ``rs[E−1]``
  is never used.  With the default 2 epochs both epochs use 1e-6.  The class
  script never changes ε (1e-6 throughout: ``eps_end = eps_start`` there).
- Rows of Π_r: the retain set in order (no shuffling, no augmentation), in
  batches of ``batch_size``; whenever more than ``2k`` rows are held
  (``k = int(0.2·|D_r|)``) a random ``k`` are kept — so N ends between k and
  2k and later batches are over-represented (``_muso.released_subset``).
- Labels: hard (argmax of ``y_f``); the drift term
  ``(Z_f^cur − Z_f^p)w_p`` as in the paper.
- Optimiser: random subset Adam, lr 3e-5, constant, 2 epochs, weight decay
  0, batch 128; class: SGD (momentum 0.9), lr 5.55e-5, cosine, 10 epochs,
  weight decay 0, batch 128 (argparse defaults of each script).

Where it departs from the released code (on purpose):

- w₀ and w_p are the heads of θ₀ and of the original model from the
  context.  The released random-subset script loads them from fixed
  CIFAR-100 checkpoint paths (``./ckpt/ResNet18/Vanilla/…cifar100…/model-init.pth``
  and ``model-last.pth``) whatever the dataset; that is not replicated.
- The projector expression is evaluated in float64 by a Cholesky solve (as
  ``(1/ε)·Zᵀ(I + ZZᵀ)⁻¹Z``), not by the script's chain of explicit float32
  inverses; the value is the same matrix.
- The loss is the model's own training loss (cross-entropy, as the script's
  ``nn.CrossEntropyLoss``, unless ``train.loss = "squared"``); only the
  parameters ``train.trainable`` allows are trained.
- The script also builds a Π_r after the last epoch, which nothing uses; we
  do not.

How it differs from ``muso`` (the paper's formula, registered defaults):
the projector rule (woodbury vs. ridge), the one-epoch shift of the ε
schedule, the rows of Π_r (running subsample vs. a uniform 20%), always hard
labels, and the class-forgetting optimiser (SGD 5.55e-5 × 10 epochs vs.
AdamW 2.8e-4 × 5 epochs).  Its regime diagnostics are recorded like
``muso``'s (methods/_muso.py:unlearn).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._muso import Relabeller, released_projector, released_subset, ridge_projector, shifted_ramp, unlearn

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


@register_method("muso_released", hyper=Hyper,
                 scenario_defaults={"class": {"optimizer": "sgd", "lr": 5.55e-5, "schedule": "cosine", "epochs": 10,
                                              "eps_end": 1e-6, "projector": "ridge"}},
                 search_space={"lr": LogUniform(1e-5, 1e-3),
                               "epochs": IntRange(2, 10),
                               "eps_end": LogUniform(1e-6, 3e3)},
                 defaults_source="MUSO code, argparse defaults of NN/random_subset/MUSO.py and "
                                 "NN/full_and_sub_class/MUSO.py")
def muso_released(ctx: Context, hp: Hyper):
    """MUSO as released (github.com/Yruikk/MUSO): its projector expression, shifted ε schedule, rows and optimiser."""
    relabeller = Relabeller(ctx, projector=PROJECTORS[hp.projector],
                            epsilons=shifted_ramp(hp.epochs, hp.eps_start, hp.eps_end),
                            rows=lambda n, generator: released_subset(n, hp.retain_subset, hp.batch_size, generator),
                            soft=False)
    return unlearn(ctx, hp, relabeller, momentum=0.9 if hp.optimizer == "sgd" else None)
