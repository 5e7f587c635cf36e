"""Batch-wise training augmentations, applied on the device to whole batches
of stored (e.g. uint8) images — never per sample in Python."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop with zero padding + random horizontal flip (the standard
    CIFAR/SVHN augmentation), independently per image."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = top[:, None] + torch.arange(h, device=x.device)[None, :]                    # n x h
    cols = left[:, None] + torch.arange(w, device=x.device)[None, :]                   # n x w
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


AUGMENTATIONS = {"crop_flip": crop_flip}


def get_augmentation(name: str | None):
    if name is None:
        return None
    return AUGMENTATIONS[name]
