"""VGG (Simonyan & Zisserman 2014) adapted to 1×28×28 Fashion-MNIST.

``conf/model/vgg11.yaml`` is configuration A with a norm after every conv ("VGG11-BN")::

    [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512]

Deviations from the paper:

* The 5th max-pool is dropped, so 28×28 becomes 28→14→7→3 (floor)→1 instead of vanishing;
  the last two convs therefore see a 1×1 map (only the centre tap of their 3×3 kernels
  receives gradient; kept so the layer list stays config A).
* Global average pool + dropout + a single linear classifier replace the three
  4096-wide FC layers (which would dwarf the conv part on 10 classes); ``dropout``
  defaults to 0.0 like the other models of the zoo.
* ``width`` scales every channel count by ``width/64`` (64 = paper), min 1 channel.
* Each conv is 3×3/s1/p1 → norm → act; with ``norm=none`` convs keep their bias
  (the paper's convs had biases), otherwise they have none.
* Initialisation: ``layers.init_weights`` (``init="kaiming"`` or torch ``"default"``).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn

from fmnist.errors import ConfigError
from fmnist.models.layers import ActivationFactory, NormFactory, check_width_dropout, conv3x3, conv_bias, init_weights

__all__ = ["VGG", "VGG11_LAYERS"]

VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)


class VGG(nn.Module):
    """VGG-style conv stack for [B, in_channels, 28, 28] inputs.

    Args:
        layers: channel counts (at width 64) and ``"M"`` for 2×2 max-pools.
        width: scales channels by ``width / 64``.
        dropout: dropout probability before the linear classifier.
        init: ``"kaiming"`` or ``"default"``.
        norm, activation: factories (``norm(C)``, ``activation()``).
        num_classes, in_channels: output classes / input channels.
    """

    def __init__(
        self,
        layers: Sequence[Union[int, str]] = VGG11_LAYERS,
        *,
        width: int = 64,
        dropout: float = 0.0,
        init: str = "kaiming",
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_width_dropout(width, dropout)
        bias = conv_bias(norm)
        self.width = int(width)
        self.layers = list(layers)

        modules: list[nn.Module] = []
        channels = in_channels
        for item in self.layers:
            if isinstance(item, str):
                if item.upper() != "M":
                    raise ConfigError(f"model.layers: expected an int or 'M', got {item!r}")
                modules.append(nn.MaxPool2d(2))
                continue
            out = max(1, round(int(item) * self.width / 64))
            modules += [conv3x3(channels, out, bias=bias), norm(out), activation()]
            channels = out
        if not any(isinstance(m, nn.Conv2d) for m in modules):
            raise ConfigError("model.layers must contain at least one conv")
        self.features = nn.Sequential(*modules)
        self.num_features = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

        init_weights(self, init)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))
