"""Retrain: the gold standard — train from the same initialisation θ₀ on the
retain set only, with exactly the original's training hyperparameters.

Every other method is judged by its distance to this model.  The harness
trains it once per (dataset, model, scenario, forget set, seed), caches it,
and reports it as this method's result (its time is that training's wall
time), so the function below is what the reference stage runs.
"""
from __future__ import annotations

from ._api import Context, register_method
from ._train import fit, supervised_loss


@register_method("retrain", reference="retrain")
def retrain(ctx: Context, hp=None):
    """Retrain from θ₀ on the retain set (the exact-unlearning reference)."""
    model = ctx.make_model()
    model.load_state_dict(ctx.theta0)
    fit(model, supervised_loss, ctx.retain.tensors, ctx.train_config, ctx.generator, augment=ctx.augment)
    return model
