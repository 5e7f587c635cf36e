"""The fully connected network of the default benchmark, and its random-
Fourier-feature variant (the network form of MUSO's theorem)."""
from __future__ import annotations

import math

import torch
from torch import nn

from unlearnbench.methods import TrainConfig

from .base import Classifier, InputSpec
from .registry import register_model

ACTIVATIONS = ("relu", "cos")


class Cos(nn.Module):
    """``cos`` as a layer: with a Gaussian first layer and uniform phases, the
    hidden layer computes random Fourier features (Rahimi & Recht, 2007)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)


class MLP(Classifier):
    """Fully connected network: flatten → hidden layers → linear head.

    ``activation="relu"`` (default): ReLU hidden layers, PyTorch's default
    initialisation.  ``activation="cos"`` with one hidden layer is a random-
    Fourier-feature network: first-layer weights ``N(0, 1/bandwidth²)`` and
    biases ``U(0, 2π)`` on the standardised input, so the features' inner
    products are ``width/2 · exp(−‖x − x'‖²/(2·bandwidth²))`` in expectation;
    trained head-only (``train.trainable = "head"``) it is the over-
    parameterised linear model of MUSO's theorem, and a small bandwidth keeps
    its kernel well conditioned (what real SGD iterates need to converge).
    """

    def __init__(self, spec: InputSpec, hidden: tuple[int, ...] = (128, 128), activation: str = "relu",
                 bandwidth: float | None = None):
        super().__init__(spec)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(spec.shape)
        for h in hidden:
            layers += [nn.Linear(width, h), Cos() if activation == "cos" else nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, spec.num_classes)
        if activation == "cos":
            first = layers[1]
            with torch.no_grad():
                first.weight.normal_(0.0, 1.0 / bandwidth)
                first.bias.uniform_(0.0, 2.0 * math.pi)

    def body(self, x):
        return self.trunk(x)


@register_model("mlp", train=TrainConfig(epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4),
                summary="MLP, two hidden ReLU layers of 128 (kwargs hidden: a width or a list of widths; "
                        "activation relu|cos, bandwidth: a random-Fourier-feature layer)")
def mlp(spec: InputSpec, hidden=(128, 128), activation="relu", bandwidth=None) -> Classifier:
    widths = (hidden,) if isinstance(hidden, (int, float, str)) else tuple(hidden)
    try:
        widths = tuple(int(h) for h in widths)
    except (TypeError, ValueError):
        raise ValueError(f"hidden={hidden!r}: expected a width or a list of widths (positive integers)") from None
    if not widths or min(widths) < 1:
        raise ValueError(f"hidden={hidden!r}: expected a width or a list of widths (positive integers)")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; accepted: {', '.join(ACTIVATIONS)}")
    if activation == "cos":
        if len(widths) != 1:
            raise ValueError("activation='cos' (random Fourier features) needs one hidden layer, "
                             f"got hidden={hidden!r}")
        if bandwidth is None or not float(bandwidth) > 0:
            raise ValueError(f"activation='cos' needs a bandwidth > 0, got bandwidth={bandwidth!r}")
    elif bandwidth is not None:
        raise ValueError("bandwidth applies to activation='cos' only")
    return MLP(spec, widths, activation, None if bandwidth is None else float(bandwidth))
