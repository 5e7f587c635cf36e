"""`rf_linear`: random Fourier features with a linear head — the
over-parameterised linear model of MUSO's theorem (Yang et al., arXiv
2410.08557), registered like every other model.

``features(x) = sqrt(1/D)·[cos(x Ω), sin(x Ω)]`` on the normalised, flattened
input, with ``Ω ~ N(0, 1/σ²)`` (``D = features/2`` columns, a fixed buffer, not
a parameter), so ``features(x)ᵀfeatures(x') ≈ exp(−‖x − x'‖²/2σ²)`` and every
feature vector has norm 1.  The head is a bias-free ``nn.Linear`` (the
paper's ``f(x) = φ(x)ᵀw``) initialised ``w₀ ~ N(0, init_std²)``.  Everything
is float64: the theorem is checked to 1e-8 and beyond.

Training uses the squared loss on one-hot targets (``targets="onehot"``) or
±1 targets (``"pm1"``: +1 for the true class, −1 elsewhere; with two classes
each output column is the paper's binary ±1 problem).  With more features
than samples, SGD from ``w₀`` converges to the interpolating weights closest
to ``w₀``; iterating there is hopeless on an ill-conditioned kernel (the slow
directions are the ones the theorem is about), so the model offers that
limit in closed form (:meth:`RandomFourierLinear.sgd_limit`) and the training
loop uses it whenever a run is one whose limit it is (see ``methods._train.fit``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.methods import TrainConfig, least_squares_limit, squared_loss

from ..errors import UsageError
from .base import Classifier, InputSpec
from .registry import register_model

TARGET_CODINGS = ("onehot", "pm1")


class RandomFourierLinear(Classifier):
    """Fixed random Fourier features, trainable bias-free linear head, float64."""

    def __init__(self, spec: InputSpec, features: int = 5000, sigma: float | None = None,
                 init_std: float = 0.01, targets: str = "onehot"):
        super().__init__(spec)
        if features < 2 or features % 2:
            raise TypeError(f"features must be an even number >= 2 (cos and sin pairs), got {features}")
        if targets not in TARGET_CODINGS:
            raise TypeError(f"targets must be one of {', '.join(TARGET_CODINGS)}, got {targets!r}")
        dim = math.prod(spec.shape)
        # default bandwidth: √d, the typical distance scale of standardised d-dimensional inputs
        self.sigma = float(sigma) if sigma is not None else math.sqrt(dim)
        if not self.sigma > 0:
            raise TypeError(f"sigma must be positive, got {sigma}")
        self.targets = targets
        self.register_buffer("frequencies", torch.randn(dim, features // 2, dtype=torch.float64) / self.sigma)
        self.head = nn.Linear(features, spec.num_classes, bias=False, dtype=torch.float64)
        nn.init.normal_(self.head.weight, std=init_std)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        angles = x.flatten(1).double() @ self.frequencies
        return torch.cat([angles.cos(), angles.sin()], dim=1) * math.sqrt(1.0 / self.frequencies.shape[1])

    # ---- the model's own training objective (consulted by methods._train) ----
    def encode_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Class indices → regression targets (one-hot or ±1); float targets pass through."""
        if y.is_floating_point():
            return y.double()
        onehot = F.one_hot(y, self.head.out_features).double()
        return onehot if self.targets == "onehot" else 2.0 * onehot - 1.0

    def training_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Squared loss ``½‖f(x) − t‖²``, averaged over the batch."""
        return squared_loss(outputs.double(), self.encode_targets(targets))

    def configure(self, train: TrainConfig) -> "RandomFourierLinear":
        if train.loss != "squared":
            raise UsageError(f"model 'rf_linear' trains with the squared loss only; got train.loss = {train.loss!r}")
        return super().configure(train)

    def soft_targets(self, outputs: torch.Tensor) -> torch.Tensor:
        """The targets under which ``outputs`` minimise the loss: the outputs themselves."""
        return outputs.double()

    @torch.no_grad()
    def sgd_limit(self, x: torch.Tensor, targets: torch.Tensor) -> None:
        """Set the head to where SGD on the squared loss over ``(x, targets)``
        converges from its current weights: ``w + Z⁺(T − Zw)`` (the closest
        interpolant when there are more features than samples)."""
        z = self.features(x)
        limit = least_squares_limit(z, self.encode_targets(targets), self.head.weight.T)
        self.head.weight.copy_(limit.T)


@register_model("rf_linear",
                train=TrainConfig(epochs=100, batch_size=64, optimizer="sgd", lr=0.5, momentum=0.0,
                                  weight_decay=0.0, schedule="constant", augment=False, loss="squared"),
                summary="random Fourier features + linear head, squared loss, trained to the SGD limit "
                        "(kwargs features=5000, sigma=√d, init_std=0.01, targets=onehot|pm1)")
def rf_linear(spec: InputSpec, features=5000, sigma=None, init_std=0.01, targets="onehot") -> Classifier:
    return RandomFourierLinear(spec, int(features), None if sigma is None else float(sigma),
                               float(init_std), str(targets))
