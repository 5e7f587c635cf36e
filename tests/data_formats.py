"""Tiny datasets written in each real on-disk format, for the loaders to read
through their normal code path (torchvision's classes included).

Every writer returns the arrays it wrote, so a test can check that the
loader hands back exactly those pixels and labels.  torchvision verifies the
CIFAR and SVHN files against the MD5s of the published files;
:func:`accept_checksums` points those tables at the fixture files instead, so
the verification still runs (a corrupted fixture still fails it).
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

from unlearnbench.datasets import cifar10 as C10
from unlearnbench.datasets import cifar100 as C100


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _images(rng, n, shape=(3, 32, 32)):
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8)


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)   # the published files are Python-2 pickles


def write_cifar10(root: Path, n_train=50, n_test=20, seed=0) -> dict:
    """``root/cifar-10-batches-py``: five training batches, a test batch, batches.meta."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    x_train, x_test = _images(rng, n_train), _images(rng, n_test)
    y_train, y_test = np.arange(n_train) % 10, rng.integers(0, 10, n_test)
    for i, part in enumerate(np.array_split(np.arange(n_train), 5)):
        _pickle(folder / f"data_batch_{i + 1}", {"batch_label": f"training batch {i + 1} of 5",
                                                 "data": x_train[part].reshape(len(part), -1),
                                                 "labels": y_train[part].tolist(),
                                                 "filenames": [f"img{j}.png" for j in part]})
    _pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": x_test.reshape(n_test, -1),
                                    "labels": y_test.tolist(), "filenames": [f"t{j}.png" for j in range(n_test)]})
    _pickle(folder / "batches.meta", {"label_names": list(C10.CLASS_NAMES), "num_cases_per_batch": 10000,
                                      "num_vis": 3072})
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_cifar100(root: Path, n_train=200, n_test=100, seed=0) -> dict:
    """``root/cifar-100-python``: train, test (fine and coarse labels) and meta."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = _images(rng, n)
        fine = np.arange(n) % 100
        coarse = C100.COARSE_OF_FINE[fine]
        _pickle(folder / split, {"filenames": [f"{split}{j}.png" for j in range(n)], "batch_label": split,
                                 "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist(),
                                 "data": x.reshape(n, -1)})
        out.update({f"x_{split}": x, f"fine_{split}": fine, f"coarse_{split}": coarse})
    _pickle(folder / "meta", {"fine_label_names": list(C100.FINE_NAMES),
                              "coarse_label_names": list(C100.COARSE_NAMES)})
    return out


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def write_mnist(folder: Path, n_train=30, n_test=10, compress=False, seed=0) -> dict:
    """The four IDX files of MNIST / Fashion-MNIST in ``folder``."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": np.arange(n_train) % 10,
              "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": np.arange(n_test) % 10}
    suffix = ".gz" if compress else ""
    for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                      ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        write_idx(folder / (stem + suffix), arrays[key], compress)
    return arrays


def write_svhn(folder: Path, n_train=30, n_test=20, seed=0) -> dict:
    """train_32x32.mat / test_32x32.mat as published: X is H x W x C x N, y is
    N x 1 with label 10 for the digit 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = _images(rng, n)                       # N x C x H x W, what the loader must return
        digits = np.arange(n) % 10
        savemat(folder / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0),
                                                 "y": np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]})
        out.update({f"x_{split}": x, f"y_{split}": digits})
    return out


def accept_checksums(monkeypatch, root: Path) -> None:
    """Pin torchvision's CIFAR / SVHN MD5 tables to the fixture files under ``root``."""
    from torchvision.datasets import CIFAR10, CIFAR100, SVHN

    root = Path(root)
    for cls in (CIFAR10, CIFAR100):
        folder = root / cls.base_folder
        if not folder.is_dir():
            continue
        for attr in ("train_list", "test_list"):
            monkeypatch.setattr(cls, attr, [[name, _md5(folder / name)] for name, _ in getattr(cls, attr)])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / cls.meta["filename"])})
    for folder in (root, root / "svhn"):
        if (folder / "train_32x32.mat").is_file():
            table = {split: [url, name, _md5(folder / name) if (folder / name).is_file() else md5]
                     for split, (url, name, md5) in SVHN.split_list.items()}
            monkeypatch.setattr(SVHN, "split_list", table)
