"""`cifar10`: Krizhevsky's CIFAR-10 (50,000 train / 10,000 test, 32x32 RGB,
10 classes), through ``torchvision.datasets.CIFAR10``: the python version,
``DATA_ROOT/cifar-10-batches-py/`` (``--download`` fetches and unpacks it).
Training augmentation: random crop with 4-pixel zero padding + horizontal flip.
"""
from __future__ import annotations

import numpy as np
import torch

from ._base import DataError, Dataset, data_root

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def cifar_files(tv_class, root) -> list:
    folder = root / tv_class.base_folder
    names = [name for name, _ in tv_class.train_list + tv_class.test_list] + [tv_class.meta["filename"]]
    return [folder / name for name in names]


def read_cifar(tv_class, root, download: bool, what: str, size: str):
    """(train, test) torchvision datasets, after checking the names in the meta file."""
    from ._torchvision import construct

    files = cifar_files(tv_class, root)
    train = construct(tv_class, root, download, what, files, size, train=True)
    test = construct(tv_class, root, download, what, files, size, train=False)
    return train, test


def to_tensors(tv_dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's ``N x H x W x C`` uint8 array → ``N x C x H x W`` tensor; labels int64."""
    x = torch.from_numpy(np.ascontiguousarray(tv_dataset.data.transpose(0, 3, 1, 2)))
    y = torch.as_tensor(np.asarray(tv_dataset.targets, dtype=np.int64))
    return x, y


def check_names(found, expected, what: str, root) -> None:
    if tuple(found) != tuple(expected):
        raise DataError(f"{what} in {root}: class names in the meta file differ from the published ones "
                        f"(first: {list(found)[:3]}); not the original dataset?")


def load(root=None, download: bool = False) -> Dataset:
    from torchvision.datasets import CIFAR10

    root = data_root(root)
    train, test = read_cifar(CIFAR10, root, download, "CIFAR-10", "163 MB")
    check_names(train.classes, CLASS_NAMES, "CIFAR-10", root)
    (x_train, y_train), (x_test, y_test) = to_tensors(train), to_tensors(test)
    return Dataset(name="cifar10", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=CLASS_NAMES, scale=255.0, mean=MEAN, std=STD, augment="crop_flip")
