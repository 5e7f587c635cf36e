"""`digits`: scikit-learn's bundled 8x8 handwritten digits (UCI ML digits).

1,797 real 8x8 images with 17 grey levels (0-16), 10 classes, shipped inside
scikit-learn: the embedded default dataset, never downloaded.  The data have
no official train/test split; ours is fixed (class-stratified, 25% test,
seed 0), so it is the same on every machine: 1,348 train / 449 test images.
"""
from __future__ import annotations

import numpy as np
import torch

from ._base import Dataset
from .splits import stratified_split

TEST_FRACTION = 0.25
SPLIT_SEED = 0
CLASS_NAMES = tuple(str(i) for i in range(10))


def load(root=None, download: bool = False) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]  # N x 1 x 8 x 8, values 0..16
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    return Dataset(
        name="digits",
        x_train=x[train_idx], y_train=y[train_idx],
        x_test=x[test_idx], y_test=y[test_idx],
        class_names=CLASS_NAMES,
        scale=16.0, mean=(0.3,), std=(0.38,),
    )
