"""GA — gradient ascent on the forget set (Thudi et al., EuroS&P 2022;
"GA" in Jia et al., NeurIPS 2023 and Fan et al., ICLR 2024).
Reference code: github.com/OPTML-Group/Unlearn-Saliency.

Fidelity to the reference, defaults and search window: docs/method-notes.md#gradient_ascent.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import fit, supervised_loss


@dataclass
class Hyper:
    epochs: int = bounded(5, low=1)
    lr: float = bounded(1e-4, above=0)
    grad_clip: float = bounded(0.0, low=0)   # > 0: clip the gradient's global L2 norm (not in the reference)


def ascent_loss(model, batch, extra_batch=None):
    """The model's own training loss (cross-entropy for networks), negated."""
    return -supervised_loss(model, batch)


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# on the saturated original GA does nothing below lr 1e-3 (random 50%) / 1e-2 (class 0, random 10%) and
# collapses or diverges from 3e-3 (random 50%, 10 epochs) / 0.03-0.1 (class 0): 1e-3..0.1.  Trial 0 (the
# SalUn command's lr 1e-4) lies below the window, in the no-op region, and is still evaluated.
@register_method("gradient_ascent", hyper=Hyper,
                 search_space={"epochs": IntRange(1, 10), "lr": LogUniform(1e-3, 0.1)},
                 defaults_source="SalUn code, Classification/README.md GA command")
def gradient_ascent(ctx: Context, hp: Hyper):
    """GA: ascend the model's loss on the forget set."""
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                                   schedule="constant", warmup_epochs=0, grad_clip=hp.grad_clip)
    fit(ctx.model, ascent_loss, ctx.forget.tensors, cfg, ctx.generator, augment=ctx.augment)
    return ctx.model
