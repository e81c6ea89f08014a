"""How alike the classes look, and whether a network confuses the classes that look alike: the correlation of the
classes' mean training images, each pair's confusion rate, and the Mantel test that relates the two (Spearman's
rho over the class pairs, its p from permuting the class labels: the pairs share classes, so they are not
independent samples)."""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from fmnist.data.resplit import ImageSet

#: Random relabellings of the classes in the Mantel test (beyond the exact count of all relabellings).
PERMUTATIONS = 9999


def class_mean_similarity(images: ImageSet, n_classes: int) -> np.ndarray | None:
    """[C, C] Pearson correlation between the classes' mean images (pixels flattened); None without labels or when a
    class has no image."""
    if images.labels is None:
        return None
    flat = images.images.reshape(len(images), -1)
    counts = np.bincount(images.labels, minlength=n_classes)[:n_classes]
    if (counts == 0).any():
        return None
    means = np.stack([flat[images.labels == c].mean(0, dtype=np.float64) for c in range(n_classes)])
    return np.corrcoef(means)


def pair_confusion(confusion: np.ndarray) -> np.ndarray:
    """[C, C], symmetric, zero diagonal: the mean of a pair's two confusion rates (i taken for j as a share of i's
    test images, and j for i as a share of j's)."""
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    pairs = (rates + rates.T) / 2
    np.fill_diagonal(pairs, 0.0)
    return pairs


def upper_pairs(matrix: np.ndarray) -> np.ndarray:
    """The values of each class pair (i < j) of a symmetric matrix."""
    return matrix[np.triu_indices(len(matrix), 1)]


def mantel(a: np.ndarray, b: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[float, float]:
    """Spearman's rho between the class pairs of two symmetric [C, C] matrices, and its two-sided p from relabelling
    the classes of `a` (every relabelling up to 7 classes, else `permutations` random ones with this seed); NaNs
    when either has no variation over the pairs."""
    n = len(a)
    x, y = upper_pairs(a), upper_pairs(b)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    ranks = np.zeros_like(a, dtype=float)  # a relabelling moves the pairs' values, so their ranks move with them
    iu = np.triu_indices(n, 1)
    ranks[iu] = scipy_stats.rankdata(x)
    ranks += ranks.T
    ry = scipy_stats.rankdata(y)
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())

    def rho(order: np.ndarray) -> float:
        rx = ranks[np.ix_(order, order)][iu]
        rx = rx - rx.mean()
        return float(rx @ ry / np.linalg.norm(rx))

    observed = rho(np.arange(n))
    if n <= 7:
        from itertools import permutations as all_orders

        null = np.array([rho(np.array(order)) for order in all_orders(range(n))])
        return observed, float(np.mean(np.abs(null) >= abs(observed) - 1e-12))
    rng = np.random.default_rng(seed)
    null = np.array([rho(rng.permutation(n)) for _ in range(permutations)])
    return observed, float((1 + np.sum(np.abs(null) >= abs(observed) - 1e-12)) / (1 + permutations))
