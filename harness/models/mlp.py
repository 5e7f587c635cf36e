"""The fully connected network of the default benchmark."""
from __future__ import annotations

import math

from torch import nn

from unlearnbench.methods import TrainConfig

from .base import Classifier, InputSpec
from .registry import register_model


class MLP(Classifier):
    """Fully connected ReLU network: flatten → hidden layers → linear head."""

    def __init__(self, spec: InputSpec, hidden: tuple[int, ...] = (128, 128)):
        super().__init__(spec)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(spec.shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, spec.num_classes)

    def body(self, x):
        return self.trunk(x)


@register_model("mlp", train=TrainConfig(epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4),
                summary="MLP, two hidden ReLU layers of 128 (kwarg hidden)")
def mlp(spec: InputSpec, hidden=(128, 128)) -> Classifier:
    return MLP(spec, tuple(int(h) for h in hidden))
