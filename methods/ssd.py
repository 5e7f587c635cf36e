"""SSD — Selective Synaptic Dampening (Foster, Schoepf & Brintrup, "Fast
Machine Unlearning Without Retraining Through Selective Synaptic Dampening",
AAAI 2024; reference code: github.com/if-loops/selective-synaptic-dampening).

No training.  Two diagonal Fisher importances, each the mean over mini-batches
of the squared gradient of the batch's cross-entropy at the original weights:
I_D on the full training data (D_r ∪ D_f) and I_f on the forget set.  A
parameter θ_i is *selected* when it matters far more to D_f than to D:

    I_f,i > α · I_D,i

and every selected parameter is dampened by

    θ_i ← β_i · θ_i,   β_i = min(λ · I_D,i / I_f,i, 1)

(the reference's ``lower_bound`` 1 and ``exponent`` 1); every other parameter
is left exactly as it was.  The paper's setting (ResNet-18 / ViT, CIFAR
full-class and sub-class forgetting) is α = 10, λ = 1.

Defaults on the default `digits`/`mlp` models: the paper's α = 10, λ = 1,
importances over mini-batches of 64.

Search (validation split only): score = mean over the three default
scenarios and seeds 0-2 of ½(Avg. Gap + Gap-MUSO), both computed with the
validation split in place of the test set (for scale: original 21.1, FT
17.0, RL 8.9).  α ∈ {1, 3, 10, 30} × λ ∈ {0.3, 1, 3} gave 2.70 for the
paper's values and 2.57 at best (α ≤ 3, λ = 3), a difference within seed
noise, so we keep the paper's.  (α = 30 no longer selects enough
weights to forget a class: 13.9; α = 1 with λ ≤ 1 damages the retain set.)
On random forgetting SSD barely changes the model, which is close to what
Retrain does there.

`unlearnbench tune ssd` (equal budget for every method) searches α log-uniform
in [1, 30] and λ log-uniform in [0.3, 3] (the ranges of the search above); its
winners live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._api import Context, LogUniform, bounded, register_method


@dataclass
class Hyper:
    alpha: float = bounded(10.0, above=0)       # selection: dampen where forget importance > alpha × global importance
    dampening: float = bounded(1.0, above=0)    # λ: dampening factor min(λ · global / forget, 1)
    batch_size: int = bounded(64, low=1)      # mini-batch size of the importance estimates


def importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
               generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Diagonal Fisher estimate: mean over shuffled mini-batches of the squared
    gradient of the mean cross-entropy, per parameter (as the reference)."""
    was_training = model.training
    model.eval()
    params = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    order = torch.randperm(len(y), generator=generator).to(y.device)
    batches = order.split(batch_size)
    for idx in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        for name, p in params.items():
            if p.grad is not None:
                total[name] += p.grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: t / len(batches) for name, t in total.items()}


@torch.no_grad()
def dampen(model: nn.Module, global_importance: dict[str, torch.Tensor],
           forget_importance: dict[str, torch.Tensor], alpha: float, dampening: float) -> float:
    """Scale every parameter with forget importance > α × global importance by
    min(λ · global / forget, 1); leave the rest untouched.  Returns the share
    of parameters selected."""
    selected = total = 0
    for name, p in model.named_parameters():
        g, f = global_importance[name], forget_importance[name]
        chosen = f > alpha * g
        factor = (dampening * g[chosen] / f[chosen]).clamp(max=1.0)
        p[chosen] = p[chosen] * factor
        selected += int(chosen.sum())
        total += p.numel()
    return selected / max(total, 1)


@register_method("ssd", hyper=Hyper,
                 search_space={"alpha": LogUniform(1.0, 30.0), "dampening": LogUniform(0.3, 3.0)},
                 defaults_source="SSD paper (AAAI 2024): α = 10, λ = 1")
def ssd(ctx: Context, hp: Hyper):
    """SSD: dampen the parameters far more important to D_f than to D (no training)."""
    x_all = torch.cat([ctx.retain.x, ctx.forget.x])
    y_all = torch.cat([ctx.retain.y, ctx.forget.y])
    forget_imp = importance(ctx.model, ctx.forget.x, ctx.forget.y, hp.batch_size, ctx.generator)
    global_imp = importance(ctx.model, x_all, y_all, hp.batch_size, ctx.generator)
    dampen(ctx.model, global_imp, forget_imp, hp.alpha, hp.dampening)
    return ctx.model
