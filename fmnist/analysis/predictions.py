"""predictions_test.csv of a cell's runs -> confusion matrix, per-class accuracy, top confusions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from fmnist.data.resplit import CLASS_NAMES
from fmnist.train.run_dir import PREDICTIONS_FILE

log = logging.getLogger(__name__)


@dataclass
class ClassResults:
    """Test predictions of one cell, pooled over its seeds."""

    cell: str
    preset: str
    confusion: np.ndarray          # [C, C] counts summed over runs; rows = true class, columns = predicted
    per_class: pd.DataFrame        # one row per (run, class): run_dir, class, accuracy
    predictions: pd.DataFrame      # the first run's predictions (id, label, pred, p0..p9), for the image grid
    run_dir: str                   # that first run
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def n_runs(self) -> int:
        return int(self.per_class["run_dir"].nunique())

    def class_accuracy(self) -> pd.DataFrame:
        """class, mean, std (over runs) of the per-class test accuracy, in class order."""
        grouped = self.per_class.groupby("class", sort=False)["accuracy"]
        return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1)}).reset_index()

    def top_confusions(self, k: int = 5) -> pd.DataFrame:
        """The k most frequent (true, predicted) pairs off the diagonal, with their rate within the true class."""
        off = self.confusion.astype(float).copy()
        np.fill_diagonal(off, 0)
        rows = off.sum(1, keepdims=True) + np.diag(self.confusion)[:, None]
        order = np.dstack(np.unravel_index(np.argsort(-off, axis=None), off.shape))[0][:k]
        return pd.DataFrame([{
            "true": self.class_names[t], "pred": self.class_names[p], "count": int(off[t, p]),
            "rate": off[t, p] / max(rows[t, 0], 1),
        } for t, p in order if off[t, p] > 0])


def read_predictions(run_dir: str | Path) -> pd.DataFrame | None:
    """A run's predictions_test.csv, or None when missing or without labels (hidden test set)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    return frame if "label" in frame.columns else None


def class_results(run_dirs: Sequence[str], cell: str, preset: str,
                  class_names: Sequence[str] = CLASS_NAMES) -> ClassResults | None:
    """Pool the labelled test predictions of `run_dirs`; None when none has any."""
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    per_class, first, first_dir = [], None, ""
    for run_dir in run_dirs:
        frame = read_predictions(run_dir)
        if frame is None:
            continue
        if first is None:
            first, first_dir = frame, str(run_dir)
        np.add.at(confusion, (frame["label"].to_numpy(), frame["pred"].to_numpy()), 1)
        correct = frame["label"] == frame["pred"]
        for c in range(n):
            mask = frame["label"] == c
            if mask.any():
                per_class.append({"run_dir": str(run_dir), "class": class_names[c],
                                  "accuracy": float(correct[mask].mean())})
    if first is None:
        log.warning("no labelled predictions_test.csv for %s %s: no confusion matrix", preset, cell)
        return None
    return ClassResults(cell, preset, confusion, pd.DataFrame(per_class), first, first_dir, tuple(class_names))
