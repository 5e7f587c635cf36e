"""SCRUB (Kurmanji, Triantafillou, Hayes & Triantafillou, "Towards Unbounded
Machine Unlearning", NeurIPS 2023; reference code: github.com/meghdadk/SCRUB).

Teacher = the frozen original, student = a copy of it.  With the temperature-
scaled distillation divergence  d(x) = τ² · KL(p_t(x) ‖ p_s(x)),
p = softmax(logits / τ), every epoch e runs

* a **max phase** (only while e < ``max_epochs``): one pass over D_f
  *maximising* the divergence, i.e. minimising −d(x_f);
* a **min phase**: one pass over D_r minimising α · d(x_r) + γ · CE(x_r).

(The reference calls ``max_epochs`` "msteps" and runs max-steps for epochs
0..msteps inclusive; α weighs the KL and γ the cross-entropy, as in the
paper's Eq. 3.)  Each phase is one call of the shared training loop, with a
fresh optimiser of the original's kind (the reference keeps one SGD
optimiser, hence its momentum, across phases).

**Rewind** (SCRUB+R, ``rewind=True``): keep the student after every epoch;
at the end take the final student's error on held-out samples of the forget
distribution (the validation split; its samples of the forgotten class in
the class scenario) as the target forget error, and return the checkpoint
whose error on D_f is closest to it, so that D_f is not forgotten "too much"
(which would itself reveal membership).

The reference notebooks use SGD (momentum 0.9, weight decay 5e-4) at lr 5e-4,
τ = 4, γ = 0.99, α = 0.001-0.5, 2-3 max epochs of 3-10, batch 128 on D_r and
32-64 on D_f, with step decays of the lr at epochs 3, 5 and 9.

Defaults on the default `digits`/`mlp` models: the original's optimiser
(SGD, momentum 0.9, weight decay 5e-4) at a constant lr, 5 epochs of which
the first 2 have max-steps, τ = 4, γ = 0.99, α = 0.001, batches 128 / 32,
gradient norm clipped at 3; lr 5e-3, and 0.05 for class forgetting.  The
max-steps start at a stationary point (student = teacher, zero gradient) and
then ascend an unbounded divergence, so the small, over-confident `mlp`
either does not leave the original or collapses: at the reference's lr 5e-4
nothing moves; a forgotten class needs lr ≈ 0.05, at which a 50% random
forget set (19 max-steps per epoch) drives the model to chance accuracy or
overflows.  Hence one lr per scenario kind.

Search (validation split only): score = mean over the three default
scenarios and seeds 0-2 of ½(Avg. Gap + Gap-MUSO), both computed with the
validation split in place of the test set (for scale: original 21.1, FT
17.0, RL 8.9).  Grid, not the full product: lr ∈ {5e-4, 2e-3, 5e-3, 0.01,
0.02, 0.05, 0.1} × max epochs ∈ {1, 2, 3} × clip ∈ {off, 1, 3, 10} × α ∈
{0.001, 0.5} × forget batch ∈ {32, 128}.  Random forgetting: lr 5e-3, 2 max
epochs, clip 3 scores 2.4 / 3.1 on the 10% / 50% splits (lr 0.01 or 3 max
epochs collapse the 50% split); class forgetting: lr 0.05 scores 0.9 (lr 0.02
does not forget: 44.7).

`unlearnbench tune scrub` (equal budget for every method) searches lr
log-uniform in [5e-4, 0.1], max epochs 1..3 and α in {0.001, 0.5} (the main
axes of the search above); its winners live in configs/tuned/.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ._api import Choice, Context, IntRange, LogUniform, Split, bounded, register_method
from ._train import fit


@dataclass
class Hyper:
    epochs: int = bounded(5, low=1)
    max_epochs: int = bounded(2, low=0)          # max-steps (ascent on D_f) only in the first max_epochs epochs
    lr: float = bounded(5e-3, above=0)
    alpha: float = bounded(0.001, low=0)         # weight of the KL term of the min-steps
    gamma: float = bounded(0.99, low=0)          # weight of the cross-entropy term of the min-steps
    temperature: float = bounded(4.0, above=0)
    batch_size: int = bounded(128, low=1)        # retain batches (min-steps)
    forget_batch_size: int = bounded(32, low=1)  # forget batches (max-steps)
    grad_clip: float = bounded(3.0, low=0)       # > 0: clip the gradient norm (the max-step objective is unbounded); 0: off
    rewind: bool = False         # SCRUB+R: return the epoch whose forget error matches held-out error


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """τ² · KL(teacher ‖ student) of the temperature-softened softmaxes, mean over the batch."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature ** 2


def max_step_loss(teacher: nn.Module, hp: Hyper):
    """Forget batches: minimising −KL(teacher ‖ student) pushes the student away."""
    def loss(student, batch, extra_batch=None):
        with torch.no_grad():
            target = teacher(batch[0])
        return -distill_kl(student(batch[0]), target, hp.temperature)
    return loss


def min_step_loss(teacher: nn.Module, hp: Hyper):
    """Retain batches: stay close to the teacher and fit the labels."""
    def loss(student, batch, extra_batch=None):
        x, y = batch
        with torch.no_grad():
            target = teacher(x)
        logits = student(x)
        return hp.alpha * distill_kl(logits, target, hp.temperature) + hp.gamma * F.cross_entropy(logits, y)
    return loss


@torch.no_grad()
def error_rate(model: nn.Module, split: Split, batch_size: int = 1024) -> float:
    wrong = sum(int((model(xb).argmax(1) != yb).sum())
                for xb, yb in zip(split.x.split(batch_size), split.y.split(batch_size)))
    return wrong / len(split)


def held_out_forget(ctx: Context) -> Split:
    """Validation samples from the forget set's distribution."""
    if ctx.forget_class is None:
        return ctx.val
    same = ctx.val.y == ctx.forget_class
    return Split(ctx.val.x[same], ctx.val.y[same])


@register_method("scrub", hyper=Hyper, scenario_defaults={"class": {"lr": 0.05}},
                 search_space={"lr": LogUniform(5e-4, 0.1),
                               "max_epochs": IntRange(1, 3),
                               "alpha": Choice(0.001, 0.5)})
def scrub(ctx: Context, hp: Hyper):
    """SCRUB: alternate max-steps on the forget set and min-steps on the retain set against the original."""
    held_out = held_out_forget(ctx)
    if hp.rewind and len(held_out) == 0:
        raise ValueError("scrub.rewind needs validation samples of the forget distribution (val_frac > 0)")
    teacher = ctx.original
    base = ctx.train_config.replace(epochs=1, lr=hp.lr, schedule="constant", warmup_epochs=0,
                                    grad_clip=hp.grad_clip)
    max_cfg = base.replace(batch_size=hp.forget_batch_size)
    min_cfg = base.replace(batch_size=hp.batch_size)
    checkpoints = []
    for epoch in range(hp.epochs):
        if epoch < hp.max_epochs:
            fit(ctx.model, max_step_loss(teacher, hp), ctx.forget.tensors, max_cfg, ctx.generator,
                augment=ctx.augment)
        fit(ctx.model, min_step_loss(teacher, hp), ctx.retain.tensors, min_cfg, ctx.generator,
            augment=ctx.augment)
        if hp.rewind:
            checkpoints.append(copy.deepcopy(ctx.model.state_dict()))
        ctx.progress((epoch + 1) / hp.epochs)
    if hp.rewind:
        target = error_rate(ctx.model, held_out)
        errors = []
        for state in checkpoints:
            ctx.model.load_state_dict(state)
            errors.append(error_rate(ctx.model, ctx.forget))
        best = min(range(len(errors)), key=lambda i: abs(errors[i] - target))
        ctx.model.load_state_dict(checkpoints[best])
    return ctx.model
