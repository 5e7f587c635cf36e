"""NegGrad+ — fine-tuning on D_r while ascending the loss on D_f
(Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023).
Reference code: github.com/meghdadk/SCRUB, ``train_negrad`` of
``thirdparty/repdistiller/helper/loops.py`` (the loop) and
``negative_grad`` / the "Negative Gradient" cell of
``small_scale_unlearning.ipynb`` (optimiser and settings).

One loss per step, on a retain batch and a forget batch drawn alongside it
(the forget set is cycled):

Fidelity to the reference, defaults and search window: docs/method-notes.md#neggrad_plus.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._api import Context, LogUniform, Uniform, bounded, register_method
from ._train import fit, model_loss


@dataclass
class Hyper:
    epochs: int = bounded(10, low=1)
    lr: float = bounded(0.01, above=0)
    beta: float = bounded(0.95, low=0, high=1)   # weight of the retain loss; 1 − β weighs the (negated) forget loss
    grad_clip: float = bounded(0.0, low=0)       # > 0: clip the gradient's global L2 norm (not in the reference)
    prox_weight: float = bounded(0.1, low=0)     # wd of the notebook's β·(wd/2)·‖θ − θ_start‖² (--weight-decay 0.1)


def proximal(model, start: list, weight: float):
    """(wd/2)·‖θ − θ_start‖² over the trainable parameters (the notebook's ``l2_penalty``)."""
    if weight == 0:
        return 0.0
    sq = sum(((p - p0) ** 2).sum() for p, p0 in zip(model.parameters(), start) if p.requires_grad)
    return (weight / 2.0) * sq


def neggrad_plus_loss(beta: float, start: list | None = None, prox_weight: float = 0.0):
    """β · [L(retain batch) + (wd/2)‖θ − θ_start‖²] − (1 − β) · L(forget batch), L the model's own loss."""
    def loss(model, retain_batch, forget_batch):
        fit_loss = model_loss(model)
        retain = fit_loss(model(retain_batch[0]), retain_batch[1])
        if start is not None:
            retain = retain + proximal(model, start, prox_weight)
        forget = fit_loss(model(forget_batch[0]), forget_batch[1])
        return beta * retain - (1.0 - beta) * forget
    return loss


# Window measured by scripts/tuning_windows.py (validation seed 100, digits MLP; docs/metrics.md, "Tuning"):
# at β 0.95 predictions change from lr 0.03 (random 50%) / 0.1 (random 10%, class 0); class 0 goes from
# no-op at 0.03 to collapse at 0.1, random forgetting collapses at 1.0: 0.01..0.5.
@register_method("neggrad_plus", hyper=Hyper,
                 search_space={"beta": Uniform(0.85, 0.99), "lr": LogUniform(0.01, 0.5)},
                 defaults_source="SCRUB code, small_scale_unlearning.ipynb negative_grad cell")
def neggrad_plus(ctx: Context, hp: Hyper):
    """NegGrad+: descend the retain loss and ascend the forget loss in one objective (plain SGD)."""
    if not 0.0 <= hp.beta <= 1.0:
        raise ValueError(f"neggrad_plus.beta={hp.beta} must lie in [0, 1]")
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, optimizer="sgd", momentum=0.0, weight_decay=0.0,
                                   schedule="constant", warmup_epochs=0, grad_clip=hp.grad_clip)
    # no data augmentation: the notebooks build their loaders with augment=False
    start = [p.detach().clone() for p in ctx.model.parameters()]
    loss = neggrad_plus_loss(hp.beta, start, hp.prox_weight)
    fit(ctx.model, loss, ctx.retain.tensors, cfg, ctx.generator, extra=ctx.forget.tensors)
    return ctx.model
