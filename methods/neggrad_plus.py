"""NegGrad+ — fine-tuning on D_r while ascending the loss on D_f
(Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023;
reference code: github.com/meghdadk/SCRUB, ``train_negrad``).

One loss per step, on a retain batch and a forget batch drawn alongside it
(the forget set is cycled):

    L = β · CE(D_r batch) − (1 − β) · CE(D_f batch)

β = 1 is plain fine-tuning; β → 0 is gradient ascent.  The paper tunes β per
setting (the reference notebooks use values between 0.95 and 0.999) with SGD
(momentum 0.9, no weight decay) for a few epochs at lr ≈ 0.01.

Defaults on the default `digits`/`mlp` models: the original's optimiser
(SGD, momentum 0.9, weight decay 5e-4, cosine decay), 5 epochs, β = 0.9,
lr 0.03, gradient norm clipped at 1.

Search (validation split only): score = mean over the three default
scenarios and seeds 0-2 of ½(Avg. Gap + Gap-MUSO), both computed with the
validation split in place of the test set (for scale: original 21.1, FT
17.0, RL 8.9).  β ∈ {0.85, 0.9, 0.95, 0.99} × lr ∈ {0.01, 0.03, 0.1} × clip ∈
{off, 1}, then β ∈ {0.85, 0.9, 0.97} × lr ∈ {0.03, 0.05, 0.1} with clip 1.
Best 4.1 (β 0.9, lr 0.03, clip 1).  Without clipping, lr 0.1 overflows on
class forgetting for every β ≤ 0.95 (the forget loss is unbounded); with
β ≥ 0.97 at lr ≤ 0.05 the class is barely forgotten (forget accuracy ≥ 83%).

`unlearnbench tune neggrad_plus` (equal budget for every method) searches β
uniform in [0.85, 0.99] and lr log-uniform in [0.01, 0.1] (the ranges of the
search above; clip stays 1); its winners live in configs/tuned/.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch.nn import functional as F

from ._api import Context, LogUniform, Uniform, bounded, register_method
from ._train import fit


@dataclass
class Hyper:
    epochs: int = bounded(5, low=1)
    lr: float = bounded(0.03, above=0)
    beta: float = bounded(0.9, low=0, high=1)         # weight of the retain loss; 1 − β weighs the (negated) forget loss
    grad_clip: float = bounded(1.0, low=0)    # > 0: clip the gradient norm (the ascent term is unbounded); 0: off


def neggrad_plus_loss(beta: float):
    """β · CE(retain batch) − (1 − β) · CE(forget batch)."""
    def loss(model, retain_batch, forget_batch):
        retain = F.cross_entropy(model(retain_batch[0]), retain_batch[1])
        forget = F.cross_entropy(model(forget_batch[0]), forget_batch[1])
        return beta * retain - (1.0 - beta) * forget
    return loss


@register_method("neggrad_plus", hyper=Hyper,
                 search_space={"beta": Uniform(0.85, 0.99), "lr": LogUniform(0.01, 0.1)})
def neggrad_plus(ctx: Context, hp: Hyper):
    """NegGrad+: descend the retain loss and ascend the forget loss in one objective."""
    if not 0.0 <= hp.beta <= 1.0:
        raise ValueError(f"neggrad_plus.beta={hp.beta} must lie in [0, 1]")
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0, grad_clip=hp.grad_clip)
    fit(ctx.model, neggrad_plus_loss(hp.beta), ctx.retain.tensors, cfg, ctx.generator,
        extra=ctx.forget.tensors, augment=ctx.augment)
    return ctx.model
