"""SalUn — saliency unlearning (Fan, Liu, Zhang, Wei, Wong & Liu, "SalUn:
Empowering Machine Unlearning via Gradient-based Weight Saliency in Both Image
Classification and Generation", ICLR 2024).  Reference code:
github.com/OPTML-Group/Unlearn-Saliency, ``Classification/generate_mask.py``
(the mask), ``Classification/unlearn/RL.py`` with ``unlearn/impl.py`` (the
masked random-label training) and ``arg_parser.py`` (defaults).

Fidelity to the reference, defaults and search window: docs/method-notes.md#salun.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._api import Context, IntRange, LogUniform, Uniform, bounded, register_method
from ._train import fit, model_loss, supervised_loss
from .random_relabel import LABEL_RULES, reference_sgd, relabelled_union


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.013, above=0)
    # share of all parameters the mask keeps (top |gradient of the forget loss|)
    mask_share: float = bounded(0.5, above=0, high=1)
    labels: str = bounded("uniform", choices=LABEL_RULES)   # forget labels, as random_relabel's


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
    loss = model_loss(model)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        model.zero_grad(set_to_none=True)
        loss(model(xb), yb).backward()
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


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# the model changes from lr 3e-5-1e-4 and collapses at 1.0 (class 0, random 50%); best 3e-3 (random 10%)
# to 0.1 (class 0): 1e-4..0.3.
@register_method("salun", hyper=Hyper,
                 search_space={"lr": LogUniform(1e-4, 0.3),
                               "epochs": IntRange(5, 10),
                               "mask_share": Uniform(0.1, 1.0)},
                 defaults_source="SalUn code, Classification/README.md SalUn command (10% random)")
def salun(ctx: Context, hp: Hyper):
    """SalUn: random-relabel fine-tuning of the forget loss's most salient weights only."""
    masks = saliency_mask(ctx.model, ctx.forget.x, ctx.forget.y, hp.mask_share, ctx.train_config.batch_size)
    data, redraw = relabelled_union(ctx, hp.labels)
    cfg = reference_sgd(ctx.train_config, hp.epochs, hp.lr)
    fit(ctx.model, supervised_loss, data, cfg.replace(weight_decay=0.0), ctx.generator, augment=ctx.augment,
        before_step=masked_step(masks, cfg.weight_decay), after_epoch=redraw)
    return ctx.model
