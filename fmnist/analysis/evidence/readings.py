"""The sentences that answer one question each: residual vs plain, depth and width, normalisation, augmentation,
every alternative against its preset's reference, and where the confusion cell's errors fall. Every sentence
quotes the numbers it rests on, so the prose traces to the runs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import (HOLM, Pair, _same, across_questions, cell_value, compare, find_cell,
                                                  metric_name)
from fmnist.analysis.evidence.wording import _loss, _p, _pair, _size, p_math, versus
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.style import slug


def residual_vs_plain(result: AnalysisResult, pair: Pair) -> str:
    """Is the plain net's gap (if any) one of optimisation (higher training loss) or of generalisation? Ends with
    both nets' training loss of the first epoch (how each started)."""
    text = _residual_vs_plain(result, pair)
    early = compare(result, pair.preset, pair.b, pair.a, "train_loss_epoch1")
    if text == NA or early is None:
        return text
    return text + (rf" Over the first epoch their training losses average {_loss(early.a)} (plain) and "
                   rf"{_loss(early.b)} (residual; {_p(early)}).")


def _residual_vs_plain(result: AnalysisResult, pair: Pair) -> str:
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
    norm=none lower by 3.00 pp (p_Holm=0.002); norm=groupnorm within seed noise (...)'; a key comparison's p is
    corrected across the questions and says so (comparisons.key_family_cells)."""
    cells = result.cells[result.cells["preset"] == preset]
    ref = cells[cells["is_reference"] & (cells["n"] > 0)]
    others = cells[~cells["is_reference"] & ((cells["n"] > 0) | (cells["n_failed"] > 0))]
    if ref.empty or others.empty:
        return NA
    parts, keyed = [], False
    for _, c in others.iterrows():
        name, delta = escape(c["cell"]), latex.pp(c["delta"])
        across = across_questions(c)
        keyed = keyed or bool(across)
        p = "" if pd.isna(c["p_holm"]) else p_math(c["p_holm"], HOLM) + across
        if c["n"] == 0:  # every run failed (diverged): a result, not a gap
            parts.append(rf"{name} no completed run ({int(c['n_failed'])} failed)")
        elif not p:
            parts.append(rf"{name} {delta}\,pp (too few seeds for a test)")
        elif c["significant"]:
            parts.append(rf"{name} {'higher' if c['delta'] > 0 else 'lower'} by {_size(c['delta'])}\,pp ({p})")
        else:
            parts.append(rf"{name} within seed noise ($\Delta$\,=\,{delta}\,pp, {p})")
    corrected = "" if not others["p_holm"].notna().any() else (
        "Holm-corrected within the preset, or across the questions where so marked, " if keyed
        else "Holm-corrected within the preset, ")
    return (rf"Against {escape(ref['cell'].iloc[0])} ({corrected}Table~\ref{{tab:preset-{slug(preset)}}}): "
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

    pooled = " (seeds pooled)" if r.n_runs > 1 else ""
    text = (rf"Of all {latex.thousands(errors)} test errors{pooled}, {latex.pct(within(UPPER_BODY), 1)}\,\% "
            rf"confuse two upper-body garments (T-shirt/top, Pullover, Coat, Shirt) and "
            rf"{latex.pct(within(FOOTWEAR), 1)}\,\% two kinds of footwear.")
    shirt = names.index("Shirt")
    if off[shirt].sum():
        top = np.argsort(-off[shirt], kind="stable")[:3]
        parts = ", ".join(rf"{escape(names[j])} {latex.pct(off[shirt, j] / off[shirt].sum(), 1)}\,\%"
                          for j in top if off[shirt, j] > 0)
        text += rf" A misclassified Shirt is taken for: {parts}."
    return text
