"""A one-hidden-layer net (a throw-away plugin architecture)."""
import math

from torch import nn

from unlearnbench.harness.models import Classifier, register_model
from unlearnbench.methods import TrainConfig


class TinyNet(Classifier):
    def __init__(self, spec, width=16):
        super().__init__(spec)
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(spec.shape), width), nn.ReLU())
        self.head = nn.Linear(width, spec.num_classes)

    def body(self, x):
        return self.trunk(x)


@register_model("tiny_net", train=TrainConfig(epochs=4, batch_size=32, lr=0.05),
                summary="one hidden layer (plugin test)")
def tiny_net(spec, width=16):
    return TinyNet(spec, int(width))
