"""ℓ1-sparse — sparsity-aware unlearning (Jia, Liu, Ram, Yao, Liu, Liu,
Sharma & Liu, "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023;
reference code: github.com/OPTML-Group/Unlearn-Sparse, ``FT_prune``).

Fine-tune the original on D_r with an ℓ1 penalty on all parameters whose
strength decays linearly over the epochs:

    L_e = CE(D_r) + γ_e · ‖θ‖₁,   γ_e = γ · (1 − e / (E − E₀))  for e < E − E₀, else 0

(e = 0-based epoch, E epochs, E₀ = ``no_l1_epochs`` final epochs without
penalty), so the penalty promotes sparsity early and the retain accuracy
recovers late.  The reference runs 10 epochs of SGD at lr 0.01 with γ between
5e-5 and 5e-4 on ResNet-18 (≈11M parameters, so ‖θ‖₁ is large).

Defaults on the default `digits`/`mlp` models (≈26k parameters): the
original's optimiser (SGD, momentum 0.9, weight decay 5e-4, cosine decay),
10 epochs at lr 0.1 (FT's), γ = 5e-4, and γ = 2e-3 for class forgetting.

Search (validation split only): score = mean over the three default
scenarios and seeds 0-2 of ½(Avg. Gap + Gap-MUSO), both computed with the
validation split in place of the test set (for scale: original 21.1, FT
17.0, RL 8.9).  lr ∈ {0.05, 0.1} × γ ∈ {5e-4, 1e-3, 2e-3, 3e-3, 5e-3}.
Random forgetting wants a light penalty (γ = 5e-4: 2.2 and 2.5 on the 10%
and 50% splits; γ ≥ 2e-3 makes the forget set look unseen, 18 on 10%),
class forgetting a strong one (γ = 2e-3: 2.5; γ = 5e-4 leaves 64% of the
class: 27.8); one γ for all (1e-3) scores 5.7, the per-scenario pair 2.4.

`unlearnbench tune l1_sparse` (equal budget for every method) searches lr
log-uniform in [0.03, 0.2] and γ log-uniform in [3e-4, 5e-3] (around the
search above); its winners live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ._api import Context, LogUniform, bounded, register_method
from ._train import fit


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.1, above=0)
    l1: float = bounded(5e-4, low=0)          # γ: initial strength of the ℓ1 penalty
    no_l1_epochs: int = bounded(0, low=0)     # E₀: final epochs without penalty


def l1_strength(epoch: int, epochs: int, l1: float, no_l1_epochs: int) -> float:
    """γ_e: linear decay from γ at epoch 0 to 0 after E − E₀ epochs."""
    decay_epochs = epochs - no_l1_epochs
    return l1 * (1.0 - epoch / decay_epochs) if epoch < decay_epochs else 0.0


def l1_norm(model) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters())


@register_method("l1_sparse", hyper=Hyper, scenario_defaults={"class": {"l1": 2e-3}},
                 search_space={"lr": LogUniform(0.03, 0.2), "l1": LogUniform(3e-4, 5e-3)})
def l1_sparse(ctx: Context, hp: Hyper):
    """ℓ1-sparse: fine-tune on the retain set with a decaying ℓ1 penalty."""
    strength = {"now": l1_strength(0, hp.epochs, hp.l1, hp.no_l1_epochs)}

    def loss(model, batch, extra_batch=None):
        ce = F.cross_entropy(model(batch[0]), batch[1])
        return ce + strength["now"] * l1_norm(model) if strength["now"] else ce

    def next_epoch(epoch, model):
        strength["now"] = l1_strength(epoch + 1, hp.epochs, hp.l1, hp.no_l1_epochs)

    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0)
    fit(ctx.model, loss, ctx.retain.tensors, cfg, ctx.generator, augment=ctx.augment, after_epoch=next_epoch)
    return ctx.model
