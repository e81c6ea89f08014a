"""Model zoo: ResNet family, ResNet-9 (Page), VGG-11, adapted to 1×28×28 Fashion-MNIST.

Every model takes ``norm`` (``norm(C) -> nn.Module``) and ``activation``
(``activation() -> nn.Module``) factories and maps [B, 1, 28, 28] to [B, 10] logits.
"""

from fmnist.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ZeroPadShortcut
from fmnist.models.resnet import ResNet
from fmnist.models.resnet9 import ResNet9
from fmnist.models.summary import count_flops, count_parameters, model_summary
from fmnist.models.vgg import VGG

__all__ = [
    "ResNet",
    "ResNet9",
    "VGG",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ZeroPadShortcut",
    "count_parameters",
    "count_flops",
    "model_summary",
]
