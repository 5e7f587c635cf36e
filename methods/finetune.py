"""FT — fine-tuning on the retain set only (Warnecke et al., NDSS 2023;
the "FT" baseline of Jia et al., NeurIPS 2023 and Fan et al., ICLR 2024).

Continue training the original on D_r and rely on catastrophic forgetting to
erase D_f.  SalUn's CIFAR-10 setting is 10 epochs of SGD at lr 0.01-0.1; on
the default `digits`/`mlp` models we keep the original's optimiser (SGD,
momentum 0.9, cosine decay) and use 10 epochs at lr 0.1, the top of SalUn's
range (at lr 0.02-0.05 FT leaves a forgotten digits class at 100% accuracy).

`unlearnbench tune` searches epochs 3..15 and lr log-uniform in [0.01, 0.3]
(around SalUn's 0.01-0.1 and our default); tuned values live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import fit, supervised_loss


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.1, above=0)


@register_method("finetune", hyper=Hyper,
                 search_space={"epochs": IntRange(3, 15), "lr": LogUniform(0.01, 0.3)})
def finetune(ctx: Context, hp: Hyper):
    """FT: fine-tune the original on the retain set."""
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0)
    fit(ctx.model, supervised_loss, ctx.retain.tensors, cfg, ctx.generator, augment=ctx.augment)
    return ctx.model
