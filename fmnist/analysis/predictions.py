"""predictions_test.csv of the runs -> each run's confusion matrix and per-class accuracy; a cell's pooled confusion
matrix and top confusions."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from fmnist.analysis.calibration import calibration
from fmnist.data.resplit import CLASS_NAMES
from fmnist.train.run_dir import PREDICTIONS_FILE

log = logging.getLogger(__name__)

#: What a damaged predictions file is left out of, unless a reader names its own (its warning's end).
LEFT_OUT = "the confusion matrices and per-class accuracies"


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


#: What :func:`check_predictions` says of a file without a label column: a hidden test set's, unless its run has a
#: test accuracy (then its labels were lost).
UNLABELLED = "has no label column"


def check_predictions(run_dir: str | Path, rows: int | None = None,
                      n_classes: int = len(CLASS_NAMES)) -> tuple[pd.DataFrame | None, str | None]:
    """A run's predictions_test.csv and what is wrong with it, naming nothing: (table, None) when it can be used,
    (None, None) when it is missing, (None, problem) when it is unreadable, has no labels (UNLABELLED) or is damaged
    (labels/predictions that are not classes, or not `rows` rows: the test set), e.g. "has 30 rows, but the run's
    test set has 10000 images (a truncated or damaged file)"."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None, None
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        return None, f"is unreadable ({type(exc).__name__})"
    if "label" not in frame.columns:
        return None, UNLABELLED
    problem = _damage(frame, rows, n_classes)
    return (None, f"{problem} (a truncated or damaged file)") if problem else (frame, None)


def _warn_left_out(run_dir: str, problem: str) -> None:
    """read_runs' default: a warning naming a damaged file (none for a hidden test set's, UNLABELLED)."""
    if problem != UNLABELLED:
        log.warning("%s %s: left out of %s", Path(run_dir) / PREDICTIONS_FILE, problem, LEFT_OUT)


def _damage(frame: pd.DataFrame, rows: int | None, n_classes: int) -> str | None:
    """What is wrong with a labelled predictions table, or None."""
    if rows is not None and len(frame) != rows:
        return f"has {len(frame)} rows, but the run's test set has {rows} images"
    if "pred" not in frame.columns:
        return "has no pred column"
    for column in ("label", "pred"):
        if not pd.to_numeric(frame[column], errors="coerce").isin(range(n_classes)).all():
            return f"has {column} values that are missing or not classes 0..{n_classes - 1}"
    numbers = [c for c in frame.columns if c == "id" or (c.startswith("p") and c[1:].isdigit())]
    if frame[numbers].apply(pd.to_numeric, errors="coerce").isna().any().any():
        return "has ids or probabilities that are missing or not numbers"
    return None


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """[C, C] counts: rows = true class, columns = predicted."""
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, preds), 1)
    return confusion


@dataclass(frozen=True)
class RunPredictions:
    """What the analysis keeps of one run's labelled test predictions."""

    confusion: np.ndarray   # [C, C] counts: rows = true class
    ece: float              # calibration (fmnist.analysis.calibration); NaN without probability columns
    nll: float
    confidence: float


def run_predictions(frame: pd.DataFrame, n_classes: int = len(CLASS_NAMES)) -> RunPredictions:
    """The confusion matrix and calibration of one run's usable labelled predictions (:func:`check_predictions`)."""
    labels = frame["label"].to_numpy(dtype=np.int64)
    probs = [f"p{c}" for c in range(n_classes)]
    calibrated = (calibration(labels, frame[probs].to_numpy(dtype=float)) if set(probs) <= set(frame.columns)
                  else dict.fromkeys(("ece", "nll", "confidence"), math.nan))
    return RunPredictions(confusion_matrix(labels, frame["pred"].to_numpy(dtype=np.int64), n_classes), **calibrated)


def read_runs(run_dirs: Sequence[str], test_sizes: Sequence[int | None] | None = None,
              n_classes: int = len(CLASS_NAMES),
              on_problem: Callable[[str, str], None] = _warn_left_out) -> dict[str, RunPredictions]:
    """run dir -> its labelled test predictions' confusion matrix and calibration, for each of `run_dirs` whose
    predictions_test.csv can be used (:func:`check_predictions`, with its run's `test_sizes` entry, n_test, as the
    rows it must have). `on_problem(run_dir, problem)` hears of every file that is there but cannot be used
    (UNLABELLED included); by default a damaged one is named in a warning."""
    sizes = list(test_sizes) if test_sizes is not None else [None] * len(run_dirs)
    out = {}
    for run_dir, size in zip(run_dirs, sizes):
        frame, problem = check_predictions(run_dir, None if size is None or pd.isna(size) else int(size), n_classes)
        if frame is not None:
            out[str(run_dir)] = run_predictions(frame, n_classes)
        elif problem is not None:
            on_problem(str(run_dir), problem)
    return out


def confusions_of(runs: Mapping[str, RunPredictions]) -> dict[str, np.ndarray]:
    """run dir -> confusion matrix."""
    return {run_dir: p.confusion for run_dir, p in runs.items()}


def class_accuracy_table(runs: pd.DataFrame, confusions: Mapping[str, np.ndarray],
                         class_names: Sequence[str] = CLASS_NAMES) -> pd.DataFrame:
    """One row per (run of `runs` with a confusion matrix, class with test images): run_dir, preset, cell, seed,
    class, images (its test images), correct and accuracy."""
    rows = []
    for _, run in runs.iterrows():
        confusion = confusions.get(str(run["run_dir"]))
        if confusion is None:
            continue
        for c, name in enumerate(class_names):
            images = int(confusion[c].sum())
            if images:
                rows.append({"run_dir": str(run["run_dir"]), "preset": run.get("preset"), "cell": run.get("cell"),
                             "seed": run.get("seed"), "class": name, "images": images,
                             "correct": int(confusion[c, c]), "accuracy": confusion[c, c] / images})
    columns = ["run_dir", "preset", "cell", "seed", "class", "images", "correct", "accuracy"]
    return pd.DataFrame(rows, columns=columns)


def class_results(run_dirs: Sequence[str], cell: str, preset: str, class_names: Sequence[str] = CLASS_NAMES,
                  test_sizes: Sequence[int | None] | None = None,
                  confusions: Mapping[str, np.ndarray] | None = None) -> ClassResults | None:
    """Pool the labelled test predictions of `run_dirs` (their confusion matrices, read unless `confusions` holds
    them); None when none has any."""
    n = len(class_names)
    if confusions is None:
        confusions = confusions_of(read_runs(run_dirs, test_sizes, n))
    pooled = [str(r) for r in run_dirs if str(r) in confusions]
    if not pooled:
        log.warning("no labelled predictions_test.csv in cell %s of preset %s: no confusion matrix", cell, preset)
        return None
    confusion = sum((confusions[r] for r in pooled), np.zeros((n, n), dtype=np.int64))
    per_class = [{"run_dir": r, "class": class_names[c],
                  "accuracy": float(confusions[r][c, c] / confusions[r][c].sum())}
                 for r in pooled for c in range(n) if confusions[r][c].sum()]
    first = pd.read_csv(Path(pooled[0]) / PREDICTIONS_FILE)  # validated by read_runs
    return ClassResults(cell, preset, confusion, pd.DataFrame(per_class), first, pooled[0], tuple(class_names))
