"""`fashion_mnist`: Zalando's Fashion-MNIST (60,000 train / 10,000 test, 28x28,
10 classes, MIT licence), read directly from its four IDX files.

Default location: ``/usr/share/datasets/fashion-mnist`` (Debian package
``dataset-fashion-mnist``).  ``--data-root DIR`` points elsewhere; the files
may be gzipped or not, directly in DIR or in torchvision's layout
``DIR/FashionMNIST/raw``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ._base import DataError, Dataset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
HOW_TO_GET = ("install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
              "or download the four IDX files from "
              "https://github.com/zalandoresearch/fashion-mnist and pass --data-root DIR")


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: only unsigned-byte IDX files are supported (type 0x{data[2]:02x})")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise DataError(f"{path}: header says {dims} ({expected} bytes) but the file holds {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def find_file(root: Path, stem: str) -> Path:
    for folder in (root, root / "FashionMNIST" / "raw", root / "fashion-mnist"):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"Fashion-MNIST file {stem}[.gz] not found in {root}; {HOW_TO_GET}")


def load(root=None, download: bool = False) -> Dataset:
    root = Path(root) if root else DEFAULT_ROOT
    arrays = {key: read_idx(find_file(root, stem)) for key, stem in FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DataError(f"Fashion-MNIST {split} images and labels differ in length in {root}")
    t = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    return Dataset(
        name="fashion_mnist",
        x_train=t["x_train"][:, None], y_train=t["y_train"].long(),
        x_test=t["x_test"][:, None], y_test=t["y_test"].long(),
        class_names=CLASS_NAMES,
        scale=255.0, mean=(0.2860,), std=(0.3530,),
    )
