"""Model architectures, registered by name.

Every model is a :class:`Classifier`: ``features(x)`` returns the penultimate
representation, ``head`` is the final ``nn.Linear`` and ``forward(x) =
head(features(x))``.  MUSO reads both; every other method just calls the
model.  Inputs are the dataset's stored tensors (e.g. uint8 pixels): the first
layer, :class:`Normalize`, scales and standardises them, as in the SalUn code
base, so no consumer has to know the dataset's statistics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..methods._train import TrainConfig, squared_loss
from .errors import UsageError


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


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., Classifier]
    train: TrainConfig           # default training of the original / retrain reference
    summary: str


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, *, train: TrainConfig, summary: str):
    def decorate(fn):
        _MODELS[name] = ModelInfo(name, fn, train, summary)
        return fn
    return decorate


@register_model("mlp", train=TrainConfig(epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4),
                summary="MLP, two hidden ReLU layers of 128 (kwarg hidden)")
def mlp(spec: InputSpec, hidden=(128, 128)) -> Classifier:
    return MLP(spec, tuple(int(h) for h in hidden))


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model(name: str) -> ModelInfo:
    try:
        return _MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; accepted: {', '.join(list_models())}") from None


def build_model(name: str, spec: InputSpec, model_args: dict | None = None,
                train: TrainConfig | None = None) -> Classifier:
    """A new model; with ``train``, configured for it (:meth:`Classifier.configure`)."""
    info = get_model(name)
    try:
        model = info.build(spec, **(model_args or {}))
    except TypeError as e:
        raise UsageError(f"bad arguments {model_args} for model {name!r}: {e}") from None
    return model.configure(train) if train is not None else model

from . import rf_linear as _rf_linear  # noqa: E402,F401  (registers `rf_linear`)
from . import convnets  # noqa: E402,F401  (registers cnn, resnet18)
