"""fmnist.analysis.calibration: ECE, NLL and confidence against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmnist.analysis.calibration import FLOOR, calibration


def test_ece_weights_each_bins_gap_between_accuracy_and_confidence_by_its_share() -> None:
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.95, 0.05],   # right
                      [0.10, 0.90],   # right
                      [0.92, 0.08],   # wrong, at confidence 0.92
                      [0.60, 0.40]])  # right
    out = calibration(labels, probs, bins=10)
    # 10 bins: (0.9, 1.0] holds 0.95 and 0.92 (one right: accuracy 0.5, confidence 0.935); (0.8, 0.9] holds 0.90
    # (right, 0.90); (0.5, 0.6] holds 0.60 (right, 0.60)
    expected = 0.5 * abs(0.5 - 0.935) + 0.25 * abs(1 - 0.9) + 0.25 * abs(1 - 0.6)
    assert out["ece"] == pytest.approx(expected)
    assert out["confidence"] == pytest.approx((0.95 + 0.9 + 0.92 + 0.6) / 4)
    assert out["nll"] == pytest.approx(-np.mean(np.log([0.95, 0.90, 0.08, 0.60])))


def test_perfectly_calibrated_and_certain_wrong_predictions() -> None:
    labels = np.array([0, 0, 0, 0])
    probs = np.array([[0.75, 0.25]] * 4)
    probs_wrong = probs.copy()
    probs_wrong[0] = [0.25, 0.75]  # 3 of 4 right at confidence 0.75: calibrated
    assert calibration(labels, probs_wrong)["ece"] == pytest.approx(0.0)
    certain = calibration(np.array([1]), np.array([[1.0, 0.0]]))
    assert certain["ece"] == pytest.approx(1.0) and certain["nll"] == pytest.approx(-math.log(FLOOR))
    edge = calibration(np.array([0, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]), bins=15)  # 1.0 is in the last bin
    assert edge["ece"] == pytest.approx(0.5) and edge["confidence"] == 1.0
