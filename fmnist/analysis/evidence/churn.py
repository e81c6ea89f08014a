r"""Seed ensembles and prediction churn (``result.ensembles``, :mod:`fmnist.analysis.ensembles`): the numbers the
additional notes quote (``\ensCells``, ``\ensGain``, ``\ensChurn``, ...) and the sentences that read them
(``\readEnsembles``). Averages are over the cells with two seeds or more, each cell counted once.
"""

from __future__ import annotations

import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import key_comparisons
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult

#: The named macros of the seed ensembles (n/a without a cell of two seeds or more).
ENSEMBLE_MACROS = ("ensCells", "ensSeeds", "ensGain", "ensGainMin", "ensGainMax", "ensChurn", "ensAccDiff",
                   "ensAccStd", "ensWrongAll", "ensWrongAny", "ensTopPreset", "ensTopCell", "ensTopChurn",
                   "ensTopStd")


def top_churn(result: AnalysisResult) -> pd.Series | None:
    """The cell whose seeds disagree on the most test images (the first of equals); None without ensembles."""
    table = result.ensembles
    return None if table.empty else table.loc[table["churn"].idxmax()]


def ensemble_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX value of every ENSEMBLE_MACROS entry: percentages of the test images (churn, wrong for every /
    for at least one seed), differences in percentage points (gain: signed, with its range over the cells; the
    seeds' accuracy difference and std)."""
    table = result.ensembles
    if table.empty:
        return {name: NA for name in ENSEMBLE_MACROS}
    low, high = int(table["n_runs"].min()), int(table["n_runs"].max())
    top = top_churn(result)
    return {
        "ensCells": plural(len(table), "cell"),
        "ensSeeds": plural(low, "seed") if low == high else f"{low}--{high} seeds",
        "ensGain": latex.pp(table["gain"].mean()), "ensGainMin": latex.pp(table["gain"].min()),
        "ensGainMax": latex.pp(table["gain"].max()), "ensChurn": latex.pct(table["churn"].mean()),
        "ensAccDiff": latex.pct(table["acc_diff"].mean()), "ensAccStd": latex.pct(table["acc_std"].mean()),
        "ensWrongAll": latex.pct(table["wrong_all"].mean()), "ensWrongAny": latex.pct(table["wrong_any"].mean()),
        "ensTopPreset": rf"\texttt{{{escape(top['preset'])}}}", "ensTopCell": escape(top["cell"]),
        "ensTopChurn": latex.pct(top["churn"]), "ensTopStd": latex.pct(top["acc_std"]),
    }


def seed_ensembles(result: AnalysisResult) -> str:
    """What the seeds of a cell do image by image: the ensemble's gain, the churn against the seeds' difference in
    accuracy, the images every seed / some seed gets wrong, and the cell with the largest churn; n/a without a cell
    of two seeds or more."""
    table = result.ensembles
    if table.empty:
        return NA
    m = ensemble_macros(result)
    gain, churn, diff = table["gain"].mean(), table["churn"].mean(), table["acc_diff"].mean()
    one, mean = len(table) == 1, ("" if len(table) == 1 else " on average")
    each = " each" if table["n_runs"].nunique() == 1 else ""
    text = (rf"For the only cell with two seeds or more, {m['ensTopCell']} of {m['ensTopPreset']} ({m['ensSeeds']})"
            if one else rf"Over the {m['ensCells']} with two seeds or more ({m['ensSeeds']}{each})")
    moves = ("leaves test accuracy unchanged" if round(100 * abs(gain), 2) == 0 else  # as printed: float noise is 0
             f"{'raises' if gain > 0 else 'lowers'} test accuracy by {latex.pct(abs(gain))}\\,pp{mean}")
    text += (f", averaging the seeds' predicted probabilities {moves} over the mean single run"
             + ("" if one else rf" (per cell from {m['ensGainMin']} to {m['ensGainMax']}\,pp)") + ". ")
    text += (rf"Two seeds disagree on {m['ensChurn']}\,\% of the test images{mean}, while their test accuracies "
             rf"differ by {m['ensAccDiff']}\,pp{mean} (std over the seeds {m['ensAccStd']}\,pp"
             + ("" if one else ", on average over the cells") + ")")
    if churn > 0 and diff > 0:
        text += (f": churn is at least the difference in accuracy, and here it is {churn / diff:.1f} times that "
                 "difference" + (", so most images on which two seeds disagree are not accounted for by their "
                                 "difference in accuracy" if churn > 2 * diff else ""))
    elif churn > 0:
        text += ": seeds of the same accuracy still disagree on those images"
    text += (". " + ("Of the test images, " if one else "On average over the cells, ")
             + rf"{m['ensWrongAll']}\,\% {'are' if one else 'of the test images are'} wrong for every seed and "
             rf"{m['ensWrongAny']}\,\% for at least one.")
    if not one:
        text += (rf" The largest churn is that of {m['ensTopCell']} ({m['ensTopPreset']}): its seeds disagree on "
                 rf"{m['ensTopChurn']}\,\% of the test images, with a test-accuracy std of {m['ensTopStd']}\,pp.")
    return text


def key_churn(result: AnalysisResult) -> str:
    r"""The ``\readKeyChurn`` sentences: for each key comparison, the share of test images on which a run of cell a
    and a run of cell b predict different classes, beside their accuracy difference and, with two seeds of a cell,
    the same share between two of its seeds; how many comparisons disagree more than two seeds of either cell. NA
    without the predictions of both cells of any question."""
    table = result.pair_churn
    if table.empty:
        return NA
    keys = key_comparisons(result)
    deltas = dict(zip(keys["question"], keys["delta"])) if len(keys) else {}
    parts = []
    for _, r in table.iterrows():
        delta = deltas.get(r["question"])
        notes = [] if delta is None or pd.isna(delta) else [rf"accuracy difference {latex.pp(delta)}\,pp"]
        if not (pd.isna(r["within_a"]) or pd.isna(r["within_b"])):
            notes.append(rf"two seeds of {escape(r['a'])}: {latex.pct(r['within_a'])}\,\%, of {escape(r['b'])}: "
                         rf"{latex.pct(r['within_b'])}\,\%")
        notes_text = f" ({'; '.join(notes)})" if notes else ""
        parts.append(rf"{escape(r['question'])} --- {escape(r['a'])} against {escape(r['b'])}: "
                     rf"{latex.pct(r['between'])}\,\%{notes_text}")
    text = ("A run of each question's cell $a$ and a run of its cell $b$ predict different classes for this share of "
            "the test images: " + "; ".join(parts) + ".")
    both = table.dropna(subset=["within_a", "within_b"])
    if both.empty:
        return text + (" Two seeds of one cell are not compared yet (one seed per cell), so these shares cannot yet be "
                       "set against the disagreement that a change of seed alone brings.")
    more, n = int((both["between"] > both[["within_a", "within_b"]].max(axis=1)).sum()), len(both)
    if n == 1:
        said = (" For the only comparison with two seeds of both cells, the two settings disagree "
                f"{'more' if more else 'no more'} often than two seeds of either setting do")
    elif more == 0:
        said = (f" In none of the {n} comparisons with two seeds of both cells do the two settings disagree more "
                "often than two seeds of either setting")
    else:
        which = ("both" if n == 2 else f"all {n}") if more == n else f"{more} of the {n}"
        said = (f" In {which} comparisons with two seeds of both cells, the two settings disagree more often than two "
                "seeds of either setting do")
    return text + said + " (a description, not a test)."
