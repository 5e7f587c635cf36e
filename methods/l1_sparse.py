"""ℓ1-sparse — sparsity-aware unlearning (Jia, Liu, Ram, Yao, Liu, Liu,
Sharma & Liu, "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023).
Reference code: github.com/OPTML-Group/Unlearn-Sparse (``FT_prune``, which
runs ``FT_l1`` of ``unlearn/FT.py``; SalUn's ``Classification/unlearn/FT.py``
has the same ``FT_l1``), with the training wrapper ``unlearn/impl.py`` and the
defaults of ``arg_parser.py``.

Fine-tune the original on D_r with an ℓ1 penalty on all parameters whose
strength decays linearly over the epochs:

    L_e = L(D_r) + γ_e · ‖θ‖₁,   γ_e = γ · (1 − e / (E − E₀))  for e < E − E₀, else 0

(e = 0-based epoch, E epochs, E₀ = ``no_l1_epochs`` final epochs without
penalty, ``--no-l1-epochs``), so the penalty promotes sparsity early and the
retain accuracy recovers late.  L is the model's own training loss
(cross-entropy for networks, as the reference).

Optimiser as the reference's wrapper: SGD with momentum 0.9 and weight decay
5e-4, a constant learning rate (its step decay at epochs 91 and 136 is never
reached), no warm-up.  Defaults: the README's l1-sparse command, 10 epochs at
lr 0.01, E₀ = 0 (``arg_parser.py``); γ = 5e-4.  The code has no γ of its own
for ℓ1-sparse: the README passes ``--alpha ${alpha}``, and the argparse
default 0.2 of that shared ``--alpha`` is the noise scale of the Fisher and
influence baselines.  γ = 5e-4 is the top of the range 5e-5 to 5e-4 that the
paper states for γ on CIFAR-10 / ResNet-18 (as quoted in this project's
earlier notes; not re-checked here against a copy of the paper).  These
defaults hold for every model and scenario; the benchmark's tuned presets
(configs/tuned/) override them.

Deviation: the batch size is the original's (the reference also unlearns
with its training batch size, 256).

`unlearnbench tune l1_sparse` searches lr log-uniform in [0.005, 0.2] and γ
log-uniform in [5e-5, 5e-3].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._api import Context, LogUniform, bounded, register_method
from ._train import fit, supervised_loss
from .random_relabel import reference_sgd


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.01, above=0)
    l1: float = bounded(5e-4, low=0)          # γ: initial strength of the ℓ1 penalty
    no_l1_epochs: int = bounded(0, low=0)     # E₀: final epochs without penalty


def l1_strength(epoch: int, epochs: int, l1: float, no_l1_epochs: int) -> float:
    """γ_e: linear decay from γ at epoch 0 to 0 after E − E₀ epochs."""
    decay_epochs = epochs - no_l1_epochs
    return l1 * (1.0 - epoch / decay_epochs) if epoch < decay_epochs else 0.0


def l1_norm(model) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters())


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# predictions change from lr 0.03 on every table and collapse at 1.0: 0.01..0.5.
@register_method("l1_sparse", hyper=Hyper,
                 search_space={"lr": LogUniform(0.01, 0.5), "l1": LogUniform(5e-5, 5e-3)},
                 defaults_source="Unlearn-Sparse code, README l1-sparse command and arg_parser.py; "
                                 "γ: top of the paper's range")
def l1_sparse(ctx: Context, hp: Hyper):
    """ℓ1-sparse: fine-tune on the retain set with a decaying ℓ1 penalty (SalUn's SGD)."""
    strength = {"now": l1_strength(0, hp.epochs, hp.l1, hp.no_l1_epochs)}

    def loss(model, batch, extra_batch=None):
        fit_loss = supervised_loss(model, batch)
        return fit_loss + strength["now"] * l1_norm(model) if strength["now"] else fit_loss

    def next_epoch(epoch, model):
        strength["now"] = l1_strength(epoch + 1, hp.epochs, hp.l1, hp.no_l1_epochs)

    fit(ctx.model, loss, ctx.retain.tensors, reference_sgd(ctx.train_config, hp.epochs, hp.lr), ctx.generator,
        augment=ctx.augment, after_epoch=next_epoch)
    return ctx.model
