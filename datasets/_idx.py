"""The IDX format of MNIST and Fashion-MNIST, read directly (gzipped or not).

torchvision's MNIST / FashionMNIST classes read only unzipped files in their
own layout (``ROOT/<Class>/raw/``); the loaders use them there, and this reader
for the same files elsewhere (e.g. the gzipped copies a Debian package or a
manual download leaves in a flat folder).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ._base import DataError

STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


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


def find_flat(folder: Path) -> dict[str, Path] | None:
    """The four IDX files (``.gz`` or plain) directly in ``folder``, or None."""
    found = {}
    for key, stem in STEMS.items():
        hits = [folder / name for name in (stem + ".gz", stem) if (folder / name).is_file()]
        if not hits:
            return None
        found[key] = hits[0]
    return found


def has_torchvision_layout(root: Path, tv_class) -> bool:
    """Unzipped files where torchvision's class reads them: ``ROOT/<Class>/raw``."""
    raw = root / tv_class.__name__ / "raw"
    return all((raw / stem).is_file() for stem in STEMS.values())


def load_idx_tensors(root: Path, tv_class, download: bool, flat_folders: list[Path], what: str,
                     how_to_get: str, size: str) -> dict[str, torch.Tensor]:
    """x/y train/test as uint8 images ``N x 1 x H x W`` and int64 labels.

    Order of search: torchvision's layout under ``root`` (read by ``tv_class``,
    which also downloads into it when ``download``), then any folder among
    torchvision's ``raw/`` and ``flat_folders`` holding the four files.
    """
    if download or has_torchvision_layout(root, tv_class):
        from ._torchvision import construct

        files = [root / tv_class.__name__ / "raw" / stem for stem in STEMS.values()]
        train = construct(tv_class, root, download, what, files, size, train=True)
        test = construct(tv_class, root, download, what, files, size, train=False)
        t = {"x_train": train.data, "y_train": train.targets, "x_test": test.data, "y_test": test.targets}
    else:
        folders = [root / tv_class.__name__ / "raw", *flat_folders]   # e.g. only the .gz files in raw/
        files = next((f for f in map(find_flat, folders) if f), None)
        if files is None:
            looked = ", ".join(str(p) for p in folders)
            raise DataError(f"{what} not found (looked in {looked}); {how_to_get}")
        t = {k: torch.from_numpy(read_idx(p).copy()) for k, p in files.items()}
    for split in ("train", "test"):
        if len(t[f"x_{split}"]) != len(t[f"y_{split}"]):
            raise DataError(f"{what} {split} images and labels differ in length in {root}")
    return {k: (v[:, None].to(torch.uint8) if k.startswith("x") else v.long()) for k, v in t.items()}
