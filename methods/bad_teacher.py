"""Bad Teacher — unlearning with an incompetent teacher (Chundawat, Tarun,
Mandal & Kankanhalli, "Can Bad Teaching Induce Forgetting? Unlearning in Deep
Networks Using an Incompetent Teacher", AAAI 2023).

The student (initialised from the original) distils, on a shuffled mix of the
forget set and a random share of the retain set, from two teachers:
the competent one (the frozen original) on retain samples and an incompetent
one (a randomly initialised model of the same architecture) on forget samples:
Reference code: github.com/vikram2000b/bad-teaching-unlearning.

Fidelity to the reference, defaults and search window: docs/method-notes.md#bad_teacher.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._api import Choice, Context, IntRange, LogUniform, bounded, register_method
from ._train import fit


@dataclass
class Hyper:
    epochs: int = bounded(1, low=1)
    lr: float = bounded(1e-4, above=0)
    temperature: float = bounded(1.0, above=0)
    retain_share: float = bounded(0.3, low=0, high=1)   # share of the retain set mixed with the forget set
    batch_size: int = bounded(256, low=1)


@torch.no_grad()
def distillation_targets(x: torch.Tensor, is_forget: torch.Tensor, competent: nn.Module,
                         incompetent: nn.Module, temperature: float) -> torch.Tensor:
    """The teacher distribution of each sample: the incompetent teacher's on
    forget samples, the competent teacher's on retain samples."""
    good = F.softmax(competent(x) / temperature, dim=1)
    bad = F.softmax(incompetent(x) / temperature, dim=1)
    return torch.where(is_forget[:, None], bad, good)


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# the distillation changes the model from lr 1e-4 (10 epochs; 1e-3 at 1 epoch) and breaks from 3e-3-0.1
# (random 50%, 10 epochs, to class 0, 10 epochs): the space spans 1e-4..3e-2.
@register_method("bad_teacher", hyper=Hyper,
                 search_space={"lr": LogUniform(1e-4, 3e-2),
                               "epochs": IntRange(1, 10),
                               "batch_size": Choice(64, 256)},
                 defaults_source="Bad Teacher code, CIFARSuper20_Rocket_Unlearn.ipynb unlearning cell")
def bad_teacher(ctx: Context, hp: Hyper):
    """Bad Teacher: distil the original on retain data and a random network on forget data."""
    incompetent = ctx.make_model().eval().requires_grad_(False)
    n_retain = round(hp.retain_share * len(ctx.retain))
    keep = torch.randperm(len(ctx.retain), generator=ctx.generator)[:n_retain].to(ctx.retain.y.device)
    x = torch.cat([ctx.retain.x[keep], ctx.forget.x])
    is_forget = torch.cat([torch.zeros(n_retain, dtype=torch.bool, device=x.device),
                           torch.ones(len(ctx.forget), dtype=torch.bool, device=x.device)])

    def loss(model, batch, extra_batch=None):
        xb, forget_b = batch
        target = distillation_targets(xb, forget_b, ctx.original, incompetent, hp.temperature)
        log_student = F.log_softmax(model(xb) / hp.temperature, dim=1)
        return F.kl_div(log_student, target, reduction="batchmean")

    cfg = ctx.train_config.replace(optimizer="adam", epochs=hp.epochs, lr=hp.lr, batch_size=hp.batch_size,
                                   weight_decay=0.0, schedule="constant", warmup_epochs=0)
    fit(ctx.model, loss, (x, is_forget), cfg, ctx.generator, augment=ctx.augment)
    return ctx.model
