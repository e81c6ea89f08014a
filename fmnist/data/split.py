"""Seeded, stratified validation split and training subsets (index arrays into a label array)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from fmnist.errors import DataError


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise DataError(f"labels must be a 1-D integer array, got {labels.dtype} with shape {labels.shape}")
    return labels


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of `labels` into (train_idx, val_idx), both sorted int64.

    For each class c with n_c examples, round(n_c * val_fraction) (halves rounded up) seeded random examples
    go to validation. Deterministic for a given seed; val_fraction 0 gives an empty val set.
    val_fraction must be in [0, 1), else DataError.
    """
    labels = _check_labels(labels)
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not math.isfinite(val_fraction)
        or not 0 <= val_fraction < 1
    ):
        raise DataError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    n = labels.size
    if val_fraction == 0 or n == 0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    is_val = np.zeros(n, bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(math.floor(members.size * float(val_fraction) + 0.5))
        is_val[rng.permutation(members)[:k]] = True
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


def subset_indices(labels: np.ndarray, indices: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Seeded, stratified choice of `n` of `indices` (sorted int64); n None returns all of them (sorted).

    Class quotas follow the class proportions among labels[indices] (largest-remainder rounding, so the
    total is exactly n). n must be in 1..len(indices), else DataError.
    """
    labels = _check_labels(labels)
    indices = np.asarray(indices)
    if indices.ndim != 1 or not (np.issubdtype(indices.dtype, np.integer) or indices.size == 0):
        raise DataError(f"indices must be a 1-D integer array, got {indices.dtype} with shape {indices.shape}")
    indices = indices.astype(np.int64)
    if n is None:
        return np.sort(indices)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise DataError(f"subset size must be an integer or None, got {n!r}")
    n = int(n)
    if n <= 0:
        raise DataError(f"subset size must be positive, got {n}")
    if n > indices.size:
        raise DataError(
            f"subset size {n} is larger than the {indices.size} available training examples "
            f"(data.subset; the other training ids form the validation split, data.val_fraction)"
        )
    if n == indices.size:
        return np.sort(indices)
    classes, inverse, counts = np.unique(labels[indices], return_inverse=True, return_counts=True)
    quota = (n * counts) // indices.size
    remainder = (n * counts) % indices.size
    short = n - int(quota.sum())
    quota[np.argsort(-remainder, kind="stable")[:short]] += 1  # largest remainders, ties to lower classes
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(indices[inverse == k])[: quota[k]] for k in range(classes.size)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
