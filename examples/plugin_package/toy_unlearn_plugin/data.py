"""Three Gaussian blobs as 1x4x4 "images" (a throw-away plugin dataset)."""
import torch

from unlearnbench.datasets import Dataset, register_dataset

CLASSES = ("left", "middle", "right")


def _blobs(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(7)) * 2.0
    x = centres[y] + 0.8 * torch.randn(n, 1, 4, 4, generator=g)
    return x.float(), y.long()


@register_dataset("toy_blobs", class_names=CLASSES, summary="three Gaussian blobs, 1x4x4 (plugin test)")
def load(root=None, download=False):
    x_train, y_train = _blobs(330, 0)
    x_test, y_test = _blobs(90, 1)
    return Dataset(name="toy_blobs", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=CLASSES, scale=1.0, mean=(0.0,), std=(1.0,))
