"""`fashion_mnist`: Zalando's Fashion-MNIST (60,000 train / 10,000 test, 28x28,
10 classes, MIT licence), through ``torchvision.datasets.FashionMNIST``.

Looked for in ``DATA_ROOT/FashionMNIST/raw`` (torchvision's layout, unzipped
IDX files; ``--download`` fetches them there), else as the four IDX files
(``.gz`` or not) directly in ``DATA_ROOT`` or ``DATA_ROOT/fashion-mnist``, and,
when no ``--data-root`` is given, in ``/usr/share/datasets/fashion-mnist``,
where the Debian package ``dataset-fashion-mnist`` installs them gzipped
(recompressed, so torchvision's checksums would reject them: they are read
directly).
"""
from __future__ import annotations

from pathlib import Path

from ._base import Dataset, data_root
from ._idx import load_idx_tensors, read_idx  # noqa: F401  (read_idx: part of this module's API)

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
HOW_TO_GET = ("install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), pass --data-root DIR "
              "for a folder holding the four IDX files, or add --download")


def load(root=None, download: bool = False) -> Dataset:
    from torchvision.datasets import FashionMNIST

    folder = data_root(root)
    flat = [folder, folder / "fashion-mnist"] + ([] if root else [DEBIAN_ROOT])
    t = load_idx_tensors(folder, FashionMNIST, download, flat, "Fashion-MNIST", how_to_get=HOW_TO_GET,
                         size="30 MB")
    return Dataset(name="fashion_mnist", x_train=t["x_train"], y_train=t["y_train"], x_test=t["x_test"],
                   y_test=t["y_test"], class_names=CLASS_NAMES, scale=255.0, mean=(0.2860,), std=(0.3530,))
