"""Batched, on-device training augmentation (airbench / hlb-CIFAR10 style).

The whole training set lives on the device as a uint8 tensor; the trainer converts a batch to float
in [0, 1] and calls :class:`Augment` on it *before* normalisation. Every operation below works on the
whole batch at once with tensor ops only (no per-sample Python loops, no PIL, no torchvision per-sample
transforms), so the same code runs on CPU, CUDA and MPS.

Pipeline, in order (each stage is skipped entirely, drawing no random numbers, when it is off):

1. random crop with zero padding ``crop_padding`` (black is the Fashion-MNIST background): the batch is
   padded once and every image gathers its own randomly shifted H×W window (one ``gather`` with
   per-sample index arithmetic); shifts are uniform in ``[-p, p]`` per axis;
2. horizontal flip with p = 0.5 per image (``torch.where`` on a per-sample mask); label-preserving on
   Fashion-MNIST, whose garments are roughly left/right symmetric. ``flip="alternating"`` (airbench's
   alternating flips, Jordan 2024) flips a random half of the images in even epochs and exactly the other
   half in odd ones, so every image is seen both ways in every two epochs: image ``i`` is flipped in epoch
   ``e`` iff ``bit(i) xor (e mod 2)``, ``bit`` a fixed hash of the image's training index salted once per
   run from the global RNG (needs the batch's ``index`` and the ``epoch``);
3. random erasing (Zhong et al., 2017) with probability ``erasing`` per image: area fraction uniform in
   ``erasing_area``, aspect ratio log-uniform in [0.3, 3.3] (restricted per sample to the ratios for which
   the rectangle fits, instead of Zhong's rejection loop), uniform position, filled with per-pixel noise
   uniform in [0, 1); masks are built from coordinate grids;
4. mixup (Zhang et al., 2018) or cutmix (Yun et al., 2019), once per batch with a random permutation
   partner; λ ~ Beta(α, α); cutmix pastes one box per batch and λ is corrected to the true box area.
   If both alphas are > 0, each batch picks one of the two with p = 0.5. Targets become
   ``λ·onehot(y) + (1-λ)·onehot(y[perm])`` (float32, rows sum to 1).

Randomness comes only from the global torch RNG: per-pixel / per-sample draws use the device generator
(``device=images.device``); the per-batch scalars (λ, the mixup/cutmix choice, the cutmix box) are drawn
from the global CPU generator, so they need no device→host synchronisation and work on MPS (which lacks
a Beta sampler). ``torch.manual_seed`` therefore makes augmentation reproducible, and checkpointing the
CPU + CUDA RNG states makes a resumed run exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from fmnist.errors import ConfigError

__all__ = ["Augment"]

# Random-erasing aspect-ratio range of Zhong et al. (r1 = 0.3, 1/r1 ≈ 3.3).
_ERASE_LOG_RATIO = (math.log(0.3), math.log(3.3))


def _as_area(value: object) -> tuple[float, float]:
    """Accept a 2-element list/tuple/ListConfig for ``erasing_area``; validate it."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        try:  # OmegaConf ListConfig is a Sequence, but be lenient with other iterables
            value = list(value)  # type: ignore[call-overload]
        except TypeError:
            raise ConfigError(f"augment.erasing_area must be a pair [min, max], got {value!r}") from None
    items = list(value)
    if len(items) != 2:
        raise ConfigError(f"augment.erasing_area must be a pair [min, max], got {items!r}")
    try:
        lo, hi = float(items[0]), float(items[1])
    except (TypeError, ValueError):
        raise ConfigError(f"augment.erasing_area must hold two numbers, got {items!r}") from None
    if not (0.0 < lo <= hi <= 1.0):
        raise ConfigError(f"augment.erasing_area must satisfy 0 < min <= max <= 1, got [{lo}, {hi}]")
    return lo, hi


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash with full avalanche (every input bit flips every output bit with p ≈ 1/2), on int64
    tensors so that it runs on any device; a multiplicative hash alone gives neighbouring indices alternating bits."""
    mask = 0xFFFFFFFF
    x = x & mask
    x = ((x >> 16) ^ x) * 0x45D9F3B & mask  # products stay below 2**59: no int64 overflow
    x = ((x >> 16) ^ x) * 0x45D9F3B & mask
    return (x >> 16) ^ x


def _mirror_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The images of `x` whose `mask` entry is true, mirrored left-right; the others as they are."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


class Augment:
    """Batched train-time augmentation: ``(images, labels) -> (images, targets)``.

    Args:
        crop_padding: zero padding (pixels) of the random crop; 0 disables it.
        flip: random horizontal flip with p = 0.5 per image (true), none (false), or "alternating".
        erasing: per-image probability of random erasing; 0 disables it.
        erasing_area: (min, max) fraction of the image area that one erased rectangle covers.
        mixup_alpha: Beta(α, α) parameter of mixup; 0 disables it.
        cutmix_alpha: Beta(α, α) parameter of cutmix; 0 disables it.
        num_classes: number of classes, for the soft targets of mixup / cutmix.
    """

    def __init__(
        self,
        crop_padding: int = 0,
        flip: bool | str = False,
        erasing: float = 0.0,
        erasing_area: tuple[float, float] | Sequence[float] = (0.02, 0.25),
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        num_classes: int = 10,
    ) -> None:
        if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
            raise ConfigError(f"augment.crop_padding must be an integer >= 0, got {crop_padding!r}")
        if not isinstance(flip, bool) and flip != "alternating":
            raise ConfigError(f"augment.flip must be true, false or alternating, got {flip!r}")
        erasing = self._number("erasing", erasing)
        if not 0.0 <= erasing <= 1.0:
            raise ConfigError(f"augment.erasing is a probability and must be in [0, 1], got {erasing}")
        mixup_alpha = self._number("mixup_alpha", mixup_alpha)
        cutmix_alpha = self._number("cutmix_alpha", cutmix_alpha)
        if mixup_alpha < 0:
            raise ConfigError(f"augment.mixup_alpha must be >= 0 (0 = off), got {mixup_alpha}")
        if cutmix_alpha < 0:
            raise ConfigError(f"augment.cutmix_alpha must be >= 0 (0 = off), got {cutmix_alpha}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"augment.num_classes must be an integer >= 1, got {num_classes!r}")

        self.crop_padding = crop_padding
        self.flip = flip
        self.erasing = erasing
        self.erasing_area = _as_area(erasing_area)
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.num_classes = num_classes
        # Beta samplers live on the CPU (global CPU generator): no device sync, and MPS has no gamma sampler.
        self._mixup_beta = self._beta(mixup_alpha)
        self._cutmix_beta = self._beta(cutmix_alpha)
        # Salt of the alternating-flip hash: drawn only when used, so other configs' RNG streams are unchanged.
        self._flip_salt = int(torch.randint(0, 2**31, ())) if flip == "alternating" else 0

    @staticmethod
    def _number(name: str, value: object) -> float:
        if isinstance(value, bool):
            raise ConfigError(f"augment.{name} must be a number, got {value!r}")
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"augment.{name} must be a number, got {value!r}") from None

    @staticmethod
    def _beta(alpha: float) -> torch.distributions.Beta | None:
        if alpha <= 0:
            return None
        a = torch.tensor(float(alpha), dtype=torch.float64)
        return torch.distributions.Beta(a, a)

    # ------------------------------------------------------------------ public API
    @property
    def soft_targets(self) -> bool:
        """True when mixup or cutmix is on: targets are then float [B, num_classes] probabilities."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def is_identity(self) -> bool:
        """True when every augmentation is off (``__call__`` returns its inputs unchanged)."""
        return self.crop_padding == 0 and not self.flip and self.erasing == 0 and not self.soft_targets

    def __repr__(self) -> str:
        return (
            f"Augment(crop_padding={self.crop_padding}, flip={self.flip}, erasing={self.erasing}, "
            f"erasing_area={self.erasing_area}, mixup_alpha={self.mixup_alpha}, "
            f"cutmix_alpha={self.cutmix_alpha}, num_classes={self.num_classes})"
        )

    def __call__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        index: torch.Tensor | None = None,
        epoch: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one training batch.

        Args:
            images: float [B, C, H, W] in [0, 1] (not yet normalised), on any device.
            labels: int64 [B] on the same device.
            index: int64 [B], each image's position in the training split (alternating flips only).
            epoch: the epoch number (alternating flips only).

        Returns:
            ``(images, targets)``: images with the same dtype/shape/device and values in [0, 1] (a new
            tensor unless every augmentation is off; the input is never modified in place); targets are
            ``labels`` unchanged, or float32 [B, num_classes] soft targets when :attr:`soft_targets`.
        """
        if images.dim() != 4:
            raise ValueError(f"Augment expects images of shape [B, C, H, W], got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"Augment expects float images in [0, 1], got dtype {images.dtype}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape [{images.shape[0]}], got {tuple(labels.shape)}")
        if images.shape[0] == 0:
            return images, self._hard_to_soft(labels, labels, 1.0) if self.soft_targets else labels

        x = images
        if self.crop_padding > 0:
            x = self._random_crop(x, self.crop_padding)
        if self.flip == "alternating":
            x = self._alternating_flip(x, index, epoch)
        elif self.flip:
            x = self._random_flip(x)
        if self.erasing > 0:
            x = self._random_erase(x)
        if not self.soft_targets:
            return x, labels

        use_mixup = self._mixup_beta is not None
        if use_mixup and self._cutmix_beta is not None:
            use_mixup = bool(torch.rand(()) < 0.5)  # global CPU generator: no device sync
        perm = torch.randperm(x.shape[0], device=x.device)
        if use_mixup:
            x, lam = self._mixup(x, perm)
        else:
            x, lam = self._cutmix(x, perm, inplace=x is not images)
        return x, self._hard_to_soft(labels, labels[perm], lam)

    # ------------------------------------------------------------------ stages
    @staticmethod
    def _random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
        """Per-sample random translation by up to ``pad`` pixels, zero fill (= pad + random crop)."""
        b, c, h, w = x.shape
        hp, wp = h + 2 * pad, w + 2 * pad
        padded = F.pad(x, (pad, pad, pad, pad)).reshape(b, c, hp * wp)
        dev = x.device
        oy = torch.randint(0, 2 * pad + 1, (b, 1, 1), device=dev)
        ox = torch.randint(0, 2 * pad + 1, (b, 1, 1), device=dev)
        rows = torch.arange(h, device=dev).view(1, h, 1) + oy
        cols = torch.arange(w, device=dev).view(1, 1, w) + ox
        index = (rows * wp + cols).view(b, 1, h * w).expand(b, c, h * w)
        return padded.gather(2, index).view(b, c, h, w)

    @staticmethod
    def _random_flip(x: torch.Tensor) -> torch.Tensor:
        return _mirror_where(x, torch.rand(x.shape[0], device=x.device) < 0.5)

    def flip_mask(self, index: torch.Tensor, epoch: int) -> torch.Tensor:
        """Which images of `index` the alternating flip mirrors in `epoch` (bool [B])."""
        return (_mix32(index.to(torch.int64) ^ self._flip_salt) & 1).bool() ^ bool(epoch % 2)

    def _alternating_flip(self, x: torch.Tensor, index: torch.Tensor | None, epoch: int | None) -> torch.Tensor:
        if index is None or epoch is None:
            raise ValueError("flip='alternating' needs each image's training index and the epoch")
        if index.shape != x.shape[:1]:
            raise ValueError(f"index must have shape [{x.shape[0]}], got {tuple(index.shape)}")
        return _mirror_where(x, self.flip_mask(index.to(x.device), epoch))

    def _random_erase(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        u = torch.rand(5, b, device=dev, dtype=torch.float32)
        apply = u[0] < self.erasing
        lo, hi = self.erasing_area
        area = (lo + (hi - lo) * u[1]) * (h * w)
        # Aspect ratio r = height/width, log-uniform in [0.3, 3.3] restricted to the ratios for which the
        # rectangle fits (sqrt(area*r) <= H and sqrt(area/r) <= W): the batched stand-in for Zhong's retries.
        log_area = area.log()
        lr_lo = torch.clamp(log_area - 2 * math.log(w), min=_ERASE_LOG_RATIO[0])
        lr_hi = torch.clamp(2 * math.log(h) - log_area, max=_ERASE_LOG_RATIO[1])
        lr_hi = torch.maximum(lr_hi, lr_lo)
        ratio = (lr_lo + (lr_hi - lr_lo) * u[2]).exp()
        eh = (area * ratio).sqrt().round().clamp(1, h)
        ew = (area / ratio).sqrt().round().clamp(1, w)
        top = (u[3] * (h - eh + 1)).floor().clamp(max=h - 1)
        left = (u[4] * (w - ew + 1)).floor().clamp(max=w - 1)
        ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, h)
        xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, w)
        in_rows = (ys >= top[:, None]) & (ys < (top + eh)[:, None])  # [B, H]
        in_cols = (xs >= left[:, None]) & (xs < (left + ew)[:, None])  # [B, W]
        mask = (in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]).unsqueeze(1)
        return torch.where(mask, torch.rand_like(x), x)

    def _mixup(self, x: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, float]:
        assert self._mixup_beta is not None
        lam = float(self._mixup_beta.sample())
        # lerp(a, b, w) = a + w·(b − a) = λ·x + (1−λ)·x[perm]; clamp guards against rounding past [0, 1].
        mixed = torch.lerp(x[perm], x, lam).clamp_(0.0, 1.0)
        return mixed, lam

    def _cutmix(self, x: torch.Tensor, perm: torch.Tensor, inplace: bool) -> tuple[torch.Tensor, float]:
        assert self._cutmix_beta is not None
        _, _, h, w = x.shape
        lam = float(self._cutmix_beta.sample())
        cut = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * cut), int(w * cut)
        cy = int(torch.randint(0, h, ()))  # CPU generator: plain Python ints, no device sync
        cx = int(torch.randint(0, w, ()))
        y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        out = x if inplace else x.clone()  # never modify the caller's tensor
        if y2 > y1 and x2 > x1:
            out[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]  # RHS is a copy (advanced indexing)
        lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)  # λ of the box actually pasted
        return out, lam

    def _hard_to_soft(self, labels: torch.Tensor, partner: torch.Tensor, lam: float) -> torch.Tensor:
        """``λ·onehot(labels) + (1−λ)·onehot(partner)`` as float32 [B, num_classes]."""
        one = F.one_hot(labels, self.num_classes).to(torch.float32)
        two = F.one_hot(partner, self.num_classes).to(torch.float32)
        return torch.lerp(two, one, lam)
