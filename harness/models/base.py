"""What every model is: a :class:`Classifier` on inputs described by an
:class:`InputSpec`.

Every model is a :class:`Classifier`: ``features(x)`` returns the penultimate
representation, ``head`` is the final ``nn.Linear`` and ``forward(x) =
head(features(x))``.  MUSO reads both; every other method just calls the
model.  Inputs are the dataset's stored tensors (e.g. uint8 pixels): the first
layer, :class:`Normalize`, scales and standardises them, as in the SalUn code
base, so no consumer has to know the dataset's statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unlearnbench.methods import TrainConfig, squared_loss


@dataclass(frozen=True)
class InputSpec:
    """What a model needs to know about its data."""

    shape: tuple[int, ...]     # C x H x W
    num_classes: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, ds) -> "InputSpec":
        return cls(tuple(ds.input_shape), ds.num_classes, float(ds.scale), tuple(ds.mean), tuple(ds.std))


class Normalize(nn.Module):
    """``(x / scale - mean) / std`` per channel, as buffers (not parameters)."""

    def __init__(self, spec: InputSpec):
        super().__init__()
        c = spec.shape[0]
        shape = (1, c) + (1,) * (len(spec.shape) - 1)
        mean = torch.tensor(spec.mean if len(spec.mean) == c else spec.mean * c, dtype=torch.float32)
        std = torch.tensor(spec.std if len(spec.std) == c else spec.std * c, dtype=torch.float32)
        self.register_buffer("mean", mean.view(shape))
        self.register_buffer("inv_std", (1.0 / std).view(shape))
        self.scale = spec.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / self.scale - self.mean) * self.inv_std


def _outputs_as_targets(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.detach().clone()


class Classifier(nn.Module):
    """``forward(x) = head(features(x))``; subclasses define ``body``.

    :meth:`configure` applies the training options that live in the model:
    its loss (``TrainConfig.loss``) and which layers train
    (``TrainConfig.trainable``).  With ``trainable="head"`` every layer but
    the head keeps its weights: ``requires_grad_`` never unfreezes them and
    ``train()`` keeps them in eval mode (batch-norm statistics fixed), so the
    network is a linear model on fixed random features, trained or unlearned.
    """

    head: nn.Linear
    trainable: str = "all"

    def __init__(self, spec: InputSpec):
        super().__init__()
        self.normalize = Normalize(spec)

    def configure(self, train: TrainConfig) -> "Classifier":
        if train.loss == "squared" and not hasattr(type(self), "training_loss"):   # rf_linear has its own
            # the squared loss on one-hot targets; MUSO's soft labels are then the outputs themselves
            self.training_loss = squared_loss
            self.soft_targets = _outputs_as_targets
        self.trainable = train.trainable
        return self.requires_grad_(True)

    def frozen_parameters(self) -> list[str]:
        """Names of the parameters that must keep their initial values."""
        if self.trainable == "all":
            return []
        return [name for name, _ in self.named_parameters() if not name.startswith("head.")]

    def requires_grad_(self, requires_grad: bool = True) -> "Classifier":
        super().requires_grad_(requires_grad)
        if requires_grad:
            frozen = set(self.frozen_parameters())
            for name, p in self.named_parameters():
                if name in frozen:
                    p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if mode and self.trainable == "head":
            for child in self.children():
                if child is not self.head:
                    child.eval()
        return self

    def body(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the input of ``head``)."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
