"""`svhn`: Street View House Numbers, cropped digits (73,257 train / 26,032
test, 32x32 RGB, 10 classes; the `extra` split is not used), through
``torchvision.datasets.SVHN``: ``train_32x32.mat`` and ``test_32x32.mat`` in
``DATA_ROOT/svhn/`` (``--download`` fetches them there) or ``DATA_ROOT``.
torchvision maps the files' label 10 to digit 0.
Training augmentation: random crop with 4-pixel zero padding + horizontal flip
(the CIFAR recipe, as the benchmark's other 32x32 sets).
"""
from __future__ import annotations

import numpy as np
import torch

from ._base import Dataset, data_root

CLASS_NAMES = tuple(str(i) for i in range(10))
MEAN = (0.4377, 0.4438, 0.4728)
STD = (0.1980, 0.2010, 0.1970)


def load(root=None, download: bool = False) -> Dataset:
    from torchvision.datasets import SVHN

    from ._torchvision import construct

    root = data_root(root)
    names = [SVHN.split_list[s][1] for s in ("train", "test")]
    # torchvision's own convention is the files directly in ROOT; ours is ROOT/svhn
    folder = next((f for f in (root / "svhn", root) if all((f / n).is_file() for n in names)), root / "svhn")
    splits = {}
    for split in ("train", "test"):
        ds = construct(SVHN, folder, download, "SVHN", [folder / n for n in names], "182 MB", split=split)
        splits[split] = (torch.from_numpy(np.ascontiguousarray(ds.data)), torch.as_tensor(ds.labels, dtype=torch.int64))
    return Dataset(name="svhn", x_train=splits["train"][0], y_train=splits["train"][1], x_test=splits["test"][0],
                   y_test=splits["test"][1], class_names=CLASS_NAMES, scale=255.0, mean=MEAN, std=STD,
                   augment="crop_flip")
