"""FT — fine-tuning on the retain set only (Warnecke et al., NDSS 2023;
the "FT" baseline of Jia et al., NeurIPS 2023 and Fan et al., ICLR 2024).
Reference code: github.com/OPTML-Group/Unlearn-Saliency.

Fidelity to the reference, defaults and search window: docs/method-notes.md#finetune.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import fit, supervised_loss
from .random_relabel import reference_sgd


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.01, above=0)


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# predictions change from lr 0.01 (random 50%) to 0.1 (random 10%); lr 1.0 collapses: 0.01..0.5.
@register_method("finetune", hyper=Hyper,
                 search_space={"epochs": IntRange(3, 15), "lr": LogUniform(0.01, 0.5)},
                 defaults_source="SalUn code, Classification/README.md FT command and arg_parser.py")
def finetune(ctx: Context, hp: Hyper):
    """FT: fine-tune the original on the retain set (SalUn's SGD)."""
    fit(ctx.model, supervised_loss, ctx.retain.tensors, reference_sgd(ctx.train_config, hp.epochs, hp.lr),
        ctx.generator, augment=ctx.augment)
    return ctx.model
