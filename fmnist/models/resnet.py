"""ResNet family (He et al. 2015, "Deep Residual Learning"; He et al. 2016, "Identity Mappings")
adapted to 1×28×28 Fashion-MNIST.

Deviations from the ImageNet papers (all deliberate, for 28×28 inputs):

* CIFAR-style stem: one 3×3 conv, stride 1 (instead of 7×7 stride 2) + norm + act, and no
  max-pool, so the first stage runs at full 28×28 resolution. In pre-activation nets the
  stem is the conv alone: the first block's own norm+act pre-activates its output (and the
  final norm+act before pooling closes the net, as in He et al. 2016).
* Four stages of widths ``width·2^i`` (64, 128, 256, 512 at the default width; ×4 outputs
  for bottleneck blocks); stage i>0 downsamples with stride 2 in its first block:
  28→14→7→4 (the 7→4 step pads; a 3×3/s2/p1 conv and ``x[..., ::2, ::2]`` both give 4).
* Bottleneck blocks put the stride on the 3×3 conv ("v1.5"); same parameter count.
* Global average pool, optional dropout, one linear classifier (with bias).
* ``num_classes=10``, ``in_channels=1``.
* Initialisation: see ``layers.init_weights`` (``init="kaiming"``: conv kaiming-normal
  fan_out/relu as in torchvision; ``init="default"``: torch defaults).
* ``norm``/``activation`` are factories (see ``layers``); with ``norm=none`` every conv gets
  a bias. ``zero_init_residual=True`` zeroes the last norm weight of each residual branch
  (a no-op for ``norm=none``, whose identity has no weight); pre-activation blocks zero their
  last conv instead (see ``blocks._Block.zero_init_branch``).

With width 64, projection shortcuts and BatchNorm: ResNet-18 has 11,172,810 trainable
parameters and ResNet-50 23,519,690.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from fmnist.errors import ConfigError
from fmnist.models.blocks import (
    SHORTCUTS,
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
)
from fmnist.models.layers import ActivationFactory, NormFactory, check_width_dropout, conv3x3, conv_bias, init_weights

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "preact_resnet18", "plain18"]

_BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}


class ResNet(nn.Module):
    """Configurable ResNet / pre-activation ResNet / plain net for [B, in_channels, 28, 28] inputs.

    Args:
        depths: blocks per stage, e.g. ``[2, 2, 2, 2]`` (ResNet-18), ``[3, 4, 6, 3]`` (34/50).
        block: ``"basic"`` (two 3×3 convs) or ``"bottleneck"`` (1×1-3×3-1×1, expansion 4).
        width: channels of the stem and first stage; stage i has ``width·2^i`` (×4 out for bottleneck).
        skip: ``False`` removes every residual addition and every shortcut module; all other
            layers are kept, so a plain twin differs from its residual twin only by the
            projection-shortcut parameters.
        shortcut: ``"projection"`` (identity when shapes match, else 1×1 conv stride s + norm)
            or ``"zeropad"`` (option A: subsample + zero channels, parameter-free).
        preact: use He et al. 2016 pre-activation blocks (+ final norm+act before pooling).
        dropout: dropout probability before the classifier.
        zero_init_residual: start every residual branch at zero (last norm weight; last conv if preact).
        init: ``"kaiming"`` or ``"default"`` (see ``layers.init_weights``).
        norm: ``norm(C) -> nn.Module`` factory.
        activation: ``activation() -> nn.Module`` factory, called once per nonlinearity.
        num_classes: classifier outputs.
        in_channels: input image channels.
    """

    def __init__(
        self,
        depths: Sequence[int] = (2, 2, 2, 2),
        *,
        block: str = "basic",
        width: int = 64,
        skip: bool = True,
        shortcut: str = "projection",
        preact: bool = False,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        init: str = "kaiming",
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        depths = [int(d) for d in depths]
        if not depths or any(d < 1 for d in depths):
            raise ConfigError(f"model.depths must be a non-empty list of positive ints, got {depths}")
        if (block, bool(preact)) not in _BLOCKS:
            raise ConfigError(f"model.block must be 'basic' or 'bottleneck', got {block!r}")
        if shortcut not in SHORTCUTS:
            raise ConfigError(f"model.shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        check_width_dropout(width, dropout)
        block_cls = _BLOCKS[(block, bool(preact))]
        bias = conv_bias(norm)

        self.depths = depths
        self.block = block
        self.width = int(width)
        self.skip = bool(skip)
        self.shortcut = shortcut
        self.preact = bool(preact)

        if self.preact:
            self.stem = nn.Sequential(conv3x3(in_channels, width, bias=bias))
        else:
            self.stem = nn.Sequential(conv3x3(in_channels, width, bias=bias), norm(width), activation())

        stages = []
        channels = width
        for i, depth in enumerate(depths):
            planes = width * 2**i
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                b = block_cls(
                    channels,
                    planes,
                    stride,
                    norm=norm,
                    activation=activation,
                    skip=self.skip,
                    shortcut=shortcut,
                    bias=bias,
                )
                blocks.append(b)
                channels = b.out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = channels

        self.final = nn.Sequential(norm(channels), activation()) if self.preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

        init_weights(self, init)
        if zero_init_residual and self.skip:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck)):
                    m.zero_init_branch()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, num_features] (before dropout and the classifier)."""
        x = self.stem(x)
        x = self.stages(x)
        x = self.final(x)
        return self.flatten(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


# Convenience constructors for use without Hydra (same defaults as conf/model/*.yaml).


def resnet18(**kw) -> ResNet:
    return ResNet([2, 2, 2, 2], block="basic", **kw)


def resnet34(**kw) -> ResNet:
    return ResNet([3, 4, 6, 3], block="basic", **kw)


def resnet50(**kw) -> ResNet:
    return ResNet([3, 4, 6, 3], block="bottleneck", **kw)


def preact_resnet18(**kw) -> ResNet:
    return ResNet([2, 2, 2, 2], block="basic", preact=True, **kw)


def plain18(**kw) -> ResNet:
    return ResNet([2, 2, 2, 2], block="basic", skip=False, **kw)
