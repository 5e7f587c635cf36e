"""`cifar100`: Krizhevsky's CIFAR-100 (50,000 train / 10,000 test, 32x32 RGB,
100 fine classes in 20 superclasses), through ``torchvision.datasets.CIFAR100``:
the python version, ``DATA_ROOT/cifar-100-python/`` (``--download`` fetches and
unpacks it).  Labels are the 100 fine classes; `cifar20` uses the superclasses.
Training augmentation: random crop with 4-pixel zero padding + horizontal flip.
"""
from __future__ import annotations

import pickle

import numpy as np
import torch

from ._base import DataError, Dataset, data_root
from .cifar10 import check_names, read_cifar, to_tensors

# The published label names, in label order (the meta file's `fine_label_names`).
FINE_NAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
# The 20 superclasses (`coarse_label_names`, in label order) and their five fine classes each.
SUPERCLASSES = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
COARSE_NAMES = tuple(SUPERCLASSES)
COARSE_OF_FINE = np.array([next(i for i, members in enumerate(SUPERCLASSES.values()) if name in members)
                           for name in FINE_NAMES], dtype=np.int64)
CLASS_NAMES = FINE_NAMES
MEAN = (0.5071, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)


def load_arrays(root, download: bool) -> dict:
    """Images, fine and coarse labels of both splits (the shared reader of
    `cifar100` and `cifar20`)."""
    from torchvision.datasets import CIFAR100

    train, test = read_cifar(CIFAR100, root, download, "CIFAR-100", "161 MB")
    check_names(train.classes, FINE_NAMES, "CIFAR-100", root)
    out = {}
    for split, ds, (name, _) in (("train", train, CIFAR100.train_list[0]), ("test", test, CIFAR100.test_list[0])):
        out[f"x_{split}"], out[f"fine_{split}"] = to_tensors(ds)
        # torchvision keeps only the fine labels; the coarse ones are in the same
        # file, which torchvision has just verified against its published MD5.
        with open(root / CIFAR100.base_folder / name, "rb") as f:
            coarse = np.asarray(pickle.load(f, encoding="latin1")["coarse_labels"], dtype=np.int64)
        if not np.array_equal(coarse, COARSE_OF_FINE[out[f"fine_{split}"].numpy()]):
            raise DataError(f"CIFAR-100 in {root}: the {split} file's superclass labels do not match "
                            "the published fine-to-superclass map")
        out[f"coarse_{split}"] = torch.from_numpy(coarse)
    return out


def load(root=None, download: bool = False) -> Dataset:
    root = data_root(root)
    a = load_arrays(root, download)
    return Dataset(name="cifar100", x_train=a["x_train"], y_train=a["fine_train"], x_test=a["x_test"],
                   y_test=a["fine_test"], class_names=FINE_NAMES, scale=255.0, mean=MEAN, std=STD,
                   augment="crop_flip")
