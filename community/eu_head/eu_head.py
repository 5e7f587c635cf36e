"""EU-k with k = the head: relearn the final layer from scratch on the retain set.

EU-k ("exact unlearning" of the last k layers; Goel et al., 2022, and a
baseline of SCRUB, Kurmanji et al., NeurIPS 2023) re-initialises the last k
layers and trains them on the retain set D_r with every earlier layer frozen.
With k = 1 it fits every unlearnbench model, each of which exposes its final
linear layer as ``model.head``.  The head restarts from θ₀, the initialisation
the Retrain reference started from, and is trained with the original's
optimiser and schedule: 10 epochs at the original's learning rate (0.05 for
the default digits/mlp), enough for the head to converge on D_r there.

This file is the worked example of docs/adding-a-method.md; submit it with
``unlearnbench submit examples/eu_head.py``.
"""
from dataclasses import dataclass

from unlearnbench.methods import Context, cross_entropy, fit, register_method


@dataclass
class Hyper:
    epochs: int = 10    # passes over the retain set
    lr: float = 0.05    # base learning rate (the original's optimiser and schedule)


@register_method("eu_head", hyper=Hyper)
def eu_head(ctx: Context, hp: Hyper):
    """EU-k, k = head: re-initialise the final layer from θ₀ and retrain it on D_r, features frozen."""
    model = ctx.model                              # a private copy of the original: change it freely
    model.head.load_state_dict({k.removeprefix("head."): v for k, v in ctx.theta0.items() if k.startswith("head.")})
    model.requires_grad_(False).head.requires_grad_(True)
    config = ctx.train_config.replace(epochs=hp.epochs, lr=hp.lr, warmup_epochs=0)
    fit(model, cross_entropy, ctx.retain.tensors, config, ctx.generator, augment=ctx.augment,
        train_mode=False,                          # frozen layers keep their normalisation statistics
        after_epoch=lambda epoch, _: ctx.progress((epoch + 1) / hp.epochs, f"epoch {epoch + 1}"))
    return model
