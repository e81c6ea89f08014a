"""Seeds -> cells: mean ± std and n per cell, and each cell compared with its preset's reference cell.

A cell is one combination of a preset's swept parameters (everything but the seed). Only completed runs
count: ``n`` is the number of them with a value of the primary metric (the values the mean, std and test use);
completed runs without one (a damaged summary.json), failed and unfinished runs are counted per cell
(``n_no_value``, ``n_failed``, ``n_unfinished``) so they stay visible. The comparison is Welch's two-sided
t-test (unequal variances) on the primary metric (test accuracy, or best validation accuracy when the test
labels are hidden), with Holm's correction over the cells of a preset; a difference whose corrected p-value is
>= alpha is "within seed noise". The analysis then moves each question's key comparison with a reference into the
family of the questions (:func:`fmnist.analysis.evidence.key_family_cells`), so that no pair has two corrected p.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fmnist.analysis.collect import COMPLETED, CURVE_FIELDS, UNFINISHED, Collection, cell_label, same_value, tidy

log = logging.getLogger(__name__)

#: Calibration of the test predictions (fmnist.analysis.calibration; added to the run table by the pipeline).
CALIBRATION_FIELDS: tuple[str, ...] = ("test_ece", "test_nll", "test_confidence")
METRICS: tuple[str, ...] = ("best_val_acc", "test_acc", "params", "flops", "train_time_s", *CURVE_FIELDS,
                            *CALIBRATION_FIELDS)
TEST_NAME = "Welch's two-sided t-test, Holm-corrected within each preset"
REFERENCE, NOISE, TOO_FEW = "reference", "within seed noise", "n < 2"
NO_RESULT = "no result"
NO_REFERENCE = "reference has no result"


def primary_metric(runs: pd.DataFrame) -> str:
    """test_acc when any completed run has one, else best_val_acc (hidden test labels)."""
    done = runs[runs["status"] == COMPLETED]
    return "test_acc" if "test_acc" in done and done["test_acc"].notna().any() else "best_val_acc"


def selection_metric(cells: pd.DataFrame) -> str:
    """The metric that picks a "best" cell (aggregate's table): best validation accuracy where the cells have it, so
    that the test set is never used to select what the report then quotes on it; else the primary metric."""
    if "best_val_acc_mean" in cells and cells["best_val_acc_mean"].notna().any():
        return "best_val_acc"
    return str(cells["metric"].iloc[0]) if len(cells) else "test_acc"


def _matches(cell: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    keys = [k for k in spec if k in cell]
    return bool(keys) and all(same_value(_plain(cell[k]), _plain(spec[k])) for k in keys)


def _plain(value: Any) -> Any:
    """numpy/pandas scalars -> Python ones (so bools stay bools for the comparison)."""
    if value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def welch(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test, NaN when either sample has fewer than 2 values or both
    have zero variance."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if _constant(a) and _constant(b):
        return 1.0 if a[0] == b[0] else 0.0
    return float(_welch_test(a, b).pvalue)


def _constant(values: np.ndarray) -> bool:
    """Every value the same (exactly: np.var of seven equal floats can be 1e-32, float noise a t-test would read)."""
    return bool(np.ptp(values) == 0)


def _welch_test(a: np.ndarray, b: np.ndarray) -> Any:
    """scipy's Welch test, without its "precision loss" warning for nearly constant samples (seeds that all
    reach the same accuracy): the result stands, the warning would only clutter the analysis log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        return scipy_stats.ttest_ind(a, b, equal_var=False)


def welch_ci(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of mean(a) - mean(b) from Welch's t-test (NaNs when either sample has fewer than 2
    values or both have zero variance)."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2 or (_constant(a) and _constant(b)):
        return math.nan, math.nan
    ci = _welch_test(a, b).confidence_interval(level)
    return float(ci.low), float(ci.high)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaNs stay NaN and do not count as tests)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m, adjusted, running = len(order), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _cells_of(runs: pd.DataFrame, keys: list[str]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(parameter values, runs) per cell (the runs' ``cell`` label), in order of first appearance (= job
    order)."""
    out = []
    for label in dict.fromkeys(runs["cell"]):
        cell_runs = runs[runs["cell"] == label]
        out.append(({k: _plain(cell_runs.iloc[0][k]) for k in keys}, cell_runs))
    return out


def _summarise(values: dict[str, Any], cell_runs: pd.DataFrame, primary: str) -> dict[str, Any]:
    done = cell_runs[cell_runs["status"] == COMPLETED]
    n = int(np.isfinite(_metric_values(cell_runs, primary)).sum())
    row: dict[str, Any] = {**values, "cell": cell_runs["cell"].iloc[0], "n": n, "n_no_value": len(done) - n,
                           "n_failed": int((cell_runs["status"] == "failed").sum()),
                           "n_unfinished": int(cell_runs["status"].isin([*UNFINISHED, "unreadable"]).sum())}
    for metric in METRICS:
        column = pd.to_numeric(done[metric], errors="coerce") if metric in done else pd.Series(dtype=float)
        row[f"{metric}_mean"] = column.mean() if column.notna().any() else math.nan
        row[f"{metric}_std"] = column.std(ddof=1) if column.notna().sum() >= 2 else math.nan
    return row


def _reference_index(cells: list[dict[str, Any]], spec: Mapping[str, Any] | None, preset: str) -> int:
    """The reference cell of `preset`: the first one `spec` matches (a single cell is its own reference)."""
    if spec and len(cells) > 1:
        hits = [i for i, c in enumerate(cells) if _matches(c["params"], spec)]
        if hits:
            return hits[0]
        log.warning("reference %s of preset %s matches no cell; using the first cell (%s)",
                    cell_label(spec), preset, cells[0]["row"]["cell"])
    return 0


def aggregate(collection: Collection, reference: Mapping[str, Mapping[str, Any]] | None = None,
              alpha: float = 0.05) -> pd.DataFrame:
    """One row per (preset, cell): parameters, n, n_no_value, n_failed, n_unfinished, <metric>_mean/_std, and the
    comparison with the reference cell on the primary metric (delta, p_value, p_holm, significant,
    verdict)."""
    reference = reference or {}
    runs = collection.runs
    metric = primary_metric(runs)
    rows: list[dict[str, Any]] = []
    for preset, keys in collection.swept.items():
        preset_runs = runs[runs["preset"] == preset]
        cells = [{"params": v, "runs": r, "row": _summarise(v, r, metric)} for v, r in _cells_of(preset_runs, keys)]
        ref = _reference_index(cells, reference.get(preset), preset)
        ref_values = _metric_values(cells[ref]["runs"], metric)
        raw = [math.nan if i == ref else welch(_metric_values(c["runs"], metric), ref_values)
               for i, c in enumerate(cells)]
        adjusted = holm(raw)
        for i, cell in enumerate(cells):
            row = {"preset": preset, **cell["row"], "is_reference": i == ref, "metric": metric,
                   "delta": cell["row"][f"{metric}_mean"] - cells[ref]["row"][f"{metric}_mean"],
                   "p_value": raw[i], "p_holm": adjusted[i]}
            row["significant"] = None if math.isnan(adjusted[i]) else bool(adjusted[i] < alpha)
            row["verdict"] = cell_verdict(i == ref, row["significant"], row["delta"])
            rows.append(row)
    table = pd.DataFrame(rows)
    table["significant"] = table["significant"].astype("boolean")
    for key in dict.fromkeys(k for keys in collection.swept.values() for k in keys):
        if len({type(v) for v in table[key].dropna()}) > 1:  # True beside a mistyped 'flase': one dtype, as in runs
            table[key] = tidy(table[key])
    lead = ["preset", "cell"]
    return table[lead + [c for c in table.columns if c not in lead]]


def _metric_values(cell_runs: pd.DataFrame, metric: str) -> np.ndarray:
    """`metric` of the cell's completed runs (NaN where a run has none)."""
    done = cell_runs[cell_runs["status"] == COMPLETED]
    if metric not in done:
        return np.full(len(done), np.nan)
    return pd.to_numeric(done[metric], errors="coerce").to_numpy(dtype=float)


def shown_verdict(cell: Mapping[str, Any]) -> str:
    """A cell's verdict as the tables show it: 'no result' for a cell without a completed run to compare, 'reference
    has no result' for one whose reference has none (the verdict says too few seeds: true, but not why)."""
    if not bool(cell["is_reference"]) and pd.isna(cell["delta"]):
        if int(cell["n"]) == 0:
            return NO_RESULT
        if cell["verdict"] == TOO_FEW:  # seeds, but no reference result to test them against
            return NO_REFERENCE
    return str(cell["verdict"])


def cell_verdict(is_ref: bool, significant: bool | None, delta: float) -> str:
    if is_ref:
        return REFERENCE
    if significant is None:
        return TOO_FEW
    if not significant:
        return NOISE
    return "higher" if delta > 0 else "lower"
