"""RL — random relabeling (Golatkar et al., CVPR 2020; "RL" in Jia et al.,
NeurIPS 2023 and Fan et al., ICLR 2024).

Fine-tune the original on D_r ∪ D_f where every forget sample's label is
replaced, once, by a class drawn uniformly from the *other* classes (never its
true one).  SalUn's CIFAR-10 setting is 10 epochs at lr 0.01-0.1; on the
default `mlp` we use 10 epochs at lr 0.02 with the original's optimiser.

`unlearnbench tune` searches epochs 3..15 and lr log-uniform in [0.005, 0.1];
tuned values live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import fit, supervised_loss


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.02, above=0)


def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label, a uniformly random different class."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


@register_method("random_relabel", hyper=Hyper,
                 search_space={"epochs": IntRange(3, 15), "lr": LogUniform(0.005, 0.1)})
def random_relabel(ctx: Context, hp: Hyper):
    """RL: fine-tune on retain ∪ forget with random wrong forget labels."""
    y_forget = random_wrong_labels(ctx.forget.y, ctx.num_classes, ctx.generator)
    x = torch.cat([ctx.retain.x, ctx.forget.x])
    y = torch.cat([ctx.retain.y, y_forget])
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0)
    fit(ctx.model, supervised_loss, (x, y), cfg, ctx.generator, augment=ctx.augment)
    return ctx.model
