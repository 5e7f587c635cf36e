"""Original: no unlearning at all — the model trained on the full training set.

The reference row every table starts with: it shows how far the methods have
to travel.  The harness evaluates its cached original model (time 0).
"""
from __future__ import annotations

from ._api import Context, register_method


@register_method("original", reference="original")
def original(ctx: Context, hp=None):
    """Original: the trained model, unchanged (no unlearning)."""
    return ctx.model
