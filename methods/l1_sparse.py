"""ℓ1-sparse — sparsity-aware unlearning (Jia, Liu, Ram, Yao, Liu, Liu,
Sharma & Liu, "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023).
Reference code: github.com/OPTML-Group/Unlearn-Sparse (``FT_prune``, which
runs ``FT_l1`` of ``unlearn/FT.py``; SalUn's ``Classification/unlearn/FT.py``
has the same ``FT_l1``), with the training wrapper ``unlearn/impl.py`` and the
defaults of ``arg_parser.py``.

Fine-tune the original on D_r with an ℓ1 penalty on all parameters whose
strength decays linearly over the epochs:

Fidelity to the reference, defaults and search window: docs/method-notes.md#l1-sparse.
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
