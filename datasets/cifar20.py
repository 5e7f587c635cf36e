"""`cifar20`: CIFAR-100's images with its 20 superclass ("coarse") labels, as
in SSD (Foster et al., AAAI 2024) and MUSO.  Each image keeps its fine label
(``extras["fine_train"]`` / ``["fine_test"]``, names in ``["fine_names"]``) for
the `subclass` scenario: forget one fine class (e.g. rocket) while its
superclass (vehicles_2) stays a class of the model.  Same files as `cifar100`.
"""
from __future__ import annotations

from ._base import Dataset, data_root
from .cifar100 import COARSE_NAMES, FINE_NAMES, MEAN, STD, load_arrays

CLASS_NAMES = COARSE_NAMES
SUBCLASS_NAMES = FINE_NAMES


def load(root=None, download: bool = False) -> Dataset:
    root = data_root(root)
    a = load_arrays(root, download)
    return Dataset(name="cifar20", x_train=a["x_train"], y_train=a["coarse_train"], x_test=a["x_test"],
                   y_test=a["coarse_test"], class_names=COARSE_NAMES, scale=255.0, mean=MEAN, std=STD,
                   augment="crop_flip",
                   extras={"fine_train": a["fine_train"], "fine_test": a["fine_test"], "fine_names": FINE_NAMES})
