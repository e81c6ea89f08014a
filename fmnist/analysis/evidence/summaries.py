"""Summaries: the study's questions answered in one list, the cells that beat or lose to their preset's
reference (Holm), the best cell, and the results section's paragraph per preset.
"""

from __future__ import annotations

import math

import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import (CAPACITY, HOLM, RES_VS_PLAIN, Comparison, Pair, across_questions,
                                                  capacity_pairs, compare, failed_cells, find_cell, key_comparisons,
                                                  metric_name, primary)
from fmnist.analysis.evidence.wording import _join, _p, _size, effect, p_math
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import selection_metric
from fmnist.data.resplit import CLASS_NAMES


def _compared(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells compared with their preset's reference (both sides with at least two seeds)."""
    return cells[cells["significant"].notna()] if "significant" in cells else cells.iloc[:0]


def _itemize(cells: pd.DataFrame, rows: pd.DataFrame) -> str:
    items = [rf"\item \texttt{{{escape(c['preset'])}}}: {escape(c['cell'])} is {escape(c['verdict'])} than "
             rf"{escape(_reference(cells, c['preset']))} by {_size(c['delta'])}\,pp "
             rf"({p_math(c['p_holm'], HOLM)}{across_questions(c)})." for _, c in rows.iterrows()]
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
                if untested_count(result.cells) else no_comparison(result.cells))
    hits = compared[compared["significant"].astype(bool)]
    better = hits[hits["delta"] > 0].sort_values("delta", ascending=False)
    untested = untested_count(result.cells)
    text = (f"Comparisons of a cell with its preset's reference cell{' tested so far' if untested else ''}: "
            f"{len(compared)}; significant after Holm's correction: {len(hits)} ({len(better)} higher, "
            f"{len(hits) - len(better)} lower); within seed noise: {len(compared) - len(hits)}"
            + (f"; not tested yet (fewer than two seeds on a side): {untested}." if untested else "."))
    return text + (" The cells that score higher than their reference:" + _itemize(result.cells, better)
                   if len(better) else " No cell scores significantly higher than its preset's reference.")


def negative_results(result: AnalysisResult) -> str:
    """The cells that score significantly lower than their reference, and the changes that made no measurable
    difference."""
    compared = _compared(result.cells)
    if compared.empty:
        return _untested_shortfalls(result.cells)
    significant = compared["significant"].astype(bool)
    worse = compared[significant & (compared["delta"] < 0)].sort_values("delta")
    null = int((~significant).sum())
    untested = untested_count(result.cells)
    tried = "tested so far" if untested else "we tried"
    text = latex.sentence(latex.share(null, len(compared), f"alternative {tried}", "within seed noise of the "
                                      "reference", f"alternatives {tried}")) + "."
    if null:
        its, it = ("its difference", "it has") if null == 1 else ("their differences", "they have")
        text += (f" With the seeds we ran and at this training length, {its} from the reference cannot be told apart "
                 f"from seed noise; that does not show that {it} no effect.")
    if untested:  # after the sentence on those within seed noise, which its pronouns refer to
        have, are = ("has", "is") if untested == 1 else ("have", "are")
        text += (f" The other {plural(untested, 'alternative')} {have} fewer than two seeds on a side so far and {are} "
                 "not tested yet.")
    scores = "scores" if len(worse) == 1 else "score"
    return text + (f" In all, {plural(len(worse), 'cell')} {scores} significantly lower:"
                   + _itemize(result.cells, worse) if len(worse) else "")


def untested_count(cells: pd.DataFrame) -> int:
    """How many cells have a difference from their preset's reference (completed runs on both sides) that could not
    be tested (fewer than two seeds on a side): in a partly seeded study, the alternatives the counts of tested ones
    leave out. A cell whose reference has no completed run has no difference to test (:func:`no_comparison`)."""
    if "p_holm" not in cells or "delta" not in cells:
        return 0
    return int((~cells["is_reference"].astype(bool) & (cells["n"] > 0) & cells["delta"].notna()
                & cells["p_holm"].isna()).sum())


def no_comparison(cells: pd.DataFrame) -> str:
    """'No difference is tested: <why>.' when no cell has a difference from its preset's reference to test, whatever
    the seeds: every preset has a single cell, so there is nothing to compare, or no preset has results (completed
    runs with a value) of both its reference and another cell ('the only cell besides the reference, X, has no result
    (2 failed)'); NA when some cell has a difference (tested, or :func:`untested_count`'s too few seeds)."""
    if cells.empty or (~cells["is_reference"].astype(bool) & cells["delta"].notna()).any():
        return NA
    sizes = cells.groupby("preset").size()
    if (sizes == 1).all():
        single = "the preset has" if len(sizes) == 1 else f"each of the {len(sizes)} presets has"
        return f"No difference is tested: {single} a single cell, so there is nothing to compare."
    cells = cells[cells["preset"].isin(sizes[sizes > 1].index)]  # a single cell's preset compares nothing
    is_ref = cells["is_reference"].astype(bool)
    refs, others = cells[is_ref], cells[~is_ref]
    if not (cells["n"] > 0).any():
        why = f"no cell has a result ({_no_result_runs(cells)})"
    elif not (others["n"] > 0).any():
        the = "the reference" if len(refs) == 1 else "the references"
        why = (rf"the only cell besides the reference, {escape(others['cell'].iloc[0])}, has no result"
               if len(others) == 1 else f"none of the {len(others)} cells besides {the} has a result")
        why += f" ({_no_result_runs(others)})"
    elif not (refs["n"] > 0).any():
        why = (rf"the reference cell, {escape(refs['cell'].iloc[0])}, has no result" if len(refs) == 1 else
               f"none of the {len(refs)} reference cells has a result")
        why += f" ({_no_result_runs(refs)}) to compare the other cells with"
    else:
        why = "no preset has results of both its reference cell and another cell"
    return f"No difference is tested: {why}."


def _no_result_runs(cells: pd.DataFrame) -> str:
    """What became of the runs of `cells`, none of which has a result, by outcome: '2 failed', '2 failed,
    1 unfinished', '1 completed without a value'."""
    counts = [(int(cells[column].sum()), what) for column, what in (
        ("n_failed", "failed"), ("n_unfinished", "unfinished"), ("n_no_value", "completed without a value"))]
    return ", ".join(f"{n} {what}" for n, what in counts if n) or "no run"


def _untested_shortfalls(cells: pd.DataFrame, top: int = 3) -> str:
    """Before any comparison can be tested: the cells furthest below their preset's reference, as measured (none
    is called a negative result); NA when no cell is below its reference."""
    below = cells[cells["delta"].notna() & (cells["delta"] < 0)].sort_values("delta").head(top)
    if below.empty:
        return NA
    items = [rf"{escape(c['cell'])} of \texttt{{{escape(c['preset'])}}} ({latex.pp(c['delta'])}\,pp against "
             rf"{escape(_reference(cells, c['preset']))})" for _, c in below.iterrows()]
    return ("No cell can be called worse than its reference yet: no comparison has two seeds on both sides. "
            f"Measured on the seeds so far, the {'cell' if len(items) == 1 else f'{len(items)} cells'} furthest "
            f"below {'its' if len(items) == 1 else 'their'} preset's reference: {latex.and_join(items)}; the "
            f"further seeds will tell whether {'it is an effect' if len(items) == 1 else 'these are effects'}.")


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
    return latex.pct_pm(cell[f"{metric}_mean"], cell[f"{metric}_std"] if std else None) + r"\,\%"


def best_sentence(result: AnalysisResult) -> str:
    """'The best cell, X of P, reaches 93.10 ± 0.10 % test accuracy over 3 seeds.'; NA without a completed run."""
    best = best_cell(result)
    if best is None:
        return NA
    return (rf"The best cell{_best_by(result)}, {escape(best['cell'])} of \texttt{{{escape(best['preset'])}}}, reaches "
            rf"{_acc(result, best, std=True)} {metric_name(result)} over {plural(best['n'], 'seed')}."
            + _runner_up(result, best))


def _runner_up(result: AnalysisResult, best: pd.Series) -> str:
    """With one seed of the best cell, how far ahead of the next cell it is (the ranking is not tested): ' With one
    seed, ... the next cell, X of P, is 0.07 pp lower in validation accuracy (4 of the 6,000 validation images).'"""
    if best["n"] >= 2:
        return ""
    chosen_by = f"{selection_metric(result.cells)}_mean"
    others = result.cells[(result.cells["n"] > 0) & result.cells[chosen_by].notna()].drop(best.name)
    if others.empty:
        return ""
    nxt = others.loc[others[chosen_by].idxmax()]
    gap = best[chosen_by] - nxt[chosen_by]
    metric = "validation accuracy" if chosen_by.startswith("best_val_acc") else metric_name(result)
    runs = result.collection.runs
    n_val = pd.to_numeric(runs["n_val"], errors="coerce").dropna().unique() if "n_val" in runs else []
    images = (f" ({round(gap * n_val[0]):,} of the {int(n_val[0]):,} validation images)"
              if metric == "validation accuracy" and len(n_val) == 1 else "")
    return (rf" With one seed this ranking is not tested: the next cell, {escape(nxt['cell'])} of "
            rf"\texttt{{{escape(nxt['preset'])}}}, is {latex.pp(gap).lstrip('+')}\,pp lower in {metric}{images}.")


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
        if not done["is_reference"].astype(bool).any():  # the reference has no completed run to test against
            return " No cell could therefore be tested against the reference."
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


def unstable_starts(result: AnalysisResult, n_classes: int = len(CLASS_NAMES)) -> str:
    """The cells whose first epoch's mean training loss was above ln(n_classes), the cross-entropy of a uniform
    guess (whatever the targets: label smoothing and mixup included): predictions worse than chance on average
    over the first epoch, the sign of a learning rate too high for the net to start converging."""
    column = "train_loss_epoch1_mean"
    cells = result.cells
    if column not in cells or not cells[column].notna().any():
        return NA
    chance = math.log(n_classes)
    rated = cells[cells[column].notna()]
    above = rated[rated[column] > chance].sort_values(column, ascending=False)
    digits = 2  # enough that no listed loss reads the same as the chance level it is above
    while digits < 6 and any(f"{v:.{digits}f}" == f"{chance:.{digits}f}" for v in above[column]):
        digits += 1
    level = rf"$\ln {n_classes} = {chance:.{digits}f}$, the loss of a uniform guess"
    if above.empty:
        return (f"In every cell the mean training loss of the first epoch stays below {level}: no cell started "
                f"unstably.")
    items = [rf"\item \texttt{{{escape(c['preset'])}}}: {escape(c['cell'])}, {c[column]:.{digits}f} "
             rf"({plural(int(c['n']), 'seed')})" for _, c in above.iterrows()]
    cells_text = "cell" if len(above) == 1 else "cells"
    return (f"In {len(above)} of {plural(len(rated), 'cell')} the mean training loss of the first epoch is above "
            f"{level}: on average, {'its runs' if len(above) == 1 else 'their runs'} predicted worse than a uniform "
            f"guess during their first epoch (He "
            r"et al.\ found a learning rate of 0.1 too large for their 110-layer ResNet to start converging, and "
            r"warmed it up at 0.01~\citep{he2016deep}). The "
            + cells_text + ":\n\\begin{itemize}\\itemsep0pt\n" + "\n".join(items) + "\n\\end{itemize}")
