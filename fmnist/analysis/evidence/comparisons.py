"""Two cells of a preset compared: where a cell's runs are, Welch's test between them, and the study's key
comparisons.

A comparison is Welch's two-sided t-test over seeds (:func:`fmnist.analysis.stats.welch`) between two cells of a
preset, on test accuracy or on a number read off the training curves (``CURVE_FIELDS``: the last epoch's
training loss, the generalisation gap, the validation accuracy after one epoch). The key comparison of each question
(:data:`KEY_COMPARISONS`, :func:`capacity_pairs`) is one family: its accuracy p-values are Holm-corrected across
the questions, wherever the report quotes them (:func:`compare`), so the conclusions claim no more than the
questions' number allows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.collect import run_config, same_value, select
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import cell_verdict, holm, welch, welch_ci

log = logging.getLogger(__name__)


#: How the text names a Holm-corrected p.
HOLM = r"p_\mathrm{Holm}"


@dataclass(frozen=True)
class Comparison:
    """Cell a against cell b on one run field: the means, the numbers of runs and Welch's two-sided p."""

    a: float
    b: float
    p: float
    n_a: int
    n_b: int
    low: float = math.nan   # 95 % confidence interval of a - b (Welch)
    high: float = math.nan
    p_name: str = "p"       # how the text names p: HOLM for a key comparison (Holm-corrected across the questions)

    @property
    def diff(self) -> float:
        return self.a - self.b

    def significant(self, alpha: float) -> bool:
        return not math.isnan(self.p) and self.p < alpha


# ------------------------------------------------------------------------------------------ cells and tests
def primary(result: AnalysisResult) -> str:
    """The accuracy the comparisons use: test accuracy, or best validation accuracy when test labels are hidden."""
    return str(result.cells["metric"].iloc[0]) if len(result.cells) else "test_acc"


def metric_name(result: AnalysisResult) -> str:
    """How the prose names the primary accuracy."""
    return "test accuracy" if primary(result) == "test_acc" else "best validation accuracy"


def find_cell(result: AnalysisResult, preset: str, params: Mapping[str, Any]) -> pd.Series | None:
    """The cell of `preset` with completed runs and these parameter values (see :func:`cell_value`), None when it is
    not in the analysed sweeps. Where the preset also sweeps a key `params` does not name, the cell with the
    reference cell's value of it (so that two cells looked up this way differ only in what `params` names)."""
    cells = result.cells[(result.cells["preset"] == preset) & (result.cells["n"] > 0)]
    found = [cell for _, cell in cells.iterrows()
             if all(_same(cell_value(result, cell, k), v) for k, v in params.items())]
    if len(found) > 1:  # the preset sweeps a key `params` leaves open: take the reference cell's value of it
        open_keys = [k for k in result.collection.swept.get(preset, []) if k not in params]
        reference = result.cells[(result.cells["preset"] == preset) & result.cells["is_reference"].astype(bool)]
        if not reference.empty:
            ref = reference.iloc[0]
            found = [cell for cell in found
                     if all(_same(cell_value(result, cell, k), cell_value(result, ref, k)) for k in open_keys)]
        if len(found) != 1:
            log.warning("%s: %d cells match %s; none is quoted", preset, len(found), dict(params))
            return None
    return found[0] if found else None


def cell_value(result: AnalysisResult, cell: pd.Series, key: str) -> Any:
    """`key` of `cell`: its column when the preset sweeps it, else the value all the cell's completed runs share
    (a group choice such as ``model``, or a config value such as ``model.width`` that the sweep held fixed); None
    when unknown or not shared."""
    if key in cell.index and not latex.missing(cell[key]):
        return _plain(cell[key])
    values = [run_value(run, key) for _, run in cell_runs(result, cell).iterrows()]
    return values[0] if values and all(_same(v, values[0]) for v in values) else None


def run_value(run: pd.Series, key: str) -> Any:
    """`key` of one run: its column in the run table, else its config value (None when absent)."""
    if key in run.index and not latex.missing(run[key]):
        return _plain(run[key])
    return select(_config(str(run["run_dir"])), key)


@lru_cache(maxsize=4096)
def _config(run_dir: str) -> dict[str, Any]:
    return run_config(Path(run_dir))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same(value: Any, wanted: Any) -> bool:
    return value is not None and same_value(value, wanted)


def cell_runs(result: AnalysisResult, cell: pd.Series) -> pd.DataFrame:
    """The completed runs of `cell`."""
    runs = result.collection.completed
    return runs[(runs["preset"] == cell["preset"]) & (runs["cell"] == cell["cell"])]


def cell_values(result: AnalysisResult, cell: pd.Series, column: str) -> np.ndarray:
    """`column` of every completed run of `cell` (NaN where a run lacks it)."""
    runs = cell_runs(result, cell)
    if column not in runs:
        return np.full(len(runs), np.nan)
    return pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)


def failed_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells without a completed run whose runs failed (diverged): a result, not a gap."""
    return cells[(cells["n"] == 0) & (cells["n_failed"] > 0)]


def _test(a: np.ndarray, b: np.ndarray) -> Comparison | None:
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return None
    return Comparison(float(a.mean()), float(b.mean()), welch(a, b), len(a), len(b), *welch_ci(a, b))


def compare(result: AnalysisResult, preset: str, a: Mapping[str, Any], b: Mapping[str, Any],
            column: str | None = None) -> Comparison | None:
    """Cell `a` against cell `b` of `preset` on `column` (default: the primary accuracy); None when either cell
    or its values are missing. The accuracy of a key comparison (either way round) carries its Holm-corrected p."""
    column = column or primary(result)
    c = _compare(result, preset, a, b, column)
    if c is None or column != primary(result):
        return c
    return _in_family(c, key_family_p(result), preset, a, b)


def _compare(result: AnalysisResult, preset: str, a: Mapping[str, Any], b: Mapping[str, Any],
             column: str) -> Comparison | None:
    ca, cb = find_cell(result, preset, a), find_cell(result, preset, b)
    if ca is None or cb is None:
        return None
    return _test(cell_values(result, ca, column), cell_values(result, cb, column))


def _in_family(c: Comparison, family: Mapping[tuple[str, frozenset], float], preset: str, a: Mapping[str, Any],
               b: Mapping[str, Any]) -> Comparison:
    """`c` with its Holm-corrected p when it is a key comparison of `family` (:func:`key_family_p`)."""
    corrected = family.get(_pair_key(preset, a, b))
    return c if corrected is None else replace(c, p=corrected, p_name=HOLM)


def _pair_key(preset: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, frozenset]:
    def frozen(params: Mapping[str, Any]) -> tuple:
        return tuple(sorted((k, repr(_plain(v))) for k, v in params.items()))
    return preset, frozenset((frozen(a), frozen(b)))


def key_family_p(result: AnalysisResult) -> dict[tuple[str, frozenset], float]:
    """Holm-corrected accuracy p of each key comparison the analysed runs allow (keyed by :func:`_pair_key`);
    the family is the comparisons with a test."""
    metric = primary(result)
    tested = {}
    for _, preset, a, b, _, _ in key_specs(result):
        c = _compare(result, preset, a, b, metric)
        if c is not None and not math.isnan(c.p):
            tested[_pair_key(preset, a, b)] = c.p
    return dict(zip(tested, holm(list(tested.values()))))


# ------------------------------------------------------------------------------------------ the questions
@dataclass(frozen=True)
class Pair:
    """Two cells of one preset that differ only in the studied setting, and how the prose names them."""

    preset: str
    a: Mapping[str, Any]
    b: Mapping[str, Any]
    name_a: str
    name_b: str


CAPACITY = "stage1_capacity"
RES_VS_PLAIN = Pair("stage1_models", {"model": "resnet18"}, {"model": "plain18"}, "ResNet-18", "Plain-18")
SKIP = Pair("stage2_skip", {"model.skip": True}, {"model.skip": False}, "ResNet-9 with skip connections",
            "ResNet-9 without them")

#: The study's key comparisons, one per question (tables/key_comparisons.tex): question, preset, cell a, cell b,
#: and how the table names a and b. Everything but the named setting is shared by a and b. Depth and width
#: (stage1_capacity) follow the widths the runs used: :func:`capacity_pairs`.
KEY_COMPARISONS: tuple[tuple[str, str, dict[str, Any], dict[str, Any], str, str], ...] = (
    ("residual vs plain, 18 layers", "stage1_models", {"model": "resnet18"}, {"model": "plain18"},
     "ResNet-18", "Plain-18"),
    ("skip connections, ResNet-9", "stage2_skip", {"model.skip": True}, {"model.skip": False}, "skips", "no skips"),
    ("normalisation", "stage2_norm", {"norm": "batchnorm"}, {"norm": "none"}, "BatchNorm", "none"),
    ("optimiser", "stage2_optimizer", {"optimizer": "sgd"}, {"optimizer": "adam"}, "SGD", "Adam"),
    ("learning rate (cosine)", "stage2_lr", {"optimizer.lr": 0.1, "scheduler": "cosine"},
     {"optimizer.lr": 0.01, "scheduler": "cosine"}, "lr 0.1", "lr 0.01"),
    ("activation", "stage2_activation", {"activation": "relu"}, {"activation": "gelu"}, "ReLU", "GELU"),
    ("augmentation", "stage3_augment", {"augment": "standard"}, {"augment": "none"}, "crop + flip", "none"),
    ("label smoothing", "stage3_regularization",
     {"optimizer.weight_decay": 1e-4, "trainer.label_smoothing": 0.1, "model.dropout": 0.0},
     {"optimizer.weight_decay": 1e-4, "trainer.label_smoothing": 0.0, "model.dropout": 0.0}, "0.1", "0"),
)


def capacity_pairs(result: AnalysisResult) -> dict[str, Pair]:
    """The depth and the width comparison of stage1_capacity at the widths its runs used: ResNet-34 against
    ResNet-18 at the largest width both were trained at ("Depth"), ResNet-18 at its largest against its smallest
    width ("Width"); a comparison the analysed runs do not allow is left out."""
    cells = result.cells[(result.cells["preset"] == CAPACITY) & (result.cells["n"] > 0)]
    widths: dict[str, set[float]] = {}
    for _, cell in cells.iterrows():
        model, width = cell_value(result, cell, "model"), cell_value(result, cell, "model.width")
        if model is not None and isinstance(width, (int, float)):
            widths.setdefault(str(model), set()).add(width)
    pairs = {}
    common = widths.get("resnet34", set()) & widths.get("resnet18", set())
    if common:
        w = max(common)
        pairs["Depth"] = Pair(CAPACITY, {"model": "resnet34", "model.width": w},
                              {"model": "resnet18", "model.width": w}, f"ResNet-34 at width {latex.number(w)}",
                              f"ResNet-18 at width {latex.number(w)}")
    narrow = sorted(widths.get("resnet18", set()))
    if len(narrow) >= 2:
        wide, thin = (latex.number(w) for w in (narrow[-1], narrow[0]))
        pairs["Width"] = Pair(CAPACITY, {"model": "resnet18", "model.width": narrow[-1]},
                              {"model": "resnet18", "model.width": narrow[0]},
                              f"ResNet-18 at width {wide}", f"ResNet-18 at width {thin}")
    return pairs


def named_pairs(result: AnalysisResult) -> dict[str, Pair]:
    """The comparisons the results section quotes by name (macro stem -> pair)."""
    return {"ResVsPlainEighteen": RES_VS_PLAIN, "SkipVsNoSkip": SKIP, **capacity_pairs(result)}


def key_specs(result: AnalysisResult) -> list[tuple[str, str, Mapping[str, Any], Mapping[str, Any], str, str]]:
    capacity = [(stem.lower(), p.preset, p.a, p.b, p.name_a, p.name_b) for stem, p in capacity_pairs(result).items()]
    return [*KEY_COMPARISONS[:2], *capacity, *KEY_COMPARISONS[2:]]


def key_cells(result: AnalysisResult) -> list[tuple[str, str, str, str, str, str]]:
    """(question, preset, cell a, cell b, name a, name b) of each key comparison whose two cells were analysed."""
    found = []
    for question, preset, a, b, name_a, name_b in key_specs(result):
        ca, cb = find_cell(result, preset, a), find_cell(result, preset, b)
        if ca is not None and cb is not None:
            found.append((question, preset, str(ca["cell"]), str(cb["cell"]), name_a, name_b))
    return found


def verdict(c: Comparison, alpha: float) -> str:
    """'too few seeds', 'higher', 'lower' or 'within seed noise'."""
    if math.isnan(c.p):
        return "too few seeds"
    return ("higher" if c.diff > 0 else "lower") if c.significant(alpha) else "within seed noise"


def key_comparisons(result: AnalysisResult) -> pd.DataFrame:
    """One row per key comparison whose cells were analysed: the two means, n, difference, Welch's p and its Holm
    correction across the questions (the verdict's)."""
    rows = []
    family = key_family_p(result)
    for question, preset, a, b, name_a, name_b in key_specs(result):
        raw = _compare(result, preset, a, b, primary(result))
        if raw is None:
            continue
        c = _in_family(raw, family, preset, a, b)
        rows.append({"question": question, "preset": preset, "a": name_a, "b": name_b, "acc_a": c.a, "acc_b": c.b,
                     "n_a": c.n_a, "n_b": c.n_b, "delta": c.diff, "ci_low": c.low, "ci_high": c.high,
                     "p": raw.p, "p_holm": c.p, "verdict": verdict(c, result.alpha)})
    return pd.DataFrame(rows)


def key_family_cells(result: AnalysisResult) -> pd.DataFrame:
    """`result.cells` with one Holm family per comparison. A key comparison that sets a cell against its preset's
    reference (every question but residual vs plain, whose cells are not the reference) leaves its preset's family:
    its ``p_holm``, ``significant`` and ``verdict`` are those of the key family (Holm across the questions,
    :func:`key_family_p`), ``key_comparison`` marks it, and the preset's other comparisons with the reference are
    Holm-corrected among themselves. Otherwise that pair would carry two Holm-corrected p, one within the preset
    (its table, the cells that beat or lose to their reference) and one across the questions (the answers), and
    could be called an effect in one section and seed noise in the next."""
    cells = result.cells.copy()
    cells["key_comparison"] = False
    family = key_family_p(result)
    for _, preset, a, b, _, _ in key_specs(result):
        p = family.get(_pair_key(preset, a, b))
        ca, cb = find_cell(result, preset, a), find_cell(result, preset, b)
        if p is None or ca is None or cb is None or bool(ca["is_reference"]) == bool(cb["is_reference"]):
            continue
        other = cb if ca["is_reference"] else ca
        cells.loc[other.name, "key_comparison"] = True
        cells.loc[other.name, "p_holm"] = p
    if not cells["key_comparison"].any():
        return cells
    for _, group in cells.groupby("preset", sort=False):
        rest = group[~group["key_comparison"]]
        cells.loc[rest.index, "p_holm"] = holm([float(p) for p in rest["p_value"]])
    significant = [None if math.isnan(p) else bool(p < result.alpha) for p in cells["p_holm"]]
    cells["significant"] = pd.array(significant, dtype="boolean")
    cells["verdict"] = [cell_verdict(bool(ref), sig, delta)
                        for ref, sig, delta in zip(cells["is_reference"], significant, cells["delta"])]
    return cells


def keyed(cells: pd.DataFrame) -> pd.Series:
    """Which of `cells` hold a key comparison with a p (:func:`key_family_cells`): their p_holm is corrected across
    the questions, not within the preset."""
    if "key_comparison" not in cells:
        return pd.Series(False, index=cells.index)
    return cells["key_comparison"].astype(bool) & cells["p_holm"].notna()


def across_questions(cell: pd.Series) -> str:
    """', across the questions' after the p_Holm of a cell that is a key comparison (:func:`keyed`), else ''."""
    return ", across the questions" if bool(cell.get("key_comparison", False)) and not pd.isna(cell["p_holm"]) else ""
