"""Where the key comparisons differ, class by class: the per-class test accuracy of the two cells of each question,
their difference, and Welch's test over seeds per class (Holm-corrected across the classes of that comparison).

Fashion-MNIST's test set is balanced (1,000 images per class), so a comparison's accuracy difference is the mean of
its per-class differences: the classes show where it comes from.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import HOLM, RES_VS_PLAIN, find_cell, key_specs
from fmnist.analysis.evidence.readings import UPPER_BODY
from fmnist.analysis.evidence.summaries import OTHER_MODELS
from fmnist.analysis.evidence.wording import p_math
from fmnist.analysis.latex import NA, escape
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.similarity import mantel, pair_confusion, upper_pairs
from fmnist.analysis.stats import holm, welch

COLUMNS = ["question", "preset", "a", "b", "cell_a", "cell_b", "class", "acc_a", "acc_b", "n_a", "n_b", "delta", "p",
           "p_holm", "images"]


def _class_accuracy(result: AnalysisResult, cell: pd.Series) -> pd.DataFrame:
    """Per-class test accuracy of the runs of `cell`: one row per run, one column per class (in class order)."""
    table = result.class_runs
    rows = table[(table["preset"] == cell["preset"]) & (table["cell"] == cell["cell"])]
    order = list(dict.fromkeys(table["class"]))
    return rows.pivot(index="run_dir", columns="class", values="accuracy").reindex(columns=order)


def class_differences(result: AnalysisResult) -> pd.DataFrame:
    """One row per key comparison (:func:`key_specs`) with per-class results on both sides and per class: the mean
    per-class accuracy of a and b over their runs, n, the difference a − b, Welch's two-sided p and its Holm
    correction across the classes of that comparison, and the class's test images (median over the runs)."""
    if result.class_runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    images = result.class_runs.groupby("class", sort=False)["images"].median()
    rows = []
    for question, preset, a, b, name_a, name_b in key_specs(result):
        cell_a, cell_b = find_cell(result, preset, a), find_cell(result, preset, b)
        if cell_a is None or cell_b is None:
            continue
        acc_a, acc_b = _class_accuracy(result, cell_a), _class_accuracy(result, cell_b)
        if acc_a.empty or acc_b.empty:
            continue
        found = []
        for name in acc_a.columns:
            va, vb = acc_a[name].dropna().to_numpy(float), acc_b[name].dropna().to_numpy(float)
            if len(va) and len(vb):
                found.append({"question": question, "preset": preset, "a": name_a, "b": name_b,
                              "cell_a": str(cell_a["cell"]), "cell_b": str(cell_b["cell"]), "class": name,
                              "acc_a": va.mean(), "acc_b": vb.mean(), "n_a": len(va), "n_b": len(vb),
                              "delta": va.mean() - vb.mean(), "p": welch(va, vb), "images": float(images[name])})
        for row, corrected in zip(found, holm([row["p"] for row in found])):
            row["p_holm"] = corrected
        rows += found
    return pd.DataFrame(rows, columns=COLUMNS)


def _pp(delta: float) -> str:
    return rf"{latex.pp(delta)}\,pp"


def _largest(group: pd.DataFrame, alpha: float) -> str:
    """'Shirt −4.10 pp, Pullover +2.00 pp': the two classes that moved most (one that passes Holm's correction with
    its p; the paragraph's last sentence counts the others)."""
    top = group.reindex(group["delta"].abs().sort_values(ascending=False, kind="stable").index).head(2)
    parts = []
    for _, row in top.iterrows():
        test = f" ({p_math(row['p_holm'], HOLM)})" if row["p_holm"] < alpha else ""  # NaN compares False
        parts.append(rf"{escape(row['class'])} {_pp(row['delta'])}{test}")
    return ", ".join(parts)


def class_reading(result: AnalysisResult, table: pd.DataFrame | None = None) -> str:
    r"""The ``\readClassDifferences`` paragraph: per key comparison, its overall difference and the two classes that
    moved most; how often that class is an upper-body garment or footwear; the per-class differences that pass
    Holm's correction, or that none is tested yet. NA without per-class results of both cells of any question."""
    table = class_differences(result) if table is None else table
    if table.empty:
        return NA
    low, high = table["images"].min(), table["images"].max()
    if low == high:
        text = (rf"The test set has {latex.thousands(low)} images per class, so 1\,pp of a class is "
                rf"{latex.number(low / 100)} image{'' if low == 100 else 's'}. ")
    else:
        text = rf"The test set has {latex.thousands(low)} to {latex.thousands(high)} images per class. "
    text += (r"Per class ($a-b$; "
             r"\iffigure{class_differences}{Figure~\ref{fig:class_differences}}{the two classes that moved most}): ")
    questions = list(dict.fromkeys(table["question"]))
    parts, upper = [], 0
    for question in questions:
        group = table[table["question"] == question]
        first = group.iloc[0]
        overall = (group["delta"] * group["images"]).sum() / group["images"].sum()
        parts.append(rf"{escape(question)} --- {escape(first['a'])} against {escape(first['b'])}, {_pp(overall)} "
                     rf"overall: {_largest(group, result.alpha)}")
        upper += group.loc[group["delta"].abs().idxmax(), "class"] in UPPER_BODY
    text += "; ".join(parts) + "."
    share = _upper_body_error_share(result, table)
    if share is not None:
        n = len(questions)
        where = ("" if upper else " not") if n == 1 else (f"in all {n} comparisons" if upper == n else
                                                         f"in {upper} of the {n} comparisons")
        text += (rf" The class that moved most is{where} an upper-body garment (T-shirt/top, Pullover, Coat, Shirt)"
                 if n == 1 else rf" {latex.sentence(where)} the class that moved most is an upper-body garment "
                 r"(T-shirt/top, Pullover, Coat, Shirt)")
        text += rf"; these four classes hold {latex.pct(share, 1)}\,\% of the compared cells' test errors."
    if table["p_holm"].isna().all():
        return text + r" No per-class difference is tested yet: that needs two seeds or more of both cells."
    significant = table[table["p_holm"] < result.alpha]
    tested = int(table["p_holm"].notna().sum())
    if significant.empty:
        return text + (rf" None of the {tested} tested per-class differences passes Holm's correction across the "
                       rf"classes of its comparison ($\alpha={result.alpha:g}$).")
    listed = "; ".join(rf"{escape(r['question'])}: {escape(r['class'])} {_pp(r['delta'])}"
                       for _, r in significant.iterrows())
    verb = "passes" if len(significant) == 1 else "pass"
    return text + (rf" {len(significant)} of the {tested} tested per-class differences {verb} Holm's correction across "
                   rf"the classes of its comparison ($\alpha={result.alpha:g}$): {listed}.")



def _upper_body_error_share(result: AnalysisResult, table: pd.DataFrame) -> float | None:
    """The share of the upper-body classes in the test errors of the runs of the compared cells; None when the
    classes are not Fashion-MNIST's or there is no error."""
    runs = result.class_runs
    if not set(UPPER_BODY) <= set(runs["class"]):
        return None
    compared = {(p, c) for p, a, b in table[["preset", "cell_a", "cell_b"]].itertuples(index=False) for c in (a, b)}
    mask = [(p, str(c)) in compared for p, c in zip(runs["preset"], runs["cell"])]
    errors = (runs["images"] - runs["correct"])[mask]
    upper = errors[runs.loc[mask, "class"].isin(UPPER_BODY)]
    return None if errors.sum() == 0 else float(upper.sum() / errors.sum())


# ------------------------------------------------------------------------------------------ one preset's cells
MODELS = "stage1_models"


def preset_class_accuracy(result: AnalysisResult, preset: str) -> pd.DataFrame:
    """Mean per-class test accuracy over the runs of each cell of `preset` with per-class results: one row per cell
    (in the cells' order) with ``cell``, ``n`` (its runs with per-class results), ``overall`` (their test accuracy
    from the same predictions) and one column per class (in class order); empty when there are none."""
    table = result.class_runs
    if table.empty:
        return pd.DataFrame()
    rows = table[table["preset"] == preset]
    order = list(dict.fromkeys(table["class"]))
    out = []
    for cell in result.cells.loc[result.cells["preset"] == preset, "cell"]:
        runs = rows[rows["cell"] == cell]
        if runs.empty:
            continue
        per_run = runs.groupby("run_dir")[["correct", "images"]].sum()
        means = runs.groupby("class")["accuracy"].mean()
        out.append({"cell": cell, "n": len(per_run), "overall": float((per_run["correct"] / per_run["images"]).mean()),
                    **{name: means.get(name, math.nan) for name in order}})
    return pd.DataFrame(out)


def model_name(result: AnalysisResult, cell: str) -> str:
    """How the prose names a cell of stage1_models: its model (ResNet-18, Plain-18, ...), else the cell label."""
    names = {RES_VS_PLAIN.a["model"]: RES_VS_PLAIN.name_a, RES_VS_PLAIN.b["model"]: RES_VS_PLAIN.name_b,
             **OTHER_MODELS}
    row = result.cells[(result.cells["preset"] == MODELS) & (result.cells["cell"] == cell)]
    model = row["model"].iloc[0] if "model" in row and len(row) else None
    return names.get(str(model), escape(cell))


def models_by_class(result: AnalysisResult) -> str:
    r"""The ``\readModelClasses`` paragraph: stage1_models class by class (``tables/models_per_class.tex``): which
    class each model finds hardest, and the class on which the models differ most against their overall spread.
    Per-class differences between the models are quoted, not tested. NA with fewer than two models."""
    table = preset_class_accuracy(result, MODELS)
    if len(table) < 2:
        return NA
    classes = [c for c in table.columns if c not in ("cell", "n", "overall")]
    names = [model_name(result, c) for c in table["cell"]]
    acc = table[classes]
    hardest = acc.idxmin(axis=1)
    lowest = acc.min(axis=1)
    spread = (acc.max() - acc.min()).sort_values(ascending=False, kind="stable")
    widest = spread.index[0]
    low, high = acc[widest].idxmin(), acc[widest].idxmax()
    overall = table["overall"]
    span = (rf"from {latex.pct(acc.at[low, widest])}\,\% ({names[low]}) to {latex.pct(acc.at[high, widest])}\,\% "
            rf"({names[high]}), a spread of {latex.pct(spread.iloc[0])}\,pp against "
            rf"{latex.pct(overall.max() - overall.min())}\,pp in overall test accuracy ({names[overall.idxmin()]} to "
            rf"{names[overall.idxmax()]})")
    start = r"Per class (Table~\ref{tab:models-per-class}), "
    if hardest.nunique() == 1 and hardest.iloc[0] == widest:
        text = (rf"{start}every model of \texttt{{{escape(MODELS)}}} finds {escape(widest)} hardest, and the models "
                rf"differ most on it: {span}.")
    else:
        if hardest.nunique() == 1:
            text = (rf"{start}every model of \texttt{{{escape(MODELS)}}} finds {escape(hardest.iloc[0])} hardest "
                    rf"({latex.pct(lowest.min())} to {latex.pct(lowest.max())}\,\%).")
        else:
            top = hardest.value_counts()
            text = (rf"{start}the hardest class of the models of \texttt{{{escape(MODELS)}}} is "
                    rf"{escape(top.index[0])} for {top.iloc[0]} of the {len(table)} models.")
        text += rf" They differ most on {escape(widest)}: {span}."
    seeds = "With one seed per model" if table["n"].max() == 1 else "Averaged over seeds"
    return text + rf" {seeds}, the per-class differences between models are quoted, not tested."


# ------------------------------------------------------------------------------------------ why these classes
def confusion_similarity(result: AnalysisResult) -> str:
    r"""The ``\readConfusionSimilarity`` sentences: whether the confusion cell confuses the classes whose mean
    training images are alike (Mantel test over the class pairs), what Shirt's mean image is most alike, and where
    the most confused pair ranks by that likeness. NA without the confusion cell or the training images."""
    r, similarity = result.classes, result.class_similarity
    if r is None or similarity is None or similarity.shape != r.confusion.shape:
        return NA
    pairs = pair_confusion(r.confusion)
    rho, p = mantel(similarity, pairs)
    if math.isnan(rho):
        return NA
    names, n = list(r.class_names), len(r.class_names)
    text = ""
    if "Shirt" in names:
        shirt = names.index("Shirt")
        alike = [j for j in np.argsort(-similarity[shirt], kind="stable") if j != shirt][:3]
        first, *rest = alike
        text = (rf"On the training images, the mean image of Shirt is most alike that of {escape(names[first])} "
                rf"($r={similarity[shirt, first]:.3f}$), then " + latex.and_join(
                    [rf"{escape(names[j])} ({similarity[shirt, j]:.3f})" for j in rest]) + ". ")
    test = (rf"Spearman's $\rho={rho:.2f}$, {p_math(p)} from relabelling the classes, a Mantel "
            r"test~\citep{mantel1967detection}")
    n_pairs = n * (n - 1) // 2
    if p < result.alpha:
        text += (rf"Across the {n_pairs} pairs of classes, the more alike two classes' mean images are, the "
                 rf"{'more' if rho > 0 else 'less'} often \confCell{{}} confuses them ({test}).")
    else:
        text += (rf"Across the {n_pairs} pairs of classes, how often \confCell{{}} confuses two classes is not "
                 rf"related beyond chance to how alike their mean images are ({test}).")
    flat = upper_pairs(pairs)
    if flat.max() > 0:
        iu = np.triu_indices(n, 1)
        k = int(np.argmax(flat))
        i, j = iu[0][k], iu[1][k]
        rank = int((upper_pairs(similarity) > similarity[i, j]).sum()) + 1
        text += (rf" Its most confused pair, {escape(names[i])} and {escape(names[j])} "
                 rf"({latex.pct(pairs[i, j], 1)}\,\% of their test images, the two directions averaged), is the "
                 rf"{'most alike' if rank == 1 else latex.ordinal(rank) + ' most alike'} of the {n_pairs} by "
                 "mean image.")
    return text
