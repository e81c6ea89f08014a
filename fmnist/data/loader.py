"""Device-resident data: each split is one uint8 tensor on the training device; batches come from an
index permutation, and normalisation + augmentation run batched on the device (no per-sample Python)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from fmnist.data.resplit import ImageSet, data_fingerprint, load_resplit
from fmnist.data.split import stratified_split, subset_indices

log = logging.getLogger(__name__)

#: Fashion-MNIST training-set pixel statistics (on [0, 1] intensities).
MEAN, STD = 0.2860, 0.3530

#: (images, labels, index=..., epoch=...) -> (images, targets); see fmnist.data.augment.Augment.
AugmentFn = Callable[..., "tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class DeviceSplit:
    """One split on the device: uint8 images [N,1,28,28], int64 labels [N] (None when hidden)."""

    name: str
    ids: np.ndarray
    images: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def from_imageset(cls, name: str, data: ImageSet, index: np.ndarray, device: torch.device) -> "DeviceSplit":
        images = torch.from_numpy(np.ascontiguousarray(data.images[index])).unsqueeze(1).to(device)
        labels = None if data.labels is None else torch.from_numpy(data.labels[index]).to(device)
        return cls(name, data.ids[index], images, labels)


@dataclass
class DataSplits:
    train: DeviceSplit
    val: DeviceSplit | None
    test: DeviceSplit
    fingerprint: str = ""  # resplit.data_fingerprint of the folder the splits were read from


def load_splits(
    data_dir: str | Path,
    device: torch.device,
    val_fraction: float = 0.1,
    subset: int | None = None,
    split_seed: int = 0,
    cache_dir: str | Path | None = None,
) -> DataSplits:
    """Read the folder (cached), carve a stratified validation split from train, optionally subsample
    the training part, and move everything to `device`. `split_seed` is independent of the training
    seed so all seeds of a sweep share one validation set."""
    data = load_resplit(data_dir, cache_dir=cache_dir)
    train_idx, val_idx = stratified_split(data.train.labels, val_fraction, split_seed)
    train_idx = subset_indices(data.train.labels, train_idx, subset, split_seed)
    all_test = np.arange(len(data.test.ids))
    splits = DataSplits(
        train=DeviceSplit.from_imageset("train", data.train, train_idx, device),
        val=DeviceSplit.from_imageset("val", data.train, val_idx, device) if len(val_idx) else None,
        test=DeviceSplit.from_imageset("test", data.test, all_test, device),
        fingerprint=data_fingerprint(data),
    )
    log.info(
        "data: %d train, %d val, %d test images (%s test labels) on %s",
        len(splits.train), len(splits.val) if splits.val else 0, len(splits.test),
        "hidden" if splits.test.labels is None else "with", device,
    )
    return splits


def normalize(images_01: torch.Tensor) -> torch.Tensor:
    """[0,1] intensities -> zero-mean, unit-variance inputs (in place)."""
    return images_01.sub_(MEAN).div_(STD)


def to_unit_float(images_u8: torch.Tensor) -> torch.Tensor:
    return images_u8.float().div_(255.0)


def oversized_batch(n: int, batch_size: int) -> str | None:
    """The warning for a batch larger than the training split (a mistyped trainer.batch_size, or a small
    data.subset): every epoch is then one step on the whole split, whatever trainer.drop_last says."""
    if batch_size <= n:
        return None
    return (f"trainer.batch_size={batch_size} is larger than the {n} training images: each epoch is one step on "
            f"a batch of {n}")


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Number of optimizer steps per epoch; always >= 1 (a split smaller than a batch is one batch). Without
    drop_last a last batch of a single image is left out too: BatchNorm cannot train on one value per channel."""
    full, rest = divmod(n, batch_size)
    if full and (drop_last or rest == 1):
        return full
    return max(1, math.ceil(n / batch_size))


def train_batches(
    split: DeviceSplit,
    batch_size: int,
    augment: AugmentFn | None,
    drop_last: bool = True,
    channels_last: bool = False,
    epoch: int = 1,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (inputs, targets, labels) for one epoch in a fresh random order drawn from torch's global
    RNG. `targets` are what the loss sees (soft under mixup/cutmix); `labels` the true int labels.
    `augment` gets each image's index in the split and `epoch` too (for alternating flips)."""
    if split.labels is None:
        raise ValueError("cannot train on a split without labels")
    n = len(split)
    perm = torch.randperm(n, device=split.images.device)
    for step in range(steps_per_epoch(n, batch_size, drop_last)):
        idx = perm[step * batch_size : (step + 1) * batch_size]
        x = to_unit_float(split.images[idx])
        y = split.labels[idx]
        targets: torch.Tensor = y
        if augment is not None:
            x, targets = augment(x, y, index=idx, epoch=epoch)
        x = normalize(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, targets, y


def eval_batches(
    split: DeviceSplit, batch_size: int, channels_last: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (inputs, labels-or-None) in id order, no augmentation."""
    for start in range(0, len(split), batch_size):
        x = normalize(to_unit_float(split.images[start : start + batch_size]))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = None if split.labels is None else split.labels[start : start + batch_size]
        yield x, y
