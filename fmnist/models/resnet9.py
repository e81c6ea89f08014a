"""ResNet-9: David Page's DAWNBench network ("How to train your ResNet", Myrtle.ai 2018),
adapted to 1×28×28 Fashion-MNIST.

Layout (``w = width``, every conv is 3×3 stride 1 pad 1 → norm → act, ``conv_bn`` in Page's code)::

    prep    conv(w)                                   28×28
    layer1  conv(2w) → maxpool2 → + residual(conv(2w), conv(2w))   14×14
    layer2  conv(4w) → maxpool2                       7×7
    layer3  conv(8w) → maxpool2 → + residual(conv(8w), conv(8w))   3×3
    pool    global max pool                           1×1
    linear  8w → num_classes (no bias, as Page) → × logit_scale (0.125, Page's "Mul(0.125)")

Deviations from Page's CIFAR-10 net:

* ``in_channels=1`` and 28×28 inputs: the three max-pools give 28→14→7→3 (floor), and
  Page's final ``MaxPool2d(4)`` becomes a global (adaptive) max pool over the 3×3 map.
* Residual: Page's ``x + res2(res1(x))`` with no activation after the sum (kept).
  ``skip=False`` runs ``res2(res1(x))`` without the addition; there are no shortcut
  modules, so both twins have exactly the same parameters.
* Optional dropout before the linear layer (Page used none).
* Initialisation defaults to ``init="default"`` (PyTorch's own), as in Page's code; it trains
  faster early on here than ``init="kaiming"`` (measured: quick preset val acc 0.76 vs 0.72).
* ``norm``/``activation`` factories replace BatchNorm/ReLU; with ``norm=none`` convs get a bias.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from fmnist.models.layers import ActivationFactory, NormFactory, check_width_dropout, conv3x3, conv_bias, init_weights

__all__ = ["ResNet9", "Residual"]


def _conv_norm_act(in_ch: int, out_ch: int, norm: NormFactory, activation: ActivationFactory, bias: bool):
    return nn.Sequential(conv3x3(in_ch, out_ch, bias=bias), norm(out_ch), activation())


class Residual(nn.Module):
    """``x + res2(res1(x))`` (or just ``res2(res1(x))`` when ``skip=False``)."""

    def __init__(self, channels: int, norm: NormFactory, activation: ActivationFactory, bias: bool, skip: bool):
        super().__init__()
        self.skip = bool(skip)
        self.res1 = _conv_norm_act(channels, channels, norm, activation, bias)
        self.res2 = _conv_norm_act(channels, channels, norm, activation, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.res2(self.res1(x))
        if self.skip:
            out = x + out
        return out


class ResNet9(nn.Module):
    """Page's ResNet-9 for [B, in_channels, 28, 28] inputs.

    Args:
        width: channels of the prep layer; layers 1-3 use 2w, 4w, 8w.
        skip: ``False`` removes the two residual additions (same parameters).
        dropout: dropout probability before the linear layer.
        logit_scale: logits are multiplied by this (Page: 0.125).
        init: ``"kaiming"`` or ``"default"`` (see ``layers.init_weights``).
        norm, activation: factories (``norm(C)``, ``activation()``).
        num_classes, in_channels: output classes / input channels.
    """

    def __init__(
        self,
        *,
        width: int = 64,
        skip: bool = True,
        dropout: float = 0.0,
        logit_scale: float = 0.125,
        init: str = "default",
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_width_dropout(width, dropout)
        bias = conv_bias(norm)
        w = int(width)
        self.width = w
        self.skip = bool(skip)
        self.logit_scale = float(logit_scale)

        self.prep = _conv_norm_act(in_channels, w, norm, activation, bias)
        self.layer1 = nn.Sequential(
            *_conv_norm_act(w, 2 * w, norm, activation, bias),
            nn.MaxPool2d(2),
            Residual(2 * w, norm, activation, bias, self.skip),
        )
        self.layer2 = nn.Sequential(*_conv_norm_act(2 * w, 4 * w, norm, activation, bias), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(
            *_conv_norm_act(4 * w, 8 * w, norm, activation, bias),
            nn.MaxPool2d(2),
            Residual(8 * w, norm, activation, bias, self.skip),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten(1)
        self.num_features = 8 * w
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(8 * w, num_classes, bias=False)

        init_weights(self, init)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.flatten(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x))) * self.logit_scale
