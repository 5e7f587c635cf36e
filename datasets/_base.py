"""The in-memory dataset every loader returns, and the errors loaders raise.

This package imports nothing else of unlearnbench: it turns files into tensors
and indices into splits.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

DEFAULT_DATA_ROOT = Path("data")   # --data-root when none is given (relative to the working directory)


def data_root(root) -> Path:
    return Path(root) if root else DEFAULT_DATA_ROOT


class DataError(Exception):
    """Data that cannot be found or read; the message says how to get it."""


class UnknownName(ValueError):
    """An unknown registry name; the message lists the accepted names."""


@dataclass
class Dataset:
    """A labelled image dataset held as tensors.

    Images are ``N x C x H x W`` in their compact stored dtype (``uint8``
    pixels where the source is 8-bit); ``scale``, ``mean`` and ``std`` say how
    a model turns them into normalised floats: ``(x / scale - mean) / std``
    per channel.  Models apply this themselves (as their first layer), so the
    tensors stay compact and every consumer sees the same input.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    augment: str | None = None  # name of the batch-wise training augmentation, if any
    extras: dict = field(default_factory=dict)  # e.g. fine labels for sub-class forgetting

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """A short hash of the tensors: part of every cache key built on them."""
        h = hashlib.sha256(self.name.encode())
        for t in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]
