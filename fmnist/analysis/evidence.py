r"""The evidence behind the report's discussion: for each question of the study, the comparisons that answer it
and a sentence that reads them no further than the test allows.

A comparison is Welch's two-sided t-test over seeds (:func:`fmnist.analysis.stats.welch`) between two cells of a
preset, on test accuracy or on a number read off the training curves (``CURVE_FIELDS``: the last epoch's
training loss, the generalisation gap, the validation accuracy after one epoch). A difference is called an
effect only when p < alpha; otherwise the sentence says "within seed noise". Every sentence quotes the numbers
it rests on, so the prose traces to the runs. Macros (report/macros.tex; each expands to nothing when its data is
not in the analysed sweeps):

* ``\readResVsPlainEighteen``, ``\readSkipVsNoSkip``: residual vs plain at equal depth, with training losses
  (optimisation or generalisation?);
* ``\readDepth``, ``\readWidth``: ResNet-34 vs 18 and width 64 vs 16, with parameters and generalisation gaps;
* ``\readNorm``: no normalisation vs BatchNorm, with the accuracy after one epoch and failures;
* ``\readLrSchedule``: how much the learning rate and the schedule each move accuracy (with
  ``tables/lr_schedules.tex``);
* ``\readDeadActivation``, ``\readDeadLr``: dead units by activation and against accuracy; by learning rate;
* ``\readAugment``: no augmentation vs crop + flip, with generalisation gaps;
* ``\readRegularization``: the main effect of each regularisation factor (with ``tables/main_effects.tex``);
* ``\readOptimizers``, ``\readActivations``, ``\readNorms``, ``\readAugments``: every alternative against the
  preset's reference, as its table has it (Holm-corrected);
* ``\readConfusionGroups``: how the confusion cell's errors fall into look-alike class groups;
* ``\readFindings``, ``\readNegative``: the cells that beat / lose to their preset's reference (Holm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fmnist.analysis import latex
from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.latex import NA, escape
from fmnist.analysis.pipeline import AnalysisResult, choose_cell
from fmnist.analysis.stats import welch, welch_ci
from fmnist.analysis.style import slug


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

    @property
    def diff(self) -> float:
        return self.a - self.b

    def significant(self, alpha: float) -> bool:
        return not math.isnan(self.p) and self.p < alpha


# ------------------------------------------------------------------------------------------ cells and tests
def primary(result: AnalysisResult) -> str:
    """The accuracy the comparisons use: test accuracy, or best validation accuracy when test labels are hidden."""
    return str(result.cells["metric"].iloc[0]) if len(result.cells) else "test_acc"


def find_cell(result: AnalysisResult, preset: str, params: Mapping[str, Any]) -> pd.Series | None:
    """The cell of `preset` with these parameter values, None when it is not in the analysed sweeps."""
    try:
        return choose_cell(result.cells, {"preset": preset, **params})
    except AnalysisError:
        return None


def cell_values(result: AnalysisResult, cell: pd.Series, column: str) -> np.ndarray:
    """`column` of every completed run of `cell` (NaN where a run lacks it)."""
    runs = result.collection.completed
    runs = runs[(runs["preset"] == cell["preset"]) & (runs["cell"] == cell["cell"])]
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
    or its values are missing."""
    column = column or primary(result)
    ca, cb = find_cell(result, preset, a), find_cell(result, preset, b)
    if ca is None or cb is None:
        return None
    return _test(cell_values(result, ca, column), cell_values(result, cb, column))


# ------------------------------------------------------------------------------------------ wording
def p_math(p: float, name: str = "p") -> str:
    """'$p=0.012$' or '$p<0.001$'."""
    return f"${name}<0.001$" if p < 0.001 else f"${name}={p:.3f}$"


def _p(c: Comparison) -> str:
    return "too few seeds for a test" if math.isnan(c.p) else p_math(c.p)


def _size(diff: float) -> str:
    return f"{100.0 * abs(diff):.2f}"


def effect(c: Comparison, alpha: float) -> str:
    r"""a against b in short: 'higher by 0.42\,pp ($p=0.010$)', 'lower by ...' or 'within seed noise (...)'."""
    if not c.significant(alpha):
        return rf"within seed noise ($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)})"
    return rf"{'higher' if c.diff > 0 else 'lower'} by {_size(c.diff)}\,pp ({_p(c)})"


def versus(c: Comparison, alpha: float, a: str, b: str) -> str:
    """A sentence on test accuracy: 'A scores 0.42 pp higher than b in test accuracy (p=0.010).', or 'A and b are
    within seed noise of each other in test accuracy (...).'"""
    a = a[:1].upper() + a[1:]
    if not c.significant(alpha):
        return (rf"{a} and {b} are within seed noise of each other in test accuracy "
                rf"($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)}).")
    return rf"{a} scores {_size(c.diff)}\,pp {'higher' if c.diff > 0 else 'lower'} than {b} in test accuracy ({_p(c)})."


def _loss(value: float) -> str:
    return NA if latex.missing(value) else f"{value:.3f}"


def _pair(c: Comparison, fmt: Callable[[float], str]) -> str:
    return rf"{fmt(c.a)} vs.\ {fmt(c.b)}, {_p(c)}"


# ------------------------------------------------------------------------------------------ the questions
#: The study's key comparisons, one per question (tables/key_comparisons.tex): question, preset, cell a, cell b,
#: and how the table names a and b. Everything but the named setting is shared by a and b.
KEY_COMPARISONS: tuple[tuple[str, str, dict[str, Any], dict[str, Any], str, str], ...] = (
    ("residual vs plain, 18 layers", "stage1_models", {"model": "resnet18"}, {"model": "plain18"},
     "ResNet-18", "Plain-18"),
    ("skip connections, ResNet-9", "stage2_skip", {"model.skip": True}, {"model.skip": False}, "skips", "no skips"),
    ("depth", "stage1_capacity", {"model": "resnet34", "model.width": 64}, {"model": "resnet18", "model.width": 64},
     "ResNet-34", "ResNet-18"),
    ("width", "stage1_capacity", {"model": "resnet18", "model.width": 64}, {"model": "resnet18", "model.width": 16},
     "width 64", "width 16"),
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


def key_comparisons(result: AnalysisResult) -> pd.DataFrame:
    """One row per KEY_COMPARISONS entry whose cells were analysed: the two means, n, difference, p, verdict."""
    rows = []
    for question, preset, a, b, name_a, name_b in KEY_COMPARISONS:
        c = compare(result, preset, a, b)
        if c is None:
            continue
        verdict = ("too few seeds" if math.isnan(c.p) else
                   ("higher" if c.diff > 0 else "lower") if c.significant(result.alpha) else "within seed noise")
        rows.append({"question": question, "preset": preset, "a": name_a, "b": name_b, "acc_a": c.a, "acc_b": c.b,
                     "n_a": c.n_a, "n_b": c.n_b, "delta": c.diff, "ci_low": c.low, "ci_high": c.high, "p": c.p,
                     "verdict": verdict})
    return pd.DataFrame(rows)

def residual_vs_plain(result: AnalysisResult, preset: str, residual: Mapping[str, Any],
                      plain: Mapping[str, Any]) -> str:
    """Is the plain net's gap (if any) one of optimisation (higher training loss) or of generalisation?"""
    acc = compare(result, preset, residual, plain)
    loss = compare(result, preset, plain, residual, "train_loss_final")
    if acc is None:
        return NA
    text = versus(acc, result.alpha, "the residual net", "the plain net")
    if loss is None:
        return text
    losses = rf"final training loss {_pair(loss, _loss)}, plain vs.\ residual"
    if not loss.significant(result.alpha):
        return text + rf" Their final training losses do not differ significantly ({losses}): " + (
            "the residual net's advantage shows in generalisation rather than in optimisation."
            if acc.significant(result.alpha) and acc.diff > 0 else
            "at this depth, with BatchNorm, we see no sign that the plain net is harder to optimise.")
    if loss.diff > 0:
        return text + (rf" The plain net also ends training with a higher training loss ({losses}): it is harder to "
                       r"optimise rather than overfitting, the degradation problem that residual connections "
                       r"address~\citep{he2016deep}.")
    return text + rf" The plain net ends training with a lower training loss ({losses})."


def capacity(result: AnalysisResult, preset: str, big: Mapping[str, Any], small: Mapping[str, Any],
             names: tuple[str, str]) -> str:
    """The larger of two nets against the smaller: parameters, test accuracy and generalisation gap."""
    acc = compare(result, preset, big, small)
    params = compare(result, preset, big, small, "params")
    gap = compare(result, preset, big, small, "gap_final")
    if acc is None:
        return NA
    ratio = "" if params is None or not params.b else rf" ({params.a / params.b:.1f}$\times$ the parameters)"
    text = versus(acc, result.alpha, names[0] + ratio, names[1])
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
        return NA
    text = versus(acc, result.alpha, "ResNet-9 without normalisation", "ResNet-9 with BatchNorm")
    if early is not None:
        text += (rf" After one epoch its validation accuracy is {latex.pct(early.a)}\,\% against "
                 rf"{latex.pct(early.b)}\,\% with BatchNorm ({_p(early)})" + (
                     r": BatchNorm speeds up early training~\citep{ioffe2015batch}."
                     if early.significant(result.alpha) and early.diff < 0 else "."))
    cell = find_cell(result, "stage2_norm", none)
    failed = 0 if cell is None else int(cell.get("n_failed", 0) or 0)
    if failed:
        text += rf" {failed} of its {failed + int(cell['n'])} runs failed (Table~\ref{{tab:problems}})."
    return text


def lr_schedule_spread(result: AnalysisResult) -> tuple[str, pd.DataFrame]:
    """How far accuracy moves across learning rates (per schedule) and across schedules (per learning rate),
    and per schedule its best and worst learning rate."""
    cells = result.cells[(result.cells["preset"] == "stage2_lr") & (result.cells["n"] > 0)]
    if cells.empty or not {"optimizer.lr", "scheduler"} <= set(cells.columns):
        return NA, pd.DataFrame()
    mean = f"{primary(result)}_mean"
    grid = cells.pivot_table(index="scheduler", columns="optimizer.lr", values=mean, aggfunc="first")
    rows = []
    for scheduler, accs in grid.iterrows():
        accs = accs.dropna()
        if accs.empty:
            continue
        failed = int(cells.loc[cells["scheduler"] == scheduler, "n_failed"].sum())
        rows.append({"scheduler": scheduler, "best_lr": accs.idxmax(), "best": accs.max(), "worst_lr": accs.idxmin(),
                     "worst": accs.min(), "spread": accs.max() - accs.min(), "failed": failed})
    table = pd.DataFrame(rows)
    if table.empty:
        return NA, table
    by_lr = (grid.max(axis=0) - grid.min(axis=0)).dropna()
    best_lrs = table["best_lr"].value_counts()
    text = (rf"Across the {grid.shape[1]} learning rates, test accuracy moves by {_size(table['spread'].mean())}\,pp "
            rf"on average within a schedule; across the {grid.shape[0]} schedules, by "
            rf"{_size(by_lr.mean()) if len(by_lr) else NA}\,pp within a learning rate. The best learning rate is "
            rf"{latex.number(best_lrs.index[0])} for {int(best_lrs.iloc[0])} of {len(table)} schedules "
            r"(Table~\ref{tab:lr-schedules}).")
    if len(by_lr) and table["spread"].mean() > by_lr.mean():
        text += " The learning rate matters more than the schedule's shape."
    elif len(by_lr):
        text += " The schedule's shape matters at least as much as the learning rate."
    return text, table


def dead_by_activation(result: AnalysisResult) -> str:
    """Dead units per activation in stage2_activation, and their rank correlation with test accuracy."""
    dead = result.dead_runs
    if dead.empty or "preset" not in dead:
        return NA
    dead = dead[dead["preset"] == "stage2_activation"]
    accuracy = primary(result)
    data = dead.merge(result.collection.completed[["run_dir", accuracy]], on="run_dir")
    if data.empty:
        return NA
    by_act = data.groupby("activation")["dead_fraction"].mean().sort_values(ascending=False)
    parts = ", ".join(rf"{escape(a)} {latex.pct(v)}\,\%" for a, v in by_act.items())
    text = rf"In \texttt{{stage2\_activation}} the dead units are: {parts}."
    valid = data[["dead_fraction", accuracy]].astype(float).dropna()
    if len(valid) >= 4 and valid["dead_fraction"].nunique() > 1 and valid[accuracy].nunique() > 1:
        rho, p = scipy_stats.spearmanr(valid["dead_fraction"], valid[accuracy])
        text += (rf" Over its {len(valid)} runs, the rank correlation between the dead fraction and test accuracy "
                 rf"is $\rho={rho:.2f}$ ({p_math(p)})" + (
                     ": more dead units go with lower accuracy." if p < result.alpha and rho < 0 else
                     ": more dead units go with higher accuracy." if p < result.alpha else
                     ": no significant relation between dead units and accuracy."))
    return text


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
                ": not a significant difference." if not c.significant(result.alpha) else
                ": large steps kill units." if c.diff > 0 else ": fewer units die at the larger learning rate."))


def augmentation(result: AnalysisResult) -> str:
    """No augmentation against crop + flip: test accuracy and the generalisation gap."""
    none, standard = {"augment": "none"}, {"augment": "standard"}
    acc = compare(result, "stage3_augment", standard, none)
    gap = compare(result, "stage3_augment", none, standard, "gap_final")
    if acc is None:
        return NA
    text = versus(acc, result.alpha, "ResNet-9 with crop + flip", "ResNet-9 without augmentation")
    if gap is not None:
        text += (rf" The gap between training and validation accuracy in the last epoch is {latex.pp(gap.a)}\,pp "
                 rf"without augmentation and {latex.pp(gap.b)}\,pp with it ({_p(gap)})" + (
                     ": augmentation acts as a regulariser." if gap.significant(result.alpha) and gap.diff > 0
                     else "."))
    return text


def against_reference(result: AnalysisResult, preset: str) -> str:
    """Each cell of `preset` against the preset's reference, as in its table (Holm-corrected): 'against norm=batchnorm:
    norm=none lower by 3.00 pp (p_Holm=0.002); norm=groupnorm within seed noise (...)'."""
    cells = result.cells[(result.cells["preset"] == preset) & (result.cells["n"] > 0)]
    ref = cells[cells["is_reference"]]
    if ref.empty or len(cells) < 2:
        return NA
    parts = []
    for _, c in cells[~cells["is_reference"]].iterrows():
        if pd.isna(c["p_holm"]):
            parts.append(rf"{escape(c['cell'])} {latex.pp(c['delta'])}\,pp (too few seeds for a test)")
        elif c["significant"]:
            parts.append(rf"{escape(c['cell'])} {'higher' if c['delta'] > 0 else 'lower'} by {_size(c['delta'])}\,pp "
                         rf"({p_math(c['p_holm'], HOLM)})")
        else:
            parts.append(rf"{escape(c['cell'])} within seed noise ($\Delta$\,=\,{latex.pp(c['delta'])}\,pp, "
                         rf"{p_math(c['p_holm'], HOLM)})")
    return (rf"Against {escape(ref['cell'].iloc[0])} (Holm-corrected, Table~\ref{{tab:preset-{slug(preset)}}}): "
            + "; ".join(parts) + ".")


#: The regularisation factors of stage3_regularization, in the order the report lists them.
REG_FACTORS = {"optimizer.weight_decay": "weight decay", "trainer.label_smoothing": "label smoothing",
               "model.dropout": "dropout"}


def main_effects(result: AnalysisResult) -> pd.DataFrame:
    """For each factor of stage3_regularization and each of its levels: test accuracy averaged over the other
    factors (all their runs pooled) and Welch's test against the factor's lowest level."""
    runs = result.collection.completed
    runs = runs[runs["preset"] == "stage3_regularization"]
    accuracy = primary(result)
    rows = []
    for factor, label in REG_FACTORS.items():
        if factor not in runs or runs[factor].isna().all():
            continue
        setting = pd.to_numeric(runs[factor], errors="coerce")
        levels = sorted(setting.dropna().unique())
        if len(levels) < 2:  # not varied in the analysed runs: no effect to estimate
            continue
        values = {lv: pd.to_numeric(runs.loc[np.isclose(setting, lv), accuracy], errors="coerce").to_numpy(float)
                  for lv in levels}
        base = values[levels[0]]
        for lv in levels:
            c = _test(values[lv], base)
            if c is not None:
                rows.append({"factor": label, "key": factor, "level": lv, "n": c.n_a, "acc": c.a,
                             "delta": c.diff, "p": c.p if lv != levels[0] else math.nan})
    return pd.DataFrame(rows)


def regularisation(result: AnalysisResult, effects: pd.DataFrame) -> str:
    """The main effect of each regularisation factor's strongest level against none."""
    if effects.empty:
        return NA
    parts = []
    for label, g in effects.groupby("factor", sort=False):
        top = g.iloc[-1]
        if top["level"] == g.iloc[0]["level"]:
            continue
        c = Comparison(top["acc"], top["acc"] - top["delta"], top["p"], int(top["n"]), int(g.iloc[0]["n"]))
        parts.append(rf"{label} {latex.number(top['level'])}: {effect(c, result.alpha)}")
    if not parts:
        return NA
    return ("Averaged over the other factors (Table~\\ref{tab:main-effects}), against none of it: "
            + "; ".join(parts) + ".")


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


HOLM = r"p_\mathrm{Holm}"


def _compared(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells compared with their preset's reference (both sides with at least two seeds)."""
    return cells[cells["significant"].notna()] if "significant" in cells else cells.iloc[:0]


def _itemize(cells: pd.DataFrame, rows: pd.DataFrame) -> str:
    items = [rf"\item \texttt{{{escape(c['preset'])}}}: {escape(c['cell'])} is {escape(c['verdict'])} than "
             rf"{escape(_reference(cells, c['preset']))} by {_size(c['delta'])}\,pp "
             rf"({p_math(c['p_holm'], HOLM)})." for _, c in rows.iterrows()]
    return "\n\\begin{itemize}\\itemsep0pt\n" + "\n".join(items) + "\n\\end{itemize}" if items else ""


def findings(result: AnalysisResult) -> str:
    """How many comparisons with a preset's reference are significant (Holm-corrected), and the list of the cells
    that score higher than their reference."""
    compared = _compared(result.cells)
    if compared.empty:
        return "No comparison with a reference cell had at least two seeds on both sides." if len(result.cells) else NA
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
    text = (f"{null} of the {len(compared)} alternatives we tried are within seed noise of their preset's reference: "
            "at this training length, changing them made no measurable difference.")
    return text + (f" {len(worse)} score significantly lower:" + _itemize(result.cells, worse) if len(worse) else "")


def _reference(cells: pd.DataFrame, preset: str) -> str:
    ref = cells[(cells["preset"] == preset) & cells["is_reference"]]
    return str(ref["cell"].iloc[0]) if len(ref) else "the reference"


# ------------------------------------------------------------------------------------------ macros and tables
def evidence_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX sentence of every ``\\read...`` macro (empty when its data is not in the analysed sweeps)."""
    lr_text, _ = lr_schedule_spread(result)
    sentences = {
        "readResVsPlainEighteen": residual_vs_plain(result, "stage1_models", {"model": "resnet18"},
                                                    {"model": "plain18"}),
        "readSkipVsNoSkip": residual_vs_plain(result, "stage2_skip", {"model.skip": True}, {"model.skip": False}),
        "readDepth": capacity(result, "stage1_capacity", {"model": "resnet34", "model.width": 64},
                              {"model": "resnet18", "model.width": 64},
                              ("ResNet-34", "ResNet-18 (both at width 64)")),
        "readWidth": capacity(result, "stage1_capacity", {"model": "resnet18", "model.width": 64},
                              {"model": "resnet18", "model.width": 16},
                              ("ResNet-18 at width 64", "ResNet-18 at width 16")),
        "readNorm": normalisation(result),
        "readLrSchedule": lr_text,
        "readDeadActivation": dead_by_activation(result),
        "readDeadLr": dead_by_lr(result),
        "readAugment": augmentation(result),
        "readRegularization": regularisation(result, main_effects(result)),
        "readOptimizers": against_reference(result, "stage2_optimizer"),
        "readActivations": against_reference(result, "stage2_activation"),
        "readNorms": against_reference(result, "stage2_norm"),
        "readAugments": against_reference(result, "stage3_augment"),
        "readConfusionGroups": confusion_groups(result),
        "readFindings": findings(result),
        "readNegative": negative_results(result),
    }
    return {name: "" if text == NA else text for name, text in sentences.items()}
