r"""The evidence behind the report's discussion: for each question of the study, the comparisons that answer it
and a sentence that reads them no further than the test allows.

A comparison is Welch's two-sided t-test over seeds (:func:`fmnist.analysis.stats.welch`) between two cells of a
preset, on test accuracy or on a number read off the training curves (``CURVE_FIELDS``: the last epoch's
training loss, the generalisation gap, the validation accuracy after one epoch). A difference is called an
effect only when p < alpha; otherwise the sentence says "within seed noise". The key comparison of each question
(:data:`KEY_COMPARISONS`, :func:`capacity_pairs`) is one family: its accuracy p-values are Holm-corrected across
the questions, wherever the report quotes them (:func:`compare`), so the conclusions claim no more than the
questions' number allows. Every sentence quotes the numbers
it rests on, so the prose traces to the runs. Macros (report/macros.tex; each expands to nothing when its data is
not in the analysed sweeps):

* ``\readResVsPlainEighteen``, ``\readSkipVsNoSkip``: residual vs plain at equal depth, with training losses
  (optimisation or generalisation?); ``\readResidual``: both, introduced, for the discussion;
* ``\readDepth``, ``\readWidth`` (``\readCapacity``: both): ResNet-34 vs 18 at the largest width both were trained
  at, ResNet-18 at its largest vs its smallest width (:func:`capacity_pairs`), with parameters and generalisation
  gaps;
* ``\readNorm``: no normalisation vs BatchNorm, with the accuracy after one epoch and failures;
* ``\readLrSchedule``: how much the learning rate and the schedule each move accuracy, and whether either does
  beyond seed noise (two-way ANOVA against the seed noise; with ``tables/lr_schedules.tex``);
* ``\readDeadActivation``, ``\readDeadLr``: dead units by activation and against accuracy; by learning rate;
* ``\readAugment``: no augmentation vs crop + flip, with generalisation gaps;
* ``\readRegularization``: the main effect of each regularisation factor (with ``tables/main_effects.tex``);
* ``\readOptimizers``, ``\readActivations``, ``\readNorms``, ``\readAugments``: every alternative against the
  preset's reference, as its table has it (Holm-corrected);
* ``\readNormalisation``, ``\readOptimisation``, ``\readAugmentation``: a discussion paragraph's sentences together;
* ``\readConfusionGroups``: how the confusion cell's errors fall into look-alike class groups;
* ``\readBest``, ``\readFindings``, ``\readNegative``: the best cell; the cells that beat / lose to their preset's
  reference (Holm);
* ``\sumModels``, ``\sumCapacity``, ``\sumSkip``: the results section's paragraphs on stage 1 and skip connections
  (:func:`preset_summary`, the best cell against the reference, for the other presets).

With fewer than two seeds on a side a sentence quotes the difference and draws no conclusion.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fmnist.analysis import latex
from fmnist.analysis.collect import run_config, same_value, select
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import holm, selection_metric, welch, welch_ci
from fmnist.analysis.style import slug

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
    for _, preset, a, b, _, _ in _key_specs(result):
        c = _compare(result, preset, a, b, metric)
        if c is not None and not math.isnan(c.p):
            tested[_pair_key(preset, a, b)] = c.p
    return dict(zip(tested, holm(list(tested.values()))))


# ------------------------------------------------------------------------------------------ wording
def p_math(p: float, name: str = "p") -> str:
    """'$p=0.0123$' or '$p<0.001$'."""
    return f"${name}<0.001$" if p < 0.001 else f"${name}={latex.p_digits(p)}$"


def _p(c: Comparison) -> str:
    return "too few seeds for a test" if math.isnan(c.p) else p_math(c.p, c.p_name)


def _size(diff: float) -> str:
    return f"{100.0 * abs(diff):.2f}"


def effect(c: Comparison, alpha: float) -> str:
    r"""a against b in short: 'higher by 0.42\,pp ($p=0.010$)', 'lower by ...', 'within seed noise (...)' or, without a
    test, '$\Delta$ = ... (too few seeds for a test)'."""
    if math.isnan(c.p):
        return rf"$\Delta$\,=\,{latex.pp(c.diff)}\,pp ({_p(c)})"
    if not c.significant(alpha):
        return rf"within seed noise ($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)})"
    return rf"{'higher' if c.diff > 0 else 'lower'} by {_size(c.diff)}\,pp ({_p(c)})"


def versus(c: Comparison, alpha: float, a: str, b: str, metric: str = "test accuracy") -> str:
    """A sentence on `metric`: 'A scores 0.42 pp higher than b in test accuracy (p=0.010).', 'A and b are within seed
    noise of each other in test accuracy (...).', or, with fewer than two seeds on a side, the difference and no
    conclusion."""
    a = latex.sentence(a)
    if math.isnan(c.p):
        return (rf"{a} and {b} differ by {latex.pp(c.diff)}\,pp in {metric}; with too few seeds for a test we draw "
                "no conclusion.")
    if not c.significant(alpha):
        return (rf"{a} and {b} are within seed noise of each other in {metric} "
                rf"($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)}).")
    return rf"{a} scores {_size(c.diff)}\,pp {'higher' if c.diff > 0 else 'lower'} than {b} in {metric} ({_p(c)})."


def _loss(value: float) -> str:
    return NA if latex.missing(value) else f"{value:.3f}"


def _pair(c: Comparison, fmt: Callable[[float], str]) -> str:
    return rf"{fmt(c.a)} vs.\ {fmt(c.b)}, {_p(c)}"


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
                              {"model": "resnet18", "model.width": w}, "ResNet-34",
                              f"ResNet-18 (both at width {latex.number(w)})")
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


def _key_specs(result: AnalysisResult) -> list[tuple[str, str, Mapping[str, Any], Mapping[str, Any], str, str]]:
    capacity = [(stem.lower(), p.preset, p.a, p.b, p.name_a, p.name_b) for stem, p in capacity_pairs(result).items()]
    return [*KEY_COMPARISONS[:2], *capacity, *KEY_COMPARISONS[2:]]


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
    for question, preset, a, b, name_a, name_b in _key_specs(result):
        raw = _compare(result, preset, a, b, primary(result))
        if raw is None:
            continue
        c = _in_family(raw, family, preset, a, b)
        rows.append({"question": question, "preset": preset, "a": name_a, "b": name_b, "acc_a": c.a, "acc_b": c.b,
                     "n_a": c.n_a, "n_b": c.n_b, "delta": c.diff, "ci_low": c.low, "ci_high": c.high,
                     "p": raw.p, "p_holm": c.p, "verdict": verdict(c, result.alpha)})
    return pd.DataFrame(rows)


def residual_vs_plain(result: AnalysisResult, pair: Pair) -> str:
    """Is the plain net's gap (if any) one of optimisation (higher training loss) or of generalisation?"""
    acc = compare(result, pair.preset, pair.a, pair.b)
    loss = compare(result, pair.preset, pair.b, pair.a, "train_loss_final")
    if acc is None:
        return NA
    text = versus(acc, result.alpha, "the residual net", "the plain net", metric_name(result))
    if loss is None:
        return text
    losses = rf"final training loss {_pair(loss, _loss)}, plain vs.\ residual"
    if math.isnan(loss.p) or math.isnan(acc.p):  # no test on one of them: the numbers, no conclusion
        return text + (rf" Their final training losses are {_loss(loss.a)} (plain) and {_loss(loss.b)} (residual; "
                       rf"{_p(loss)}).")
    if not loss.significant(result.alpha):
        return text + rf" Their final training losses do not differ significantly ({losses}): " + (
            "the residual net's advantage shows in generalisation rather than in optimisation."
            if acc.significant(result.alpha) and acc.diff > 0 else
            "at this depth, with BatchNorm, we see no sign that the plain net is harder to optimise.")
    if loss.diff > 0 and acc.significant(result.alpha) and acc.diff > 0:
        return text + (rf" The plain net also ends training with a higher training loss ({losses}): it is harder to "
                       r"optimise rather than overfitting, the degradation problem that residual connections "
                       r"address~\citep{he2016deep}.")
    if loss.diff > 0:  # harder to optimise, without a significant accuracy gap to explain (or scoring higher)
        though = (f"yet it scores higher in {metric_name(result)}" if acc.significant(result.alpha) else
                  f"though its {metric_name(result)} is not significantly lower")
        return text + (rf" The plain net ends training with a higher training loss ({losses}): it is harder to "
                       rf"optimise, {though}.")
    return text + rf" The plain net ends training with a lower training loss ({losses})."


def capacity(result: AnalysisResult, pair: Pair | None) -> str:
    """The larger of two nets against the smaller: parameters, accuracy and generalisation gap."""
    if pair is None:
        return NA
    acc = compare(result, pair.preset, pair.a, pair.b)
    params = compare(result, pair.preset, pair.a, pair.b, "params")
    gap = compare(result, pair.preset, pair.a, pair.b, "gap_final")
    if acc is None:
        return NA
    ratio = "" if params is None or not params.b else rf" ({params.a / params.b:.1f}$\times$ the parameters)"
    text = versus(acc, result.alpha, pair.name_a + ratio, pair.name_b, metric_name(result))
    if gap is not None:
        text += (rf" The generalisation gap (training minus validation accuracy in the last epoch) is "
                 rf"{latex.pp(gap.a)}\,pp for the larger net and {latex.pp(gap.b)}\,pp for the smaller ({_p(gap)}).")
    return text


def normalisation(result: AnalysisResult) -> str:
    """No normalisation against BatchNorm: accuracy, accuracy after one epoch, divergences."""
    bn, none = {"norm": "batchnorm"}, {"norm": "none"}
    acc = compare(result, "stage2_norm", none, bn)
    early = compare(result, "stage2_norm", none, bn, "val_acc_epoch1")
    if acc is None:
        return _all_failed(result, "stage2_norm", none, "ResNet-9 without normalisation")
    text = versus(acc, result.alpha, "ResNet-9 without normalisation", "ResNet-9 with BatchNorm", metric_name(result))
    if early is not None:
        text += (rf" After one epoch the unnormalised net reaches {latex.pct(early.a)}\,\% validation accuracy against "
                 rf"{latex.pct(early.b)}\,\% with BatchNorm ({_p(early)})" + (
                     r": BatchNorm speeds up early training~\citep{ioffe2015batch}."
                     if early.significant(result.alpha) and early.diff < 0 else "."))
    cell = find_cell(result, "stage2_norm", none)
    failed = 0 if cell is None else int(cell.get("n_failed", 0) or 0)
    if failed:
        text += rf" Of its {plural(failed + int(cell['n']), 'run')}, {failed} failed (Table~\ref{{tab:problems}})."
    return text


def _all_failed(result: AnalysisResult, preset: str, params: Mapping[str, Any], name: str) -> str:
    """'<name> has no completed run: all 3 of its runs failed (...)' when the cell exists and failed runs are all it
    has (a divergence is a result too); NA otherwise."""
    cells = result.cells[(result.cells["preset"] == preset) & (result.cells["n"] == 0)]
    for _, cell in cells.iterrows():
        failed = int(cell.get("n_failed", 0) or 0)
        if failed and all(_same(cell_value(result, cell, k), v) for k, v in params.items()):
            runs = failed + int(cell.get("n_unfinished", 0) or 0) + int(cell.get("n_no_value", 0) or 0)
            return (rf"{name} has no completed run: {failed} of its {plural(runs, 'run')} failed "
                    r"(Table~\ref{tab:problems}), so there is no accuracy to compare.")
    return NA


def lr_schedule_spread(result: AnalysisResult) -> tuple[str, pd.DataFrame]:
    """How far accuracy moves across learning rates (per schedule) and across schedules (per learning rate),
    per schedule its best and worst learning rate, and whether either setting moves accuracy beyond seed noise."""
    preset_cells = result.cells[result.cells["preset"] == "stage2_lr"]
    cells = preset_cells[preset_cells["n"] > 0]
    if cells.empty or not {"optimizer.lr", "scheduler"} <= set(cells.columns):
        return NA, pd.DataFrame()
    mean = f"{primary(result)}_mean"
    grid = cells.pivot_table(index="scheduler", columns="optimizer.lr", values=mean, aggfunc="first")
    rows = []
    for scheduler, accs in grid.iterrows():
        accs = accs.dropna()
        if accs.empty:
            continue
        failed = int(preset_cells.loc[preset_cells["scheduler"] == scheduler, "n_failed"].sum())  # all-failed cells too
        rows.append({"scheduler": scheduler, "best_lr": accs.idxmax(), "best": accs.max(), "worst_lr": accs.idxmin(),
                     "worst": accs.min(), "spread": accs.max() - accs.min(), "failed": failed})
    table = pd.DataFrame(rows)
    if table.empty:
        return NA, table
    by_lr = (grid.max(axis=0) - grid.min(axis=0)).dropna()
    best_lrs = table["best_lr"].value_counts()
    schedules = "every schedule" if best_lrs.iloc[0] == len(table) else \
        f"{best_lrs.iloc[0]} of the {plural(len(table), 'schedule')}"
    spreads = [rf"across the {plural(grid.shape[1], 'learning rate')}, {metric_name(result)} moves by "
               rf"{_size(table['spread'].mean())}\,pp on average within a schedule" if grid.shape[1] > 1 else "",
               rf"across the {plural(grid.shape[0], 'schedule')}, by {_size(by_lr.mean())}\,pp within a learning rate"
               if grid.shape[0] > 1 and len(by_lr) else ""]  # a setting with one value moves nothing
    text = latex.sentence("; ".join(t for t in spreads if t)) + ". " if any(spreads) else ""
    text += (rf"The best learning rate is {latex.number(best_lrs.index[0])} for {schedules} "
             r"(Table~\ref{tab:lr-schedules}).")
    return text + _lr_failures(preset_cells) + _lr_or_schedule(result), table


def failed_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells without a completed run whose runs failed (diverged): a result, not a gap."""
    return cells[(cells["n"] == 0) & (cells["n_failed"] > 0)]


def _lr_failures(cells: pd.DataFrame) -> str:
    """' Every run failed at learning rate 0.3 with the constant schedule (3 runs); see Table ...' for the cells of
    stage2_lr without a completed run (a divergence is a result, which the spreads and best learning rates leave
    out)."""
    lost = failed_cells(cells)
    if lost.empty:
        return ""
    names = [rf"learning rate {latex.number(c['optimizer.lr'])} with the {escape(c['scheduler'])} schedule "
             rf"({plural(int(c['n_failed']), 'run')})" for _, c in lost.iterrows()]
    return (rf" Every run failed at {latex.and_join(names)}; see Table~\ref{{tab:problems}}. The spreads and best "
            f"learning rates above leave {'this cell' if len(lost) == 1 else 'these cells'} out.")


def _lr_or_schedule(result: AnalysisResult) -> str:
    """Which of learning rate and schedule moves accuracy beyond seed noise: a two-way ANOVA of stage2_lr's runs
    whose error term is the seed noise within cells (pooling the other setting would count its effect as noise)."""
    runs = result.collection.completed
    runs = runs[runs["preset"] == "stage2_lr"]
    p_lr, p_sched, p_both = two_way_anova(runs, "optimizer.lr", "scheduler", primary(result))
    if math.isnan(p_lr) and math.isnan(p_sched):
        return ""
    untestable = "not testable (one value, or no seed noise to test against)"
    tests = (f" (two-way ANOVA, seed noise within cells as the error: learning rate "
             f"{untestable if math.isnan(p_lr) else p_math(p_lr)}, schedule "
             f"{untestable if math.isnan(p_sched) else p_math(p_sched)}"
             + ("" if math.isnan(p_both) else f", their interaction {p_math(p_both)}") + ")")
    lr, sched = p_lr < result.alpha, p_sched < result.alpha
    if math.isnan(p_lr) or math.isnan(p_sched):  # one of them tested: nothing to say which matters more
        name = "schedule" if math.isnan(p_lr) else "learning rate"
        return f" The {name} {'moves' if lr or sched else 'does not move'} accuracy beyond seed noise{tests}."
    if lr and sched:
        return f" Both the learning rate and the schedule move accuracy significantly{tests}."
    if lr or sched:
        winner, loser = ("learning rate", "schedule") if lr else ("schedule", "learning rate")
        return f" Only the {winner} moves accuracy significantly{tests}: the {winner} matters more than the {loser}."
    return f" Neither moves accuracy beyond seed noise{tests}."


def two_way_anova(runs: pd.DataFrame, a: str, b: str, column: str) -> tuple[float, float, float]:
    """p of factor `a`, factor `b` and their interaction on `column` (type II sums of squares, least squares, so
    missing runs are fine), each tested against the variance between runs of the same cell (the seeds). NaN for a
    factor with one level, an interaction not estimable, or no cell with two runs. Without any seed noise an
    effect is exact: p 0 when it changes the means, else 1."""
    if not {a, b, column} <= set(runs.columns):
        return math.nan, math.nan, math.nan
    data = pd.DataFrame({"y": pd.to_numeric(runs[column], errors="coerce"), "a": runs[a].astype(str),
                         "b": runs[b].astype(str)}).dropna()
    if data.empty:
        return math.nan, math.nan, math.nan
    y = data["y"].to_numpy(float)
    ones = np.ones((len(y), 1))
    dummies = {k: pd.get_dummies(data[k], drop_first=True).to_numpy(float) for k in ("a", "b")}

    def fit(*blocks: np.ndarray) -> tuple[float, int]:
        x = np.hstack(blocks)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float(((y - x @ coef) ** 2).sum()), int(np.linalg.matrix_rank(x))

    noise, df_error = within_cell_noise(data, ["a", "b"], "y")
    if df_error <= 0:
        return math.nan, math.nan, math.nan
    rss_full, rank_full = noise * df_error, len(y) - df_error  # the cell means' fit: one parameter per cell
    (rss_ab, rank_ab), (rss_a, rank_a), (rss_b, rank_b) = (
        fit(ones, dummies["a"], dummies["b"]), fit(ones, dummies["a"]), fit(ones, dummies["b"]))
    tests = ((rss_b - rss_ab, rank_ab - rank_b), (rss_a - rss_ab, rank_ab - rank_a), (rss_ab - rss_full,
                                                                                      rank_full - rank_ab))
    scale = max(float(np.abs(y).max()), 1.0) ** 2 * 1e-12 * len(y)  # rounding of the sums of squares

    def p_value(ss: float, df: int) -> float:
        if df <= 0:
            return math.nan
        if noise <= scale / df_error:
            return 0.0 if ss > scale else 1.0
        return float(scipy_stats.f.sf(max(ss, 0.0) / df / noise, df, df_error))

    return tuple(p_value(ss, df) for ss, df in tests)  # type: ignore[return-value]


def run_source(run_dir: str, reused_from: Any) -> str:
    """The run dir whose training produced a run's results: the run itself, or the identical run it copied
    (summary.json's ``reused_from``, relative to the run dir)."""
    return run_dir if latex.missing(reused_from) else str((Path(run_dir) / str(reused_from)).resolve())


def distinct_dead_runs(result: AnalysisResult, dead: pd.DataFrame | None = None) -> pd.DataFrame:
    """`dead` (default ``result.dead_runs``) with each trained network once: a run that copied an identical run is
    left out when the run it copied is among them too (pooled over presets, a copy would count its network twice)."""
    dead, runs = result.dead_runs if dead is None else dead, result.collection.runs
    if dead.empty or "reused_from" not in runs:
        return dead
    source = {d: run_source(d, r) for d, r in zip(runs["run_dir"], runs["reused_from"])}
    return dead[~dead["run_dir"].map(lambda d: source.get(d, d)).duplicated()]


def dead_runs_sweeping(result: AnalysisResult, key: str, fallback: bool = True) -> pd.DataFrame:
    """The dead-unit rows to compare by `key` (``activation``, ``optimizer.lr``), each trained network once: the
    runs of the presets that sweep `key`, where nothing else changes between the values compared. The other presets
    change other settings (model, optimiser, normalisation, ...) at one value of `key` and would confound the
    comparison. Without a preset that sweeps `key`: every run with `fallback`, else none."""
    dead = result.dead_runs
    presets = [p for p, keys in result.collection.swept.items() if key in keys]
    if not dead.empty and (presets or not fallback):
        dead = dead[dead["preset"].isin(presets)]
    return distinct_dead_runs(result, dead)


def distinct_dead_layers(result: AnalysisResult, runs: pd.DataFrame) -> pd.DataFrame:
    """``result.dead_layers`` of the runs `runs` (from :func:`distinct_dead_runs`) keeps."""
    return result.dead_layers[result.dead_layers["run_dir"].isin(runs["run_dir"])]


def dead_by_activation(result: AnalysisResult) -> str:
    """The rank correlation of dead units with test accuracy across stage2_activation's activations, one point per
    activation (the mean over its seeds: the seeds of one activation are not independent evidence about
    activations), with its permutation p (the dead fraction of each activation is \\readDead's:
    macros._dead_by_activation)."""
    dead = result.dead_runs
    if dead.empty or "preset" not in dead or "activation" not in dead:
        return NA
    dead = dead[dead["preset"] == "stage2_activation"]
    accuracy = primary(result)
    data = dead.merge(result.collection.completed[["run_dir", accuracy]], on="run_dir")
    data = data.assign(dead_fraction=pd.to_numeric(data["dead_fraction"], errors="coerce"),
                       **{accuracy: pd.to_numeric(data[accuracy], errors="coerce")}).dropna(
        subset=["dead_fraction", accuracy])
    means = data.groupby("activation")[["dead_fraction", accuracy]].mean()
    if len(means) < 3 or means["dead_fraction"].nunique() < 2 or means[accuracy].nunique() < 2:
        return NA
    rho, p = rank_correlation(means["dead_fraction"].to_numpy(), means[accuracy].to_numpy())
    if p < result.alpha:
        reading = f": more dead units go with {'lower' if rho < 0 else 'higher'} accuracy."
    elif 2 / math.factorial(len(means)) >= result.alpha:  # the smallest p any ordering of these points can reach
        reading = (f": no significant relation between dead units and accuracy (with {len(means)} activations, no "
                   "ordering could be significant).")
    else:
        reading = ": no significant relation between dead units and accuracy."
    return (rf"Across the {len(means)} activations of \texttt{{stage2\_activation}} (each one's mean over its seeds), "
            rf"the rank correlation between the dead fraction and {metric_name(result)} is $\rho={rho:.2f}$ "
            rf"({p_math(p)}, permutation test)" + reading)


def rank_correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho of two samples and its two-sided p from every pairing (exact up to 8 points, 9,999 random
    pairings beyond)."""
    def rho(a: np.ndarray) -> float:
        return float(scipy_stats.spearmanr(a, y).statistic)

    test = scipy_stats.permutation_test((x,), rho, permutation_type="pairings", n_resamples=9999,
                                        alternative="two-sided", random_state=0)
    return rho(x), float(test.pvalue)


def dead_by_lr(result: AnalysisResult) -> str:
    """Dead ReLU units at the highest against the lowest learning rate of stage2_lr (all schedules pooled)."""
    dead = result.dead_runs
    if dead.empty or "optimizer.lr" not in dead:
        return NA
    dead = dead[(dead["preset"] == "stage2_lr") & (dead["activation"] == "relu")]
    lrs = sorted(pd.to_numeric(dead["optimizer.lr"], errors="coerce").dropna().unique())
    if len(lrs) < 2:
        return NA
    lr = pd.to_numeric(dead["optimizer.lr"], errors="coerce")
    c = _test(dead.loc[lr == lrs[-1], "dead_fraction"].to_numpy(float),
              dead.loc[lr == lrs[0], "dead_fraction"].to_numpy(float))
    if c is None:
        return NA
    return (rf"With ReLU, {latex.pct(c.a)}\,\% of the units are dead at learning rate {latex.number(lrs[-1])} against "
            rf"{latex.pct(c.b)}\,\% at {latex.number(lrs[0])} (all schedules pooled, {_p(c)})" + (
                "." if math.isnan(c.p) else
                ": not a significant difference." if not c.significant(result.alpha) else
                ": large steps kill units." if c.diff > 0 else ": fewer units die at the larger learning rate."))


def augmentation(result: AnalysisResult) -> str:
    """No augmentation against crop + flip: test accuracy and the generalisation gap."""
    none, standard = {"augment": "none"}, {"augment": "standard"}
    acc = compare(result, "stage3_augment", standard, none)
    gap = compare(result, "stage3_augment", none, standard, "gap_final")
    if acc is None:
        return NA
    text = versus(acc, result.alpha, "ResNet-9 with crop + flip", "ResNet-9 without augmentation", metric_name(result))
    if gap is not None:
        text += (rf" The gap between training and validation accuracy in the last epoch is {latex.pp(gap.a)}\,pp "
                 rf"without augmentation and {latex.pp(gap.b)}\,pp with it ({_p(gap)})" + (
                     ": augmentation acts as a regulariser." if gap.significant(result.alpha) and gap.diff > 0
                     else "."))
    return text


def against_reference(result: AnalysisResult, preset: str) -> str:
    """Each cell of `preset` against the preset's reference, as in its table (Holm-corrected): 'against norm=batchnorm:
    norm=none lower by 3.00 pp (p_Holm=0.002); norm=groupnorm within seed noise (...)'."""
    cells = result.cells[result.cells["preset"] == preset]
    ref = cells[cells["is_reference"] & (cells["n"] > 0)]
    others = cells[~cells["is_reference"] & ((cells["n"] > 0) | (cells["n_failed"] > 0))]
    if ref.empty or others.empty:
        return NA
    parts = []
    for _, c in others.iterrows():
        name, delta = escape(c["cell"]), latex.pp(c["delta"])
        if c["n"] == 0:  # every run failed (diverged): a result, not a gap
            parts.append(rf"{name} no completed run ({int(c['n_failed'])} failed)")
        elif pd.isna(c["p_holm"]):
            parts.append(rf"{name} {delta}\,pp (too few seeds for a test)")
        elif c["significant"]:
            parts.append(rf"{name} {'higher' if c['delta'] > 0 else 'lower'} by {_size(c['delta'])}\,pp "
                         rf"({p_math(c['p_holm'], HOLM)})")
        else:
            parts.append(rf"{name} within seed noise ($\Delta$\,=\,{delta}\,pp, {p_math(c['p_holm'], HOLM)})")
    return (rf"Against {escape(ref['cell'].iloc[0])} (Holm-corrected, Table~\ref{{tab:preset-{slug(preset)}}}): "
            + "; ".join(parts) + ".")


#: The regularisation factors of stage3_regularization, in the order the report lists them.
REG_FACTORS = {"optimizer.weight_decay": "weight decay", "trainer.label_smoothing": "label smoothing",
               "model.dropout": "dropout"}


def main_effects(result: AnalysisResult) -> pd.DataFrame:
    """For each factor of stage3_regularization and each of its levels: test accuracy averaged over the other
    factors (all their runs pooled), and its difference from the factor's lowest level tested against the seed
    noise within the preset's cells (a t-test with the pooled within-cell variance; pooling the other factors into
    the noise, as a plain two-sample test of the pooled runs does, would count their effects as noise)."""
    runs = result.collection.completed
    runs = runs[runs["preset"] == "stage3_regularization"]
    accuracy = primary(result)
    factors = [f for f in REG_FACTORS if f in runs and runs[f].notna().any()]
    noise, df_noise = within_cell_noise(runs, factors, accuracy)
    rows = []
    for factor in factors:
        setting = pd.to_numeric(runs[factor], errors="coerce")
        levels = sorted(setting.dropna().unique())
        if len(levels) < 2:  # not varied in the analysed runs: no effect to estimate
            continue
        values = {lv: pd.to_numeric(runs.loc[np.isclose(setting, lv), accuracy], errors="coerce").dropna()
                  .to_numpy(float) for lv in levels}
        base = values[levels[0]]
        for lv in levels:
            a = values[lv]
            if len(a) == 0 or len(base) == 0:
                continue
            diff = float(a.mean() - base.mean())
            rows.append({"factor": REG_FACTORS[factor], "key": factor, "level": lv, "n": len(a), "acc": float(a.mean()),
                         "delta": diff, "p": math.nan if lv == levels[0] else _contrast_p(diff, len(a), len(base),
                                                                                            noise, df_noise)})
    return pd.DataFrame(rows)


def within_cell_noise(runs: pd.DataFrame, keys: list[str], column: str) -> tuple[float, int]:
    """The pooled variance of `column` between runs of the same cell (the same values of `keys`: the seeds) and
    its degrees of freedom (runs minus cells); (nan, 0) without a cell of two runs."""
    data = runs[[*keys, column]].copy()
    data[column] = pd.to_numeric(data[column], errors="coerce")
    data = data.dropna(subset=[column])
    if data.empty:
        return math.nan, 0
    groups = data.groupby([data[k].astype(str) for k in keys])[column] if keys else [(None, data[column])]
    ss = sum(float(((g - g.mean()) ** 2).sum()) for _, g in groups)
    df = len(data) - (data.groupby([data[k].astype(str) for k in keys]).ngroups if keys else 1)
    return (ss / df, df) if df > 0 else (math.nan, 0)


def _contrast_p(diff: float, n_a: int, n_b: int, noise: float, df: int) -> float:
    """Two-sided p of a difference of two means of n_a and n_b runs, given the seed noise variance `noise`."""
    if df <= 0 or math.isnan(noise):
        return math.nan
    se = math.sqrt(noise * (1.0 / n_a + 1.0 / n_b))
    if se == 0.0:  # no seed noise at all: a difference is exact
        return 0.0 if abs(diff) > 1e-12 else 1.0
    return float(2.0 * scipy_stats.t.sf(abs(diff) / se, df))


def regularisation(result: AnalysisResult, effects: pd.DataFrame) -> str:
    """The main effect of each regularisation factor's strongest level against none."""
    if effects.empty:
        return NA
    parts, bases = [], []
    for label, g in effects.groupby("factor", sort=False):
        top, base = g.iloc[-1], g.iloc[0]["level"]
        if top["level"] == base:
            continue
        bases.append(base)
        c = Comparison(top["acc"], top["acc"] - top["delta"], top["p"], int(top["n"]), int(g.iloc[0]["n"]))
        against = "" if base == 0 else rf" (vs.\ {latex.number(base)})"  # no run without it was analysed
        parts.append(rf"{label} {latex.number(top['level'])}{against}: {effect(c, result.alpha)}")
    if not parts:
        return NA
    base = "without it" if all(b == 0 for b in bases) else "at its lowest level"
    return (f"Each regulariser at its strongest level against the runs {base}, averaged over the other factors "
            f"(Table~\\ref{{tab:main-effects}}): " + "; ".join(parts) + ".")


#: Classes that look alike at 28x28: the upper-body garments and the footwear.
UPPER_BODY = ("T-shirt/top", "Pullover", "Coat", "Shirt")
FOOTWEAR = ("Sandal", "Sneaker", "Ankle boot")


def confusion_groups(result: AnalysisResult) -> str:
    """Where the errors of the confusion cell fall: the share inside the upper-body group and inside footwear, and
    what Shirt is mistaken for."""
    r = result.classes
    if r is None:
        return NA
    names = list(r.class_names)
    off = r.confusion.astype(float).copy()
    np.fill_diagonal(off, 0)
    errors = off.sum()
    if not errors or not set(UPPER_BODY + FOOTWEAR) <= set(names):
        return NA

    def within(group: tuple[str, ...]) -> float:
        idx = [names.index(c) for c in group]
        return off[np.ix_(idx, idx)].sum() / errors

    text = (rf"Of all {int(errors)} test errors (seeds pooled), {latex.pct(within(UPPER_BODY), 1)}\,\% confuse two "
            rf"upper-body garments (T-shirt/top, Pullover, Coat, Shirt) and {latex.pct(within(FOOTWEAR), 1)}\,\% two "
            "kinds of footwear.")
    shirt = names.index("Shirt")
    if off[shirt].sum():
        top = np.argsort(-off[shirt], kind="stable")[:3]
        parts = ", ".join(rf"{escape(names[j])} {latex.pct(off[shirt, j] / off[shirt].sum(), 1)}\,\%"
                          for j in top if off[shirt, j] > 0)
        text += rf" A misclassified Shirt is taken for: {parts}."
    return text


def _compared(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells compared with their preset's reference (both sides with at least two seeds)."""
    return cells[cells["significant"].notna()] if "significant" in cells else cells.iloc[:0]


def _itemize(cells: pd.DataFrame, rows: pd.DataFrame) -> str:
    items = [rf"\item \texttt{{{escape(c['preset'])}}}: {escape(c['cell'])} is {escape(c['verdict'])} than "
             rf"{escape(_reference(cells, c['preset']))} by {_size(c['delta'])}\,pp "
             rf"({p_math(c['p_holm'], HOLM)})." for _, c in rows.iterrows()]
    return "\n\\begin{itemize}\\itemsep0pt\n" + "\n".join(items) + "\n\\end{itemize}" if items else ""


def answers(result: AnalysisResult) -> str:
    """The study's questions answered in one list: each key comparison (Table tab:key-comparisons) in words."""
    table = key_comparisons(result)
    items = []
    for _, r in table.iterrows():
        c = Comparison(r["acc_a"], r["acc_b"], r["p_holm"], int(r["n_a"]), int(r["n_b"]), p_name=HOLM)
        items.append(rf"\item {escape(r['question'][:1].upper() + r['question'][1:])}: {escape(r['a'])} against "
                     rf"{escape(r['b'])}, {effect(c, result.alpha)}.")
    if not items:
        return ""
    return (rf"The study's questions (Table~\ref{{tab:key-comparisons}}; {metric_name(result)}, Welch's $p$ "
            "Holm-corrected across the questions):\n\\begin{itemize}\\itemsep0pt\n" + "\n".join(items)
            + "\n\\end{itemize}")


def findings(result: AnalysisResult) -> str:
    """How many comparisons with a preset's reference are significant (Holm-corrected), and the list of the cells
    that score higher than their reference."""
    compared = _compared(result.cells)
    if compared.empty:
        return ("No comparison with a reference cell had at least two seeds on both sides."
                if (result.cells["n"] > 0).any() else NA)
    hits = compared[compared["significant"].astype(bool)]
    better = hits[hits["delta"] > 0].sort_values("delta", ascending=False)
    text = (f"Comparisons of a cell with its preset's reference cell: {len(compared)}; significant after Holm's "
            f"correction: {len(hits)} ({len(better)} higher, {len(hits) - len(better)} lower); within seed noise: "
            f"{len(compared) - len(hits)}.")
    return text + (" The cells that score higher than their reference:" + _itemize(result.cells, better)
                   if len(better) else " No cell scores significantly higher than its preset's reference.")


def negative_results(result: AnalysisResult) -> str:
    """The cells that score significantly lower than their reference, and the changes that made no measurable
    difference."""
    compared = _compared(result.cells)
    if compared.empty:
        return NA
    significant = compared["significant"].astype(bool)
    worse = compared[significant & (compared["delta"] < 0)].sort_values("delta")
    null = int((~significant).sum())
    text = latex.sentence(latex.share(null, len(compared), "alternative we tried", "within seed noise of the "
                                      "reference", "alternatives we tried")) + "."
    if null:
        its, it = ("its difference", "it has") if null == 1 else ("their differences", "they have")
        text += (f" With the seeds we ran and at this training length, {its} from the reference cannot be told apart "
                 f"from seed noise; that does not show that {it} no effect.")
    scores = "scores" if len(worse) == 1 else "score"
    return text + (f" In all, {plural(len(worse), 'cell')} {scores} significantly lower:"
                   + _itemize(result.cells, worse) if len(worse) else "")


def _reference(cells: pd.DataFrame, preset: str) -> str:
    ref = cells[(cells["preset"] == preset) & cells["is_reference"]]
    return str(ref["cell"].iloc[0]) if len(ref) else "the reference"


# ------------------------------------------------------------------------------------------ the results section
def best_cell(result: AnalysisResult, preset: str | None = None) -> pd.Series | None:
    """The cell (of `preset`, else of all presets) with the highest mean validation accuracy (stats.selection_metric:
    the primary accuracy when there is none) among those with a primary accuracy to quote; None without one."""
    mean, chosen_by = f"{primary(result)}_mean", f"{selection_metric(result.cells)}_mean"
    if mean not in result.cells or chosen_by not in result.cells:
        return None
    cells = result.cells[(result.cells["n"] > 0) & result.cells[mean].notna() & result.cells[chosen_by].notna()]
    if preset is not None:
        cells = cells[cells["preset"] == preset]
    return None if cells.empty else cells.loc[cells[chosen_by].idxmax()]


def _best_by(result: AnalysisResult) -> str:
    """' by validation accuracy' when that, not the quoted accuracy, picks the best cell."""
    return "" if selection_metric(result.cells) == primary(result) else " by validation accuracy"


def _acc(result: AnalysisResult, cell: pd.Series, std: bool = False) -> str:
    """A cell's mean primary accuracy in percent, with its std over seeds (when asked for and defined)."""
    metric = primary(result)
    spread = latex.pct(cell[f"{metric}_std"]) if std and not latex.missing(cell[f"{metric}_std"]) else None
    return latex.pct(cell[f"{metric}_mean"]) + r"\,\%" + (rf"\,$\pm$\,{spread}" if spread else "")


def best_sentence(result: AnalysisResult) -> str:
    """'The best cell, X of P, reaches 93.10 % ± 0.10 test accuracy over 3 seeds.'; NA without a completed run."""
    best = best_cell(result)
    if best is None:
        return NA
    return (rf"The best cell{_best_by(result)}, {escape(best['cell'])} of \texttt{{{escape(best['preset'])}}}, reaches "
            rf"{_acc(result, best, std=True)} {metric_name(result)} over {plural(best['n'], 'seed')}.")


def preset_summary(result: AnalysisResult, preset: str) -> str:
    """The best cell of `preset` against its reference cell, and how many comparisons with the reference are
    significant (Holm); NA when no cell of the preset has a completed run."""
    best = best_cell(result, preset)
    if best is None:
        return NA
    cells = result.cells[result.cells["preset"] == preset]
    ref = cells[cells["is_reference"]].iloc[0]
    done = cells[cells["n"] > 0]
    best_name, ref_name = escape(best["cell"]), escape(ref["cell"])
    if len(done) == 1:
        return (rf"The only cell with completed runs is {best_name} ({_acc(result, best)} over "
                rf"{plural(best['n'], 'seed')})" + ("." if best["is_reference"] else
                                                    rf"; the reference {ref_name} has none."))
    by = _best_by(result)
    # picked by validation accuracy: say which accuracy the parenthesis quotes
    quoted = (f"{metric_name(result)} " if by else "") + _acc(result, best)
    if best["is_reference"]:
        text = rf"The best cell{by} is the reference, {ref_name} ({quoted})."
    else:
        reached = rf"reaches {_acc(result, ref)}" if ref["n"] > 0 else "has no completed run"
        text = rf"The best cell{by} is {best_name} ({quoted}); the reference {ref_name} {reached}."
    return text + _significance(result, done) + _no_result(cells)


def _no_result(cells: pd.DataFrame) -> str:
    """' Without a completed run: X (3 failed).' for the cells whose every run failed (a divergence is a result too)."""
    names = [f"{escape(c['cell'])} ({int(c['n_failed'])} failed)" for _, c in failed_cells(cells).iterrows()]
    return rf" Without a completed run: {latex.and_join(names)}; see Table~\ref{{tab:problems}}." if names else ""


def _significance(result: AnalysisResult, done: pd.DataFrame) -> str:
    others, compared = done[~done["is_reference"]], _compared(done)
    if compared.empty:
        return " With fewer than two seeds on a side, no cell could be tested against the reference."
    k = int(compared["significant"].astype(bool).sum())
    text = " " + latex.sentence(latex.share(k, len(compared), "comparison with the reference",
                                            rf"significant after Holm's correction ($\alpha={result.alpha:g}$)",
                                            "comparisons with the reference")) + "."
    untested = len(others) - len(compared)
    return text + (f" Of the other cells, {untested} {'has' if untested == 1 else 'have'} too few seeds for a test."
                   if untested else "")


def pair_summary(result: AnalysisResult, pair: Pair | None) -> str:
    """'A reaches 93.10 % ± 0.10 and B 91.00 % ± 0.20 test accuracy (difference +2.10 pp, p=0.001: significant).';
    NA when either cell is missing."""
    ca = None if pair is None else find_cell(result, pair.preset, pair.a)
    cb = None if pair is None else find_cell(result, pair.preset, pair.b)
    c = None if pair is None else compare(result, pair.preset, pair.a, pair.b)
    if ca is None or cb is None or c is None:
        return NA
    test = ("too few seeds for a test" if math.isnan(c.p) else
            rf"{_p(c)}: {'significant' if c.significant(result.alpha) else 'within seed noise'}")
    return (rf"{latex.sentence(pair.name_a)} reaches {_acc(result, ca, std=True)} and {pair.name_b} "
            rf"{_acc(result, cb, std=True)} {metric_name(result)} (difference {latex.pp(c.diff)}\,pp, {test}).")


#: Stage-1 models quoted by accuracy besides the residual vs plain pair.
OTHER_MODELS = {"resnet9": "ResNet-9", "resnet50": "ResNet-50", "preact_resnet18": "pre-activation ResNet-18",
                "vgg11": "VGG-11"}


def models_summary(result: AnalysisResult) -> str:
    """stage1_models: ResNet-18 against Plain-18, and the accuracy of the other models."""
    found = [(name, _acc(result, cell)) for model, name in OTHER_MODELS.items()
             if (cell := find_cell(result, "stage1_models", {"model": model})) is not None]
    others = latex.and_join([f"{name} {'reaches ' if i == 0 else ''}{acc}" for i, (name, acc) in enumerate(found)])
    text = _join(pair_summary(result, RES_VS_PLAIN), f"{others}." if found else NA)
    return text or preset_summary(result, "stage1_models")


def capacity_summary(result: AnalysisResult) -> str:
    """stage1_capacity: the depth and the width comparison; without either, the preset's best cell against its
    reference (which the preset's own subsection states anyway)."""
    pairs = capacity_pairs(result)
    return _join(pair_summary(result, pairs.get("Depth")), pair_summary(result, pairs.get("Width"))) or \
        preset_summary(result, CAPACITY)


def _join(*sentences: str) -> str:
    """The sentences that have data, joined; "" when none has."""
    return " ".join(t for t in sentences if t and t != NA)


# ------------------------------------------------------------------------------------------ the discussion
def residual_discussion(result: AnalysisResult) -> str:
    """Both residual vs plain comparisons, each introduced, and He et al.'s finding they test."""
    models, skip = residual_vs_plain(result, RES_VS_PLAIN), residual_vs_plain(result, SKIP)
    text = _join("ResNet-18 against Plain-18 (the same 18 layers without residual additions). " + models
                 if models != NA else NA,
                 "ResNet-9 with and without its two residual additions (identical parameters). " + skip
                 if skip != NA else NA)
    return _join(text, HE_FINDING if text else NA)


def capacity_discussion(result: AnalysisResult) -> str:
    """Depth and width, and the capacity figure when it was drawn."""
    pairs = capacity_pairs(result)
    text = _join(capacity(result, pairs.get("Depth")), capacity(result, pairs.get("Width")))
    figure = (r"Figure~\ref{fig:capacity} sets accuracy against parameters, FLOPs and training time."
              if text and "capacity" in result.figures else NA)
    return _join(text, figure)


#: What He et al. (2016) found on depth, which the residual vs plain pairs (9 and 18 layers) are read against.
HE_FINDING = (r"\citet{he2016deep} found plain nets harder to optimise as they grow deeper (on CIFAR-10 the training "
              r"error of plain nets rose from 20 to 56 layers; on ImageNet plain-34 trained worse than plain-18), "
              r"while at 18 layers their plain and residual nets reached about the same accuracy, the residual one "
              r"converging faster; our pairs are 9 and 18 layers deep.")
#: What the optimiser comparison holds fixed (conf/optimizer/).
OPTIMIZER_NOTE = (r"Each optimiser runs with its own conventional learning rate and weight decay "
                  r"(Table~\ref{tab:ablations}: SGD at 0.1, Adam, AdamW and RMSprop at $10^{-3}$), so this compares "
                  "the optimisers as commonly used, not each at its tuned best.")
#: Why the gaps of mixup and cutmix are not comparable.
MIXING_NOTE = ("For mixup and cutmix the training accuracy is measured on mixed images (a prediction earns the "
               "weight of its class in the mixed label), so their gaps are not comparable with the others'.")


def optimisation_discussion(result: AnalysisResult, lr_text: str) -> str:
    """The optimisers against the reference, then learning rate against schedule with its table."""
    optimizers = against_reference(result, "stage2_optimizer")
    return _join(optimizers, OPTIMIZER_NOTE if optimizers != NA else NA,
                 lr_text + r" \input{tables/lr_schedules}" if lr_text != NA else NA)


def augmentation_discussion(result: AnalysisResult, effects: pd.DataFrame) -> str:
    """Augmentation (crop + flip against none, every alternative against the reference), then regularisation
    with its table of main effects."""
    augments = against_reference(result, "stage3_augment")
    reg = regularisation(result, effects)
    return _join(augmentation(result), augments, MIXING_NOTE if augments != NA else NA,
                 reg + r" \input{tables/main_effects}" if reg != NA else NA)


# ------------------------------------------------------------------------------------------ macros and tables
def evidence_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX sentence of every ``\\read...`` and ``\\sum...`` macro (empty when its data is not in the
    analysed sweeps)."""
    lr_text, _ = lr_schedule_spread(result)
    effects, pairs, norm = main_effects(result), capacity_pairs(result), normalisation(result)
    sentences = {
        "readResVsPlainEighteen": residual_vs_plain(result, RES_VS_PLAIN),
        "readSkipVsNoSkip": residual_vs_plain(result, SKIP),
        "readResidual": residual_discussion(result),
        "readDepth": capacity(result, pairs.get("Depth")),
        "readWidth": capacity(result, pairs.get("Width")),
        "readCapacity": capacity_discussion(result),
        "readNorm": norm,
        "readNormalisation": _join(norm, against_reference(result, "stage2_norm")),
        "readLrSchedule": lr_text,
        "readOptimisation": optimisation_discussion(result, lr_text),
        "readDeadActivation": dead_by_activation(result),
        "readDeadLr": dead_by_lr(result),
        "readAugment": augmentation(result),
        "readRegularization": regularisation(result, effects),
        "readAugmentation": augmentation_discussion(result, effects),
        "readOptimizers": against_reference(result, "stage2_optimizer"),
        "readActivations": against_reference(result, "stage2_activation"),
        "readNorms": against_reference(result, "stage2_norm"),
        "readAugments": against_reference(result, "stage3_augment"),
        "readConfusionGroups": confusion_groups(result),
        "readBest": best_sentence(result),
        "readAnswers": answers(result),
        "readFindings": findings(result),
        "readNegative": negative_results(result),
        "sumModels": models_summary(result),
        "sumCapacity": capacity_summary(result),
        "sumSkip": _join(pair_summary(result, SKIP)) or preset_summary(result, SKIP.preset),
    }
    return {name: "" if text == NA else text for name, text in sentences.items()}
