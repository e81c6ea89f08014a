"""fmnist.analysis.similarity: class-mean image similarity, pair confusion rates and the Mantel test, against
hand-computed values and a plain reference implementation."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fmnist.analysis.similarity import class_mean_similarity, mantel, pair_confusion, upper_pairs
from fmnist.data.resplit import ImageSet


def image_set(images: list[np.ndarray], labels: list[int] | None) -> ImageSet:
    return ImageSet(np.arange(len(images)), np.stack(images).astype(np.uint8),
                    None if labels is None else np.array(labels, dtype=np.int64))


def test_class_mean_similarity_correlates_the_mean_images() -> None:
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(0, 256, (4, 4)) for _ in range(3))
    # class 0: a and b (mean (a+b)/2); class 1: one image, that mean rounded down to whole grey levels; class 2: c
    images = image_set([a, b, (a + b) // 2, c], [0, 0, 1, 2])
    sim = class_mean_similarity(images, 3)
    means = [((a + b) / 2).ravel(), np.floor((a + b) / 2).ravel(), c.ravel().astype(float)]
    assert sim.shape == (3, 3) and np.allclose(np.diag(sim), 1.0) and np.allclose(sim, sim.T)
    assert sim[0, 1] == pytest.approx(np.corrcoef(means[0], means[1])[0, 1])
    assert sim[0, 2] == pytest.approx(np.corrcoef(means[0], means[2])[0, 1])
    assert class_mean_similarity(image_set([a, b], None), 2) is None  # hidden labels
    assert class_mean_similarity(image_set([a, b], [0, 0]), 2) is None  # a class without images


def test_pair_confusion_averages_the_two_directions_rates() -> None:
    confusion = np.array([[8, 2, 0], [1, 3, 0], [0, 5, 5]])  # rows: true class (10, 4, 10 images)
    pairs = pair_confusion(confusion)
    assert pairs[0, 1] == pairs[1, 0] == pytest.approx((2 / 10 + 1 / 4) / 2)
    assert pairs[1, 2] == pytest.approx((0 / 4 + 5 / 10) / 2) and pairs[0, 2] == 0
    assert np.diag(pairs).tolist() == [0, 0, 0]
    assert upper_pairs(pairs).tolist() == pytest.approx([pairs[0, 1], pairs[0, 2], pairs[1, 2]])
    empty = pair_confusion(np.array([[8, 2, 0], [0, 0, 0], [0, 5, 5]]))  # class 1 has no test image
    assert empty[0, 1] == pytest.approx((2 / 10 + 0) / 2) and not np.isnan(empty).any()


def _symmetric(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.normal(size=(n, n))
    m = m + m.T
    np.fill_diagonal(m, 0)
    return m


def test_mantel_is_exact_over_every_relabelling_of_a_few_classes() -> None:
    """Up to 7 classes every relabelling is tried: p is the share of relabellings whose |rho| reaches the observed
    one, computed here the plain way with scipy's spearmanr."""
    rng = np.random.default_rng(1)
    a = _symmetric(rng, 5)
    b = a + 0.8 * _symmetric(rng, 5)
    rho, p = mantel(a, b)
    iu = np.triu_indices(5, 1)
    observed = scipy_stats.spearmanr(a[iu], b[iu]).statistic
    null = [scipy_stats.spearmanr(a[np.ix_(o, o)][iu], b[iu]).statistic for o in map(list, permutations(range(5)))]
    assert rho == pytest.approx(observed)
    assert p == pytest.approx(np.mean(np.abs(null) >= abs(observed) - 1e-12))
    assert 0 < p < 1
    assert mantel(a, -b) == pytest.approx((-rho, p))  # two-sided: the opposite relation, the same p


def test_mantel_samples_relabellings_of_many_classes_reproducibly() -> None:
    rng = np.random.default_rng(2)
    a = _symmetric(rng, 10)
    iu = np.triu_indices(10, 1)
    rho, p = mantel(a, a)  # a matrix against itself: rho 1, and few relabellings come close
    assert rho == pytest.approx(1.0) and p < 0.01 and p >= 1 / 10000
    unrelated = _symmetric(rng, 10)
    rho2, p2 = mantel(a, unrelated, permutations=999)
    assert rho2 == pytest.approx(scipy_stats.spearmanr(a[iu], unrelated[iu]).statistic)
    assert p2 > 0.05 and mantel(a, unrelated, permutations=999) == (rho2, p2)  # the same seed, the same p
    flat = np.ones((10, 10))
    assert all(np.isnan(mantel(a, flat)))  # no variation over the pairs: no test
