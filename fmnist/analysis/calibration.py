"""How well a run's predicted probabilities match how often it is right: the expected calibration error (ECE) over
equal-width confidence bins, the negative log-likelihood of the true class, and the mean confidence (the highest
predicted probability)."""

from __future__ import annotations

import numpy as np

#: Equal-width confidence bins of the ECE (Guo et al. 2017 use 15).
BINS = 15
#: Probabilities are written with 6 decimals: a true class printed as 0 counts as this (its NLL stays finite).
FLOOR = 1e-6


def calibration(labels: np.ndarray, probs: np.ndarray, bins: int = BINS) -> dict[str, float]:
    """``ece``, ``nll`` and ``confidence`` of predictions `probs` [N, C] (rows summing to about 1) of true classes
    `labels` [N]. ECE: the share-weighted mean over the bins of |accuracy - mean confidence|, each image in the bin
    of its highest probability (the right edge of a bin belongs to it; 0 to the first)."""
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in np.unique(which):
        members = which == b
        ece += members.mean() * abs(right[members].mean() - confidence[members].mean())
    nll = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], FLOOR)).mean())
    return {"ece": float(ece), "nll": nll, "confidence": float(confidence.mean())}
