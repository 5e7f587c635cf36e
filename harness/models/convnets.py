"""Convolutional models: a small CNN for 28x28 / 32x32 inputs and the CIFAR
ResNet-18 of the unlearning literature.  Registered when the models package is
imported; both are :class:`Classifier` s (``features`` + ``head``).
"""
from __future__ import annotations

from torch import nn

from unlearnbench.methods import TrainConfig

from ..errors import UsageError
from .base import Classifier, InputSpec
from .registry import register_model


class SmallCNN(Classifier):
    """conv3x3(c1)-ReLU-maxpool → conv3x3(c2)-ReLU-maxpool → fc(hidden)-ReLU → head.

    The classic two-block MNIST-family network; "same" padding, so 28x28 gives
    7x7 maps before the fc layer and 32x32 gives 8x8.  No batch norm: every
    buffer-free parameter is a weight the parameter distance sees.
    """

    def __init__(self, spec: InputSpec, channels: tuple[int, int] = (32, 64), hidden: int = 128):
        super().__init__(spec)
        c, h, w = spec.shape
        c1, c2 = channels
        self.trunk = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), hidden), nn.ReLU())
        self.head = nn.Linear(hidden, spec.num_classes)

    def body(self, x):
        return self.trunk(x)


class CifarResNet18(Classifier):
    """torchvision's ResNet-18 with the CIFAR stem of the unlearning literature
    (SalUn, SSD, MUSO, ...): a 3x3 stride-1 first convolution and no max-pool,
    so 32x32 inputs keep 32x32 maps in the first stage.  Features: the 512-d
    globally pooled output of the last stage."""

    def __init__(self, spec: InputSpec):
        super().__init__(spec)
        from torchvision.models import resnet18  # imported here: torchvision costs seconds at start-up

        net = resnet18(num_classes=spec.num_classes)
        net.conv1 = nn.Conv2d(spec.shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision inits conv1
        net.maxpool = nn.Identity()
        self.head = net.fc
        net.fc = nn.Identity()
        self.net = net

    def body(self, x):
        return self.net(x)


@register_model("cnn", train=TrainConfig(epochs=20, batch_size=128, lr=0.05, weight_decay=5e-4),
                summary="small CNN: conv32-pool-conv64-pool-fc128 (kwargs channels; hidden, the head's input "
                        "width); 28x28 or 32x32")
def cnn(spec: InputSpec, channels=(32, 64), hidden=128) -> Classifier:
    if len(spec.shape) != 3 or min(spec.shape[1:]) < 4:
        raise UsageError(f"model 'cnn' needs C x H x W images of at least 4x4; the data are {spec.shape}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden={hidden!r}: expected the head's input width, a positive integer")
    return SmallCNN(spec, tuple(int(c) for c in channels), hidden)


@register_model("resnet18", train=TrainConfig(epochs=100, batch_size=128, lr=0.1, weight_decay=5e-4,
                                              schedule="step", milestones=(0.8, 0.9), warmup_epochs=2),
                summary="ResNet-18, CIFAR stem (3x3 conv1, no max-pool), 11.2M parameters")
def resnet18(spec: InputSpec) -> Classifier:
    if len(spec.shape) != 3 or min(spec.shape[1:]) < 8:
        raise UsageError(f"model 'resnet18' needs C x H x W images of at least 8x8; the data are {spec.shape}")
    return CifarResNet18(spec)
