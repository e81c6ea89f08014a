"""Seed ensembles and prediction churn: what the seeds of one cell do image by image on the test set.

For every cell with two completed runs or more whose labelled test predictions are readable (``predictions_test.csv``,
aligned by image id), :func:`ensemble_table` gives one row: the mean single-run test accuracy and its sample std,
the accuracy of the seed ensemble (the runs' probabilities ``p0..p9`` averaged, then the most probable class), its
gain over the mean single run, the *churn* (the fraction of test images on which two seeds predict different classes,
averaged over every pair of seeds), the mean absolute accuracy difference of those pairs (churn is never below it),
and the fractions of images that every seed / at least one seed gets wrong.
"""

from __future__ import annotations

import logging
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd

from fmnist.analysis.collect import Collection
from fmnist.analysis.predictions import UNLABELLED, check_predictions
from fmnist.data.resplit import CLASS_NAMES

log = logging.getLogger(__name__)

#: The columns of the ensembles table (:func:`ensemble_table`), in order.
COLUMNS = ("preset", "cell", "n_runs", "n_images", "acc_mean", "acc_std", "ensemble_acc", "gain", "churn",
           "acc_diff", "wrong_all", "wrong_any")
#: Where a damaged file is left out, as the warnings name it.
LEFT_OUT = "the seed ensembles and prediction churn"


def _read(collection: Collection, run_dir: str, size: Any, n_classes: int) -> pd.DataFrame | None:
    """The run's labelled predictions indexed by id, with every probability column; None when they cannot be used:
    missing (collect names that), without labels (a hidden test set) or damaged (named once, in a warning and the
    run's issues: Collection.leave_out_predictions)."""
    if str(run_dir) in collection.predictions_left_out:
        return None
    rows = None if size is None or pd.isna(size) else int(size)
    frame, problem = check_predictions(run_dir, rows, n_classes)
    probs = [f"p{c}" for c in range(n_classes)]
    if frame is not None:  # what aligning and averaging the runs also needs
        problem = ("has no id column" if "id" not in frame.columns else "has an id twice"
                   if frame["id"].duplicated().any() else None if set(probs) <= set(frame.columns)
                   else f"lacks probability columns p0..p{n_classes - 1}")
    if problem is not None and problem != UNLABELLED:
        collection.leave_out_predictions(run_dir, problem, LEFT_OUT)
    if frame is None or problem is not None:
        return None
    frame = frame.assign(id=pd.to_numeric(frame["id"])).set_index("id").sort_index()
    return frame[["label", "pred", *probs]].apply(pd.to_numeric).astype({"label": np.int64, "pred": np.int64})


def _cell_frames(collection: Collection, group: pd.DataFrame, n_classes: int) -> list[pd.DataFrame]:
    """The usable predictions (:func:`_read`) of the runs in `group`, each checked against its run's n_test."""
    sizes = group["n_test"] if "n_test" in group else [None] * len(group)
    frames = (_read(collection, d, size, n_classes) for d, size in zip(group["run_dir"], sizes))
    return [f for f in frames if f is not None]


def _same_images(frames: Sequence[pd.DataFrame]) -> bool:
    """Whether every one of `frames` holds the first one's test images (ids) and labels."""
    first = frames[0]
    return all(f.index.equals(first.index) and f["label"].equals(first["label"]) for f in frames[1:])


def cell_ensemble(frames: Sequence[pd.DataFrame]) -> dict[str, float]:
    """The ensemble and churn numbers of one cell's runs (`frames`: ≥ 2 predictions with the same ids and labels,
    indexed by id and sorted, columns label, pred, p0..)."""
    labels = frames[0]["label"].to_numpy(dtype=np.int64)
    preds = np.stack([f["pred"].to_numpy(dtype=np.int64) for f in frames])           # [runs, images]
    probs = np.stack([f.drop(columns=["label", "pred"]).to_numpy(dtype=float) for f in frames])
    accs = (preds == labels).mean(axis=1)
    ensemble = float((probs.mean(axis=0).argmax(axis=1) == labels).mean())
    pairs = list(combinations(range(len(frames)), 2))
    wrong = preds != labels
    return {
        "n_runs": len(frames), "n_images": len(labels), "acc_mean": float(accs.mean()),
        "acc_std": float(accs.std(ddof=1)), "ensemble_acc": ensemble, "gain": ensemble - float(accs.mean()),
        "churn": _churn(frames),
        "acc_diff": float(np.mean([abs(accs[i] - accs[j]) for i, j in pairs])),
        "wrong_all": float(wrong.all(axis=0).mean()), "wrong_any": float(wrong.any(axis=0).mean()),
    }


def ensemble_table(collection: Collection, n_classes: int = len(CLASS_NAMES)) -> pd.DataFrame:
    """One row per preset and cell with two completed runs or more whose labelled predictions are usable (each file
    checked against its run's n_test); a cell whose runs hold different test images or labels is left out with a
    warning naming it. Empty (no columns) when no cell qualifies, e.g. on a hidden test set."""
    rows = []
    runs = collection.completed
    for (preset, cell), group in runs.groupby(["preset", "cell"], sort=False):
        if len(group) < 2:
            continue
        frames = _cell_frames(collection, group, n_classes)
        if len(frames) < 2:
            continue
        if not _same_images(frames):
            log.warning("seed ensembles: the runs of cell %s of preset %s predicted different test images (ids or "
                        "labels differ): the cell is left out", cell, preset)
            continue
        rows.append({"preset": preset, "cell": cell, **cell_ensemble(frames)})
    return pd.DataFrame(rows, columns=list(COLUMNS)) if rows else pd.DataFrame()


def _churn(a: Sequence[pd.DataFrame], b: Sequence[pd.DataFrame] | None = None) -> float:
    """The mean fraction of images on which two runs predict different classes: over the pairs of `a` when `b` is
    None (NaN with fewer than two runs), else over every run of `a` against every run of `b`."""
    pairs = list(combinations(a, 2)) if b is None else [(x, y) for x in a for y in b]
    if not pairs:
        return float("nan")
    return float(np.mean([(x["pred"].to_numpy() != y["pred"].to_numpy()).mean() for x, y in pairs]))


def pair_churn(collection: Collection, pairs: Sequence[tuple[str, str, str, str, str, str]],
               n_classes: int = len(CLASS_NAMES)) -> pd.DataFrame:
    """For each (question, preset, cell a, cell b, name a, name b) of `pairs`: how often a run of a and a run of b
    predict different classes for the same test image (``between``, mean over every such pair of runs) against two
    seeds of the same cell (``within_a``, ``within_b``; NaN with one run). A pair whose runs hold different test
    images is left out with a warning."""
    runs = collection.completed
    rows = []
    for question, preset, cell_a, cell_b, name_a, name_b in pairs:
        a, b = (_cell_frames(collection, runs[(runs["preset"] == preset) & (runs["cell"] == cell)], n_classes)
                for cell in (cell_a, cell_b))
        if not a or not b:
            continue
        if not _same_images([*a, *b]):
            log.warning("prediction churn: the runs of %s and %s of preset %s predicted different test images: "
                        "the pair is left out", cell_a, cell_b, preset)
            continue
        rows.append({"question": question, "preset": preset, "a": name_a, "b": name_b, "n_a": len(a), "n_b": len(b),
                     "between": _churn(a, b), "within_a": _churn(a), "within_b": _churn(b)})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


#: The columns of the pair churn table (:func:`pair_churn`).
PAIR_COLUMNS = ("question", "preset", "a", "b", "n_a", "n_b", "between", "within_a", "within_b")
