"""`mnist`: LeCun et al.'s handwritten digits (60,000 train / 10,000 test,
28x28 grey, 10 classes), through ``torchvision.datasets.MNIST``.

Looked for in ``DATA_ROOT/MNIST/raw`` (torchvision's layout, unzipped IDX
files; ``--download`` fetches them there), else as the four IDX files
(``.gz`` or not) directly in ``DATA_ROOT`` or ``DATA_ROOT/mnist``.
"""
from __future__ import annotations

from ._base import Dataset, data_root
from ._idx import load_idx_tensors

CLASS_NAMES = tuple(str(i) for i in range(10))


def load(root=None, download: bool = False) -> Dataset:
    from torchvision.datasets import MNIST

    root = data_root(root)
    t = load_idx_tensors(root, MNIST, download, [root, root / "mnist"], "MNIST",
                         how_to_get="pass --data-root DIR for a folder holding the four IDX files, "
                                    "or add --download to fetch them (12 MB)", size="12 MB")
    return Dataset(name="mnist", x_train=t["x_train"], y_train=t["y_train"], x_test=t["x_test"],
                   y_test=t["y_test"], class_names=CLASS_NAMES, scale=255.0, mean=(0.1307,), std=(0.3081,))
