"""RL — random relabeling (Golatkar et al., CVPR 2020; "RL" in Jia et al.,
NeurIPS 2023 and Fan et al., ICLR 2024).

Fine-tune the original on D_r ∪ D_f with every forget sample's label replaced
by a random class.  Reference code: SalUn's ``Classification/unlearn/RL.py``
(github.com/OPTML-Group/Unlearn-Saliency) with its training wrapper
``unlearn/impl.py`` and the defaults of ``arg_parser.py``.

Labels (``labels``):

Fidelity to the reference, defaults and search window: docs/method-notes.md#random_relabel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ._api import Context, IntRange, LogUniform, bounded, register_method
from ._train import TrainConfig, fit, supervised_loss

LABEL_RULES = ("uniform", "amnesiac")


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.01, above=0)
    labels: str = bounded("uniform", choices=LABEL_RULES)   # uniform (SalUn's RL) | amnesiac (SSD's)


def uniform_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label, a class drawn uniformly from all ``num_classes`` (possibly the same one)."""
    return torch.randint(0, num_classes, y.shape, generator=generator).to(y.device)


def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label, a uniformly random different class."""
    shift = torch.randint(1, num_classes, y.shape, generator=generator).to(y.device)
    return (y + shift) % num_classes


def relabelled_union(ctx: Context, rule: str) -> tuple[tuple[torch.Tensor, torch.Tensor], Callable | None]:
    """``(x, y)`` of D_r ∪ D_f with random forget labels by ``rule``, and the
    ``after_epoch`` hook that redraws them in place for the next epoch
    (``"uniform"``) or None (``"amnesiac"``: fixed)."""
    if rule not in LABEL_RULES:
        raise ValueError(f"unknown label rule {rule!r}; accepted: {', '.join(LABEL_RULES)}")
    draw = uniform_labels if rule == "uniform" else random_wrong_labels
    n_retain = len(ctx.retain)
    x = torch.cat([ctx.retain.x, ctx.forget.x])
    y = torch.cat([ctx.retain.y, draw(ctx.forget.y, ctx.num_classes, ctx.generator)])
    if rule == "amnesiac":
        return (x, y), None

    def redraw(epoch, model):   # fit slices y every batch: the next epoch trains on the new labels
        y[n_retain:] = uniform_labels(ctx.forget.y, ctx.num_classes, ctx.generator)
    return (x, y), redraw


def reference_sgd(cfg: TrainConfig, epochs: int, lr: float) -> TrainConfig:
    """SalUn's unlearning optimiser: SGD, momentum 0.9, weight decay 5e-4, constant lr."""
    return cfg.replace(epochs=epochs, lr=lr, optimizer="sgd", momentum=0.9, weight_decay=5e-4,
                       schedule="constant", warmup_epochs=0, grad_clip=0.0)


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# the model changes from lr 3e-5-1e-4 and collapses at 1.0; the best points lie at 3e-4..3e-2: 1e-4..0.3.
@register_method("random_relabel", hyper=Hyper,
                 search_space={"epochs": IntRange(3, 15), "lr": LogUniform(1e-4, 0.3)},
                 defaults_source="SalUn code, Classification/arg_parser.py unlearn defaults")
def random_relabel(ctx: Context, hp: Hyper):
    """RL: fine-tune on retain ∪ forget with random forget labels (uniform over all classes, redrawn every epoch)."""
    data, redraw = relabelled_union(ctx, hp.labels)
    fit(ctx.model, supervised_loss, data, reference_sgd(ctx.train_config, hp.epochs, hp.lr), ctx.generator,
        augment=ctx.augment, after_epoch=redraw)
    return ctx.model
