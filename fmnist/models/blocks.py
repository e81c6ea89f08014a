"""Residual blocks (He et al. 2015 "v1" post-activation and He et al. 2016 pre-activation).

Every block takes ``norm`` (``norm(C) -> nn.Module``) and ``activation``
(``activation() -> nn.Module``) factories and calls ``activation()`` once per
nonlinearity, so each activation is its own module (the dead-neuron analysis hooks them
one by one). ``skip=False`` builds the same layers without a shortcut module and without
the residual addition ("plain" twin).

Shortcuts (only when ``skip=True``):

* identity whenever input and output shapes match (stride 1, same channels), whatever
  ``shortcut`` says;
* ``"projection"`` (paper option B): 1×1 conv with stride ``s`` followed by ``norm`` in
  post-activation blocks. In pre-activation blocks the projection is the 1×1 conv alone,
  applied to the pre-activated input (as in He et al. 2016 / their reference code): the
  input has already been normalised by the block's first norm.
* ``"zeropad"`` (paper option A): strided subsampling ``x[:, :, ::s, ::s]`` plus zero
  channels appended at the end; no parameters. Always applied to the raw block input.

Bias rule: every conv gets a bias iff ``norm`` is the identity (see ``layers.conv_bias``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fmnist.errors import ConfigError
from fmnist.models.layers import ActivationFactory, NormFactory, conv1x1, conv3x3

SHORTCUTS = ("projection", "zeropad")

__all__ = [
    "SHORTCUTS",
    "ZeroPadShortcut",
    "make_shortcut",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
]


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut (He et al. 2015, option A): subsample by ``stride``, zero-pad channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"zeropad shortcut cannot shrink channels ({in_channels} -> {out_channels})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(
    kind: str,
    in_channels: int,
    out_channels: int,
    stride: int,
    norm: NormFactory,
    bias: bool,
    with_norm: bool = True,
) -> nn.Module:
    """The shortcut module of a residual block (``nn.Identity`` when shapes already match)."""
    if kind not in SHORTCUTS:
        raise ConfigError(f"model.shortcut must be one of {SHORTCUTS}, got {kind!r}")
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "zeropad":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    conv = conv1x1(in_channels, out_channels, stride, bias=bias)
    if not with_norm:
        return conv
    return nn.Sequential(conv, norm(out_channels))


def _zero_weight(m: nn.Module) -> None:
    """Zero a layer's weight (and a conv's bias); a layer without weight (nn.Identity) is left alone."""
    w = getattr(m, "weight", None)
    if isinstance(w, torch.Tensor):
        nn.init.zeros_(w)
    if isinstance(m, nn.Conv2d) and m.bias is not None:
        nn.init.zeros_(m.bias)


class _Block(nn.Module):
    expansion = 1
    #: the layer of the residual branch whose weight ``zero_init_branch`` zeroes
    _zero_init_layer = ""
    #: whether a (projection) shortcut reads the pre-activated input
    _preact = False

    def _build_shortcut(self, skip, kind, in_channels, out_channels, stride, norm, bias):
        self.skip = bool(skip)
        self.shortcut_on_preact = False
        if not self.skip:
            self.shortcut = None  # plain twin: no shortcut module, no addition
            return
        self.shortcut = make_shortcut(
            kind, in_channels, out_channels, stride, norm, bias, with_norm=not self._preact
        )
        # projection convs in pre-act blocks see the normalised input; identity/zeropad see x
        self.shortcut_on_preact = self._preact and isinstance(self.shortcut, nn.Conv2d)

    def zero_init_branch(self) -> None:
        """Zero the weight of the residual branch's last layer, so the block starts as its shortcut.

        Post-activation blocks zero their last norm (Goyal et al. 2017; a no-op for ``norm=none``, whose
        identity has no weight). Pre-activation blocks zero their last conv instead (as timm's ResNetV2):
        their last norm feeds an activation, and a zeroed norm would make its input exactly 0, where ReLU's
        gradient is 0, so the whole branch would never receive a gradient and stay dead.
        """
        _zero_weight(getattr(self, self._zero_init_layer))


class BasicBlock(_Block):
    """conv3×3(s)-norm-act-conv3×3-norm (+ shortcut) -act."""

    expansion = 1
    _zero_init_layer = "bn2"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        skip: bool = True,
        shortcut: str = "projection",
        bias: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.out_channels = out_channels
        self.conv1 = conv3x3(in_channels, planes, stride, bias=bias)
        self.bn1 = norm(planes)
        self.act1 = activation()
        self.conv2 = conv3x3(planes, out_channels, 1, bias=bias)
        self.bn2 = norm(out_channels)
        self._build_shortcut(skip, shortcut, in_channels, out_channels, stride, norm, bias)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)
        return self.act2(out)


class Bottleneck(_Block):
    """conv1×1-norm-act-conv3×3(s)-norm-act-conv1×1(×4)-norm (+ shortcut) -act.

    The stride sits on the 3×3 conv ("ResNet v1.5", as torchvision); the 2015 paper put it
    on the first 1×1 conv. Parameter counts are identical.
    """

    expansion = 4
    _zero_init_layer = "bn3"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        skip: bool = True,
        shortcut: str = "projection",
        bias: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.out_channels = out_channels
        self.conv1 = conv1x1(in_channels, planes, bias=bias)
        self.bn1 = norm(planes)
        self.act1 = activation()
        self.conv2 = conv3x3(planes, planes, stride, bias=bias)
        self.bn2 = norm(planes)
        self.act2 = activation()
        self.conv3 = conv1x1(planes, out_channels, bias=bias)
        self.bn3 = norm(out_channels)
        self._build_shortcut(skip, shortcut, in_channels, out_channels, stride, norm, bias)
        self.act3 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.skip:
            out = out + self.shortcut(x)
        return self.act3(out)


class PreActBasicBlock(_Block):
    """He et al. 2016: norm-act-conv3×3(s)-norm-act-conv3×3 (+ shortcut), no act after the sum."""

    expansion = 1
    _zero_init_layer = "conv2"
    _preact = True

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        skip: bool = True,
        shortcut: str = "projection",
        bias: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.out_channels = out_channels
        self.bn1 = norm(in_channels)
        self.act1 = activation()
        self.conv1 = conv3x3(in_channels, planes, stride, bias=bias)
        self.bn2 = norm(planes)
        self.act2 = activation()
        self.conv2 = conv3x3(planes, out_channels, 1, bias=bias)
        self._build_shortcut(skip, shortcut, in_channels, out_channels, stride, norm, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        if self.skip:
            out = out + self.shortcut(pre if self.shortcut_on_preact else x)
        return out


class PreActBottleneck(_Block):
    """He et al. 2016: norm-act-conv1×1-norm-act-conv3×3(s)-norm-act-conv1×1(×4) (+ shortcut)."""

    expansion = 4
    _zero_init_layer = "conv3"
    _preact = True

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        norm: NormFactory = nn.BatchNorm2d,
        activation: ActivationFactory = nn.ReLU,
        skip: bool = True,
        shortcut: str = "projection",
        bias: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.out_channels = out_channels
        self.bn1 = norm(in_channels)
        self.act1 = activation()
        self.conv1 = conv1x1(in_channels, planes, bias=bias)
        self.bn2 = norm(planes)
        self.act2 = activation()
        self.conv2 = conv3x3(planes, planes, stride, bias=bias)
        self.bn3 = norm(planes)
        self.act3 = activation()
        self.conv3 = conv1x1(planes, out_channels, bias=bias)
        self._build_shortcut(skip, shortcut, in_channels, out_channels, stride, norm, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.act3(self.bn3(out)))
        if self.skip:
            out = out + self.shortcut(pre if self.shortcut_on_preact else x)
        return out
