"""Normalisation factories and small helpers shared by every model.

Contract with the trainer
-------------------------
``conf/norm/*.yaml`` point at the factories below with ``_partial_: true``, so
``hydra.utils.instantiate(cfg.norm)`` returns a ``functools.partial`` that maps a
channel count to a fresh module: ``norm(num_channels) -> nn.Module``. Plain classes
such as ``nn.BatchNorm2d`` satisfy the same contract, which is why the models use
``norm=nn.BatchNorm2d`` as their default.

Choices documented here
-----------------------
* ``layernorm`` is ``nn.GroupNorm(1, C)``: every sample is normalised over all of its
  channels *and* spatial positions (the "LN for conv features" of Wu & He 2018), with a
  per-channel affine. We chose it over a channels-only LayerNorm (normalising each pixel's
  C-vector) because it needs no permutes and works unchanged for any spatial size.
* ``groupnorm`` uses ``gcd(groups, C)`` groups, so channel counts that are not divisible
  by ``groups`` (e.g. tiny test widths) still work: with ``groups=32`` a 48-channel layer
  gets 16 groups of 3 and an 8-channel layer 8 groups of 1 (instance norm).
* ``no_norm`` returns ``nn.Identity``. Convolutions followed by a norm have no bias (the
  norm's shift makes it redundant); when the norm is the identity the convolutions get a
  bias instead, so ``norm=none`` models still have a learnable per-channel offset. See
  :func:`conv_bias`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch.nn as nn

from fmnist.errors import ConfigError

NormFactory = Callable[[int], nn.Module]
ActivationFactory = Callable[[], nn.Module]

__all__ = [
    "NormFactory",
    "ActivationFactory",
    "batchnorm",
    "groupnorm",
    "layernorm",
    "no_norm",
    "is_identity_norm",
    "conv_bias",
    "conv3x3",
    "conv1x1",
    "init_weights",
]


# --------------------------------------------------------------------------- norm factories


def batchnorm(
    num_channels: int,
    eps: float = 1e-5,
    momentum: float = 0.1,
    affine: bool = True,
    track_running_stats: bool = True,
) -> nn.Module:
    """``nn.BatchNorm2d(num_channels, ...)``."""
    return nn.BatchNorm2d(
        num_channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats
    )


def groupnorm(num_channels: int, groups: int = 32, eps: float = 1e-5, affine: bool = True) -> nn.Module:
    """``nn.GroupNorm(gcd(groups, num_channels), num_channels)``.

    ``gcd`` keeps the layer valid for channel counts not divisible by ``groups``; it never
    uses more groups than asked for, and falls back to fewer, larger groups.
    """
    if groups < 1:
        raise ConfigError(f"norm.groups must be >= 1, got {groups}")
    return nn.GroupNorm(math.gcd(int(groups), int(num_channels)), num_channels, eps=eps, affine=affine)


def layernorm(num_channels: int, eps: float = 1e-5, affine: bool = True) -> nn.Module:
    """Layer norm for conv features: ``nn.GroupNorm(1, num_channels)``.

    Normalises each sample over (C, H, W) with a per-channel affine (see module docstring).
    """
    return nn.GroupNorm(1, num_channels, eps=eps, affine=affine)


def no_norm(num_channels: int) -> nn.Module:
    """No normalisation: ``nn.Identity()`` (the argument is accepted and ignored)."""
    return nn.Identity()


# --------------------------------------------------------------------------- helpers


def is_identity_norm(norm: NormFactory) -> bool:
    """True when ``norm`` builds ``nn.Identity`` (probed once with a small channel count)."""
    return isinstance(norm(4), nn.Identity)


def check_width_dropout(width: int, dropout: float) -> None:
    """The checks every model makes of its base width and its dropout probability (ConfigError naming the key)."""
    if width < 1:
        raise ConfigError(f"model.width must be >= 1, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")


def conv_bias(norm: NormFactory) -> bool:
    """Whether a convolution followed by ``norm`` should carry its own bias.

    Only when there is no normalisation (``norm=none``); otherwise the norm's shift
    (or its mean subtraction) makes a conv bias redundant.
    """
    return is_identity_norm(norm)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, padding=0, bias=bias)


INIT_SCHEMES = ("kaiming", "default")


def init_weights(model: nn.Module, scheme: str = "kaiming") -> None:
    """Initialise a model in place.

    ``"kaiming"``: conv weights ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``
    (torchvision's ResNet convention; the ReLU gain is used whatever the activation),
    conv biases 0, norm weights 1 and biases 0; ``nn.Linear`` keeps torch's default.
    ``"default"``: leave torch's default initialisation untouched.
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"model.init must be one of {INIT_SCHEMES}, got {scheme!r}")
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
