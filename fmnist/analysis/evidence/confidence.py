"""Calibration of the trained networks (the run table's ``test_ece``, ``test_nll``, ``test_confidence``, read off
each run's test predictions by :mod:`fmnist.analysis.calibration`): how confident they are against how often they
are right, and what the settings known to change that (label smoothing, mixup, CutMix) do to it."""

from __future__ import annotations

import math

import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import compare
from fmnist.analysis.evidence.dead_units import distinct_dead_runs
from fmnist.analysis.evidence.wording import effect
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult

#: The comparisons the calibration paragraph quotes: preset, setting a, its reference b, how the prose names them.
CALIBRATION_PAIRS: tuple[tuple[str, dict, dict, str, str], ...] = (
    ("stage3_regularization",
     {"optimizer.weight_decay": 1e-4, "trainer.label_smoothing": 0.1, "model.dropout": 0.0},
     {"optimizer.weight_decay": 1e-4, "trainer.label_smoothing": 0.0, "model.dropout": 0.0},
     "label smoothing 0.1", "none"),
    ("stage3_augment", {"augment": "mixup"}, {"augment": "standard"}, "mixup", "crop + flip alone"),
    ("stage3_augment", {"augment": "cutmix"}, {"augment": "standard"}, "CutMix", "crop + flip alone"),
)


def _cell_name(cell: pd.Series) -> str:
    return rf"{escape(cell['cell'])} of \texttt{{{escape(cell['preset'])}}}"


def calibration_reading(result: AnalysisResult) -> str:
    r"""The ``\readCalibration`` sentences: mean confidence against accuracy over the trained networks (a copied run
    counted once), the mean ECE and its range over the cells, and ECE under label smoothing, mixup and CutMix
    against their references (Welch over seeds). NA when no run has calibrated predictions."""
    runs = result.collection.completed
    if "test_ece" not in runs:
        return NA
    runs = distinct_dead_runs(result, runs[runs["test_ece"].notna()])
    if runs.empty:
        return NA
    confidence, ece = runs["test_confidence"].mean(), runs["test_ece"].mean()
    accuracy = pd.to_numeric(runs["test_acc"], errors="coerce").mean()
    gap = confidence - accuracy
    how = ("over-confident" if gap > 0 else "under-confident") if round(100 * abs(gap), 2) else "as confident as right"
    text = (rf"Over {plural(len(runs), 'trained network')}, the mean confidence (the highest predicted probability) "
            rf"is {latex.pct(confidence)}\,\% against a test accuracy of {latex.pct(accuracy)}\,\%: ")
    text += (rf"{how} by {latex.pct(abs(gap))}\,pp on average" if how != "as confident as right" else how)
    text += (rf", with an expected calibration error (ECE over 15 confidence bins~\citep{{guo2017calibration}}) of "
             rf"{latex.pct(ece)}\,\%")
    cells = result.cells[result.cells["test_ece_mean"].notna()] if "test_ece_mean" in result.cells else pd.DataFrame()
    if len(cells) > 1:
        low, high = cells.loc[cells["test_ece_mean"].idxmin()], cells.loc[cells["test_ece_mean"].idxmax()]
        text += (rf"; by cell it ranges from {latex.pct(low['test_ece_mean'])}\,\% ({_cell_name(low)}) to "
                 rf"{latex.pct(high['test_ece_mean'])}\,\% ({_cell_name(high)})")
    text += "."
    compared = []
    for preset, a, b, name_a, name_b in CALIBRATION_PAIRS:
        c = compare(result, preset, a, b, "test_ece")
        if c is not None and not (math.isnan(c.a) or math.isnan(c.b)):
            compared.append(rf"{name_a} against {name_b}, ECE {latex.pct(c.a)} against {latex.pct(c.b)}\,\%: "
                            rf"{effect(c, result.alpha)}")
    if compared:
        text += " " + latex.sentence("; ".join(compared)) + "."
    return text
