"""SalUn — saliency unlearning (Fan, Liu, Zhang, Wei, Wong & Liu, "SalUn:
Empowering Machine Unlearning via Gradient-based Weight Saliency in Both Image
Classification and Generation", ICLR 2024; reference code:
github.com/OPTML-Group/Unlearn-Saliency, ``generate_mask.py`` and
``unlearn/RL.py``).

1. Weight saliency: the gradient of the forget loss at the original weights,
   g = ∇_θ CE(D_f; θ_o) (summed over mini-batches, as the reference),
   and the hard mask m = 1[|g| among the top ``mask_share`` of all
   parameters' magnitudes], computed over the whole network at once.  The
   paper's default keeps the top 50%.  Exactly round(share · #parameters)
   entries are kept (ties broken by ``topk``).
2. Random-relabel fine-tuning (RL, the same relabelling as our
   ``random_relabel``: every forget sample gets one random wrong label) on
   D_r ∪ D_f, updating only the salient weights: the gradient is multiplied
   by m before every step.

Unlike the reference (whose SGD applies weight decay to every weight, so the
"frozen" ones still shrink), weight decay is folded into the gradient before
masking (∇ + wd·θ, then × m) and the optimiser's own weight decay is off, so
with SGD (any momentum) or Adam the non-salient weights stay bit-identical to
the original's: their gradient, hence their momentum/moment buffers, are
exactly zero from the first step on.  (With ``adamw`` this turns decoupled into
coupled weight decay on the salient weights.)

The reference settings for CIFAR-10 / ResNet-18 are 10 epochs of SGD at lr
0.013-0.1 with a 50% mask.  Defaults on the default `digits`/`mlp` models: the
original's optimiser (SGD, momentum 0.9, weight decay 5e-4 on the salient
weights, cosine decay), 10 epochs at lr 0.01, the paper's 50% mask.

Search (validation split only): score = mean over the three default
scenarios and seeds 0-2 of ½(Avg. Gap + Gap-MUSO), both computed with the
validation split in place of the test set (for scale: original 21.1, FT
17.0, RL 8.9).  lr ∈ {0.005, 0.01, 0.02, 0.05} × epochs ∈ {5, 10} with the
50% mask: 8.1-14.9 (10 epochs at lr 0.01: 8.3; the best, 8.1, is within
noise of it).  Mask shares at 10 epochs, lr 0.01: 10% 6.9, 30% 8.7, 50% 8.3,
70% 8.3, 100% (= RL at lr 0.01) 8.4; we keep the paper's 50% (also this
benchmark's required default) — 10% is worth trying.  Like RL, SalUn
forgets a class exactly and overshoots on random forgetting (forget samples
become less confident than unseen ones).

`unlearnbench tune salun` (equal budget for every method) searches lr
log-uniform in [0.005, 0.05], epochs 5..10 and mask share uniform in [0.1, 1]
(the ranges of the search above); its winners live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._api import Context, IntRange, LogUniform, Uniform, bounded, register_method
from ._train import cross_entropy, fit
from .random_relabel import random_wrong_labels


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.01, above=0)
    mask_share: float = bounded(0.5, above=0, high=1)    # share of all parameters the mask keeps (top |gradient of the forget loss|)


def saliency_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor, share: float,
                  batch_size: int) -> dict[str, torch.Tensor]:
    """Boolean mask per parameter: True for the top ``share`` of all entries by
    the magnitude of the forget loss's gradient at the current weights."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"salun.mask_share={share} must lie in (0, 1]")
    was_training = model.training
    model.eval()
    params = dict(model.named_parameters())
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        for name, p in params.items():
            if p.grad is not None:
                grads[name] += p.grad.detach()
    model.zero_grad(set_to_none=True)
    model.train(was_training)

    saliency = torch.cat([g.abs().flatten() for g in grads.values()])
    keep = torch.zeros(saliency.numel(), dtype=torch.bool, device=saliency.device)
    keep[torch.topk(saliency, round(share * saliency.numel())).indices] = True
    masks, start = {}, 0
    for name, p in params.items():
        masks[name] = keep[start:start + p.numel()].view_as(p)
        start += p.numel()
    return masks


def masked_step(masks: dict[str, torch.Tensor], weight_decay: float):
    """``before_step`` hook: weight decay folded into the gradient, then only
    the masked entries keep it."""
    def hook(model: nn.Module) -> None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.grad is None:
                    continue
                if weight_decay:
                    p.grad.add_(p, alpha=weight_decay)
                p.grad.mul_(masks[name])
    return hook


@register_method("salun", hyper=Hyper,
                 search_space={"lr": LogUniform(0.005, 0.05),
                               "epochs": IntRange(5, 10),
                               "mask_share": Uniform(0.1, 1.0)})
def salun(ctx: Context, hp: Hyper):
    """SalUn: random-relabel fine-tuning of the forget loss's most salient weights only."""
    cfg = ctx.train_config
    masks = saliency_mask(ctx.model, ctx.forget.x, ctx.forget.y, hp.mask_share, cfg.batch_size)
    y_forget = random_wrong_labels(ctx.forget.y, ctx.num_classes, ctx.generator)
    x = torch.cat([ctx.retain.x, ctx.forget.x])
    y = torch.cat([ctx.retain.y, y_forget])
    cfg = cfg.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0, weight_decay=0.0)
    fit(ctx.model, cross_entropy, (x, y), cfg, ctx.generator, augment=ctx.augment,
        before_step=masked_step(masks, ctx.train_config.weight_decay))
    return ctx.model
