"""GA — gradient ascent on the forget set (Thudi et al., EuroS&P 2022;
"GA" in Jia et al., NeurIPS 2023 and Fan et al., ICLR 2024).

Maximise the training loss (the model's own: cross-entropy for networks)
of the forget samples under their true labels, i.e. minimise its negative,
for a few epochs at a small learning rate.  The loss is unbounded, so GA is
the method most likely to diverge or collapse; SalUn's CIFAR-10 setting is
5 epochs at lr 1e-5..1e-4 on ResNet-18.

On the small, over-confident default `mlp` the forget loss starts near zero,
so the gradient is tiny until the logits move and then grows without bound:
with SGD (momentum 0.9) there is no learning rate that forgets without
overflowing to inf on the 50% split (measured: lr 5e-3 does nothing at 10%
and diverges at 50%).  Our default therefore clips the gradient's L2 norm at
1 (``grad_clip``; 0 disables it, recovering plain GA) and uses lr 0.01, 5
epochs (lr 0.05 for class forgetting, where the forget set is one whole
class and stays confident for longer).

`unlearnbench tune` searches epochs 1..10 and lr log-uniform in [0.001, 0.1]
(grad_clip stays 1); tuned values live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import fit, supervised_loss


@dataclass
class Hyper:
    epochs: int = bounded(5, low=1)
    lr: float = bounded(0.01, above=0)
    grad_clip: float = bounded(1.0, low=0)


def ascent_loss(model, batch, extra_batch=None):
    """The model's own training loss (cross-entropy for networks), negated."""
    return -supervised_loss(model, batch)


@register_method("gradient_ascent", hyper=Hyper, scenario_defaults={"class": {"lr": 0.05}},
                 search_space={"epochs": IntRange(1, 10), "lr": LogUniform(0.001, 0.1)})
def gradient_ascent(ctx: Context, hp: Hyper):
    """GA: ascend the cross-entropy on the forget set."""
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, weight_decay=0.0,
                                   schedule="constant", warmup_epochs=0,
                                   grad_clip=hp.grad_clip)
    fit(ctx.model, ascent_loss, ctx.forget.tensors, cfg, ctx.generator, augment=ctx.augment)
    return ctx.model
