r"""report/macros.tex: every number the prose quotes, taken from the analysis tables.

Every macro the prose may use is always defined: when its data is not in the analysed sweeps it expands
to ``\NA`` ("n/a"), so the report builds from any sweep. Four kinds:

* named macros (overview, setup, best cell, confusion, dead neurons, and the study's key cells such as
  ``\accResNetNine``), see :func:`build_macros`;
* per preset ``\<preset>Best``, ``\<preset>BestAcc``, ``\<preset>Ref``, ... (``stage2_skip`` -> ``\stageTwoSkip...``)
  for every analysed preset and every study stage, and ``\ifpreset{name}{yes}{no}``;
* ``\result{preset}{cell}{field}`` for any number of the cell tables (field: test_acc, val_acc, delta, p, n,
  params, flops, time, verdict);
* the discussion's sentences ``\read...`` (:mod:`fmnist.analysis.evidence`; empty when their data is missing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.collect import COMPLETED, UNFINISHED, run_config, select
from fmnist.analysis.latex import NA, escape
from fmnist.analysis.evidence import compare, evidence_macros, find_cell, primary
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import TEST_NAME
from fmnist.study import stage_presets

#: Key cells of the study quoted by name: macro stem -> (preset, cell parameters).
NAMED_CELLS: dict[str, tuple[str, dict[str, Any]]] = {
    "ResNetNine": ("stage1_models", {"model": "resnet9"}),
    "ResNetEighteen": ("stage1_models", {"model": "resnet18"}),
    "ResNetFifty": ("stage1_models", {"model": "resnet50"}),
    "PreActResNetEighteen": ("stage1_models", {"model": "preact_resnet18"}),
    "PlainEighteen": ("stage1_models", {"model": "plain18"}),
    "VGGEleven": ("stage1_models", {"model": "vgg11"}),
    "Skip": ("stage2_skip", {"model.skip": True}),
    "NoSkip": ("stage2_skip", {"model.skip": False}),
}
#: Pairwise comparisons quoted by name: stem -> (preset, cell a, cell b); Welch's t-test on a vs b.
NAMED_PAIRS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "ResVsPlainEighteen": ("stage1_models", {"model": "resnet18"}, {"model": "plain18"}),
    "SkipVsNoSkip": ("stage2_skip", {"model.skip": True}, {"model.skip": False}),
    "DepthThirtyFourVsEighteen": ("stage1_capacity", {"model": "resnet34", "model.width": 64},
                                  {"model": "resnet18", "model.width": 64}),
    "WidthSixtyFourVsSixteen": ("stage1_capacity", {"model": "resnet18", "model.width": 64},
                                {"model": "resnet18", "model.width": 16}),
}
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu")


def _overview(result: AnalysisResult) -> dict[str, str]:
    runs, cells = result.collection.runs, result.cells
    metric = str(cells["metric"].iloc[0])
    m = {
        "nRuns": str(len(runs)), "nCompleted": str(int((runs["status"] == COMPLETED).sum())),
        "nFailed": str(int((runs["status"] == "failed").sum())),
        "nUnfinished": str(int(runs["status"].isin([*UNFINISHED, "unreadable"]).sum())),
        "nPresets": str(len(result.collection.swept)), "nCells": str(len(cells)),
        "presetList": ", ".join(rf"\texttt{{{escape(p)}}}" for p in result.collection.swept),
        "primaryMetric": "test accuracy" if metric == "test_acc" else "best validation accuracy",
        "sigAlpha": f"{result.alpha:g}", "sigTest": escape(TEST_NAME),
        "notAnalysedList": ", ".join(rf"\texttt{{{escape(p)}}}" for p in stage_presets()
                                     if p not in result.collection.swept) or "none",
    }
    done = cells[cells["n"] > 0]
    if not done.empty:
        best = done.loc[done[f"{metric}_mean"].idxmax()]
        m.update(bestPreset=rf"\texttt{{{escape(best['preset'])}}}", bestCell=escape(best["cell"]),
                 bestAcc=latex.pct(best[f"{metric}_mean"]), bestStd=latex.pct(best[f"{metric}_std"]),
                 bestN=str(int(best["n"])))
    return m


def _setup(result: AnalysisResult) -> dict[str, str]:
    """The reference configuration: the reference cell that most presets share (the study's base ResNet9 run,
    the reference of eight presets; not stage1_capacity's ResNet18), described from its first run."""
    ref = result.cells[result.cells["is_reference"] & (result.cells["n"] > 0)]
    if ref.empty:
        return {}
    runs = result.collection.completed
    firsts = [runs[(runs["preset"] == c["preset"]) & (runs["cell"] == c["cell"])].iloc[0] for _, c in ref.iterrows()]
    models = [str(r.get("model", "")) for r in firsts]
    run = firsts[models.index(Counter(models).most_common(1)[0][0])]
    cfg = run_config(run["run_dir"])

    def get(key: str) -> str:
        value = select(cfg, key)
        return NA if value is None else escape(latex.number(value) if isinstance(value, (int, float)) else value)

    return {
        "setupModel": escape(run.get("model", NA)), "setupEpochs": get("trainer.epochs"),
        "setupBatch": get("trainer.batch_size"), "setupOptimizer": escape(run.get("optimizer", NA)),
        "setupLR": get("optimizer.lr"), "setupMomentum": get("optimizer.momentum"),
        "setupWD": get("optimizer.weight_decay"), "setupScheduler": escape(run.get("scheduler", NA)),
        "setupAugment": escape(run.get("augment", NA)), "setupNorm": escape(run.get("norm", NA)),
        "setupActivation": escape(run.get("activation", NA)), "setupLabelSmoothing": get("trainer.label_smoothing"),
        "setupValFraction": get("data.val_fraction"), "setupSubset": get("data.subset"),
        "setupTrain": latex.number(run["n_train"]), "setupVal": latex.number(run["n_val"]),
        "setupTest": latex.number(run["n_test"]), "setupDevice": escape(run.get("device_name") or NA),
        "setupTorch": escape(run.get("torch_version") or NA),
        "setupCommit": escape(str(run.get("git_commit") or "n/a")[:10]),
    }


def _presets(result: AnalysisResult, prefixes: Mapping[str, str]) -> dict[str, str]:
    m: dict[str, str] = {}
    for preset, p in prefixes.items():
        cells = result.cells[result.cells["preset"] == preset]
        runs = result.collection.runs[result.collection.runs["preset"] == preset]
        done = cells[cells["n"] > 0]
        m.update({f"{p}{k}": NA for k in ("Cells", "Runs", "Completed", "Best", "BestAcc", "BestStd", "Ref",
                                          "RefAcc", "RefStd", "Worst", "WorstAcc", "NSig", "NCompared", "Seeds")})
        if cells.empty:
            continue
        metric = str(cells["metric"].iloc[0])
        ref = cells[cells["is_reference"]].iloc[0]
        compared = cells[cells["significant"].notna()]
        m.update({f"{p}Cells": str(len(cells)), f"{p}Runs": str(len(runs)),
                  f"{p}Completed": str(int((runs["status"] == COMPLETED).sum())),
                  f"{p}Ref": escape(ref["cell"]), f"{p}RefAcc": latex.pct(ref[f"{metric}_mean"]),
                  f"{p}RefStd": latex.pct(ref[f"{metric}_std"]),
                  f"{p}NSig": str(int(compared["significant"].astype(bool).sum())),
                  f"{p}NCompared": str(len(compared)), f"{p}Seeds": str(int(cells["n"].max()))})
        if not done.empty:
            best, worst = done.loc[done[f"{metric}_mean"].idxmax()], done.loc[done[f"{metric}_mean"].idxmin()]
            m.update({f"{p}Best": escape(best["cell"]), f"{p}BestAcc": latex.pct(best[f"{metric}_mean"]),
                      f"{p}BestStd": latex.pct(best[f"{metric}_std"]), f"{p}Worst": escape(worst["cell"]),
                      f"{p}WorstAcc": latex.pct(worst[f"{metric}_mean"])})
    return m


def _named(result: AnalysisResult) -> dict[str, str]:
    m: dict[str, str] = {}
    for stem, (preset, params) in NAMED_CELLS.items():
        cell = find_cell(result, preset, params)
        metric = None if cell is None else str(cell["metric"])
        m.update({f"acc{stem}": NA if cell is None else latex.pct(cell[f"{metric}_mean"]),
                  f"acc{stem}Std": NA if cell is None else latex.pct(cell[f"{metric}_std"]),
                  f"n{stem}": NA if cell is None else str(int(cell["n"])),
                  f"params{stem}": NA if cell is None else latex.count(cell["params_mean"]),
                  f"delta{stem}": NA if cell is None else latex.pp(cell["delta"]),
                  f"verdict{stem}": NA if cell is None else escape(cell["verdict"])})
    for stem, (preset, a, b) in NAMED_PAIRS.items():
        c = compare(result, preset, a, b, primary(result))
        m.update({f"diff{stem}": NA, f"p{stem}": NA, f"verdict{stem}": NA})
        if c is not None:
            m.update({f"diff{stem}": latex.pp(c.diff), f"p{stem}": latex.pvalue(c.p), f"verdict{stem}": NA
                      if np.isnan(c.p) else ("significant" if c.significant(result.alpha) else "within seed noise")})
    return m


def _confusion(result: AnalysisResult) -> dict[str, str]:
    keys = ("confPreset", "confCell", "confRuns", "confAcc", "worstClass", "worstClassAcc", "bestClass",
            "bestClassAcc", "topConfTrue", "topConfPred", "topConfRate", "secondConfTrue", "secondConfPred",
            "secondConfRate")
    m = {k: NA for k in keys}
    r = result.classes
    if r is None:
        return m
    acc = r.class_accuracy()
    worst, best = acc.loc[acc["mean"].idxmin()], acc.loc[acc["mean"].idxmax()]
    m.update(confPreset=rf"\texttt{{{escape(r.preset)}}}", confCell=escape(r.cell), confRuns=str(r.n_runs),
             confAcc=latex.pct(np.trace(r.confusion) / max(r.confusion.sum(), 1)),
             worstClass=escape(worst["class"]), worstClassAcc=latex.pct(worst["mean"]),
             bestClass=escape(best["class"]), bestClassAcc=latex.pct(best["mean"]))
    top = r.top_confusions(2)
    for i, prefix in enumerate(("topConf", "secondConf")):
        if len(top) > i:
            m.update({f"{prefix}True": escape(top.iloc[i]["true"]), f"{prefix}Pred": escape(top.iloc[i]["pred"]),
                      f"{prefix}Rate": latex.pct(top.iloc[i]["rate"], 1)})
    return m


def _dead(result: AnalysisResult) -> dict[str, str]:
    runs, layers = result.dead_runs, result.dead_layers
    m = {"deadRuns": "0", "deadMean": NA, "zeroMean": NA, "deadMaxLayer": NA, "deadMaxLayerFrac": NA}
    for act in ACTIVATIONS:
        m[latex.macro_name("dead", act)] = NA
        m[latex.macro_name("zero", act)] = NA
    if runs.empty:
        return m
    by_layer = layers.groupby("layer")["dead_fraction"].mean()
    m.update(deadRuns=str(len(runs)), deadMean=latex.pct(runs["dead_fraction"].mean()),
             zeroMean=latex.pct(runs["zero_fraction"].mean()), deadMaxLayer=rf"\texttt{{{escape(by_layer.idxmax())}}}",
             deadMaxLayerFrac=latex.pct(by_layer.max(), 1))
    for act, g in runs.groupby("activation"):
        m[latex.macro_name("dead", act)] = latex.pct(g["dead_fraction"].mean())
        m[latex.macro_name("zero", act)] = latex.pct(g["zero_fraction"].mean())
    return m


def _speed(result: AnalysisResult) -> dict[str, str]:
    """Training time of the analysed runs (the study's GPU time: a run that reused the results of an identical
    run counts once, as `trainReused`) and seconds per epoch of each Stage-1 model."""
    runs = result.collection.completed
    stage1 = {stem: params for stem, (preset, params) in NAMED_CELLS.items() if preset == "stage1_models"}
    m = {"trainHours": NA, "trainEpochs": NA, "trainDevices": NA, "trainReused": "0"} | {
        f"secPerEpoch{stem}": NA for stem in stage1}
    if runs.empty or "train_time_s" not in runs:
        return m
    seconds = pd.to_numeric(runs["train_time_s"], errors="coerce")
    epochs = pd.to_numeric(runs.get("epochs_completed"), errors="coerce")
    trained = runs["reused_from"].isna() if "reused_from" in runs else pd.Series(True, index=runs.index)
    devices = sorted({str(d) for d in runs.get("device_name", pd.Series(dtype=str)).dropna()})
    m.update(trainHours=f"{seconds[trained].sum() / 3600:.2f}", trainEpochs=latex.number(int(epochs[trained].sum())),
             trainDevices=escape(", ".join(devices) or NA), trainReused=latex.number(int((~trained).sum())))
    per_epoch = seconds / epochs
    for stem, params in stage1.items():
        cell = find_cell(result, "stage1_models", params)
        if cell is not None:
            mask = (runs["preset"] == "stage1_models") & (runs["cell"] == cell["cell"])
            m[f"secPerEpoch{stem}"] = f"{per_epoch[mask].mean():.2f}"
    return m


def _operations(result: AnalysisResult) -> dict[str, str]:
    """How the runs ran, for the troubleshooting note (``\\readOperations``): how many replayed CUDA graphs or fell
    back to eager and why, the numeric precision, how many resumed from a checkpoint. A run that copied an
    identical run is not counted again."""
    runs = result.collection.completed
    if "reused_from" in runs:
        runs = runs[runs["reused_from"].isna()]
    if runs.empty:
        return {"readOperations": ""}
    graphs = runs["cuda_graphs"].dropna().astype(str) if "cuda_graphs" in runs else pd.Series(dtype=str)
    failed = graphs[graphs.str.startswith("failed")]
    captured = int((graphs == "captured").sum())
    text = f"Of the {len(runs)} trained runs, {captured} replayed their training step as CUDA graphs"
    if len(failed):
        reason = failed.value_counts().index[0].removeprefix("failed:").strip()
        text += (f" and {len(failed)} fell back to eager training after a failed capture (most often: "
                 rf"\texttt{{{escape(reason[:120])}}})")
    text += "."
    if "precision" in runs and runs["precision"].notna().any():
        counts = runs["precision"].dropna().value_counts()
        text += " Numeric precision: " + ", ".join(f"{escape(k)} ({v} runs)" for k, v in counts.items()) + "."
    resumed = int(runs["resumed_from_epoch"].notna().sum()) if "resumed_from_epoch" in runs else 0
    text += (f" {resumed} {'run was' if resumed == 1 else 'runs were'} interrupted (preemption, a session's time "
             "limit) and resumed from the last checkpoint.")
    return {"readOperations": text}


#: What the report says of the runs' test set (pipeline.test_set_kind).
DATA_SPLIT = {
    "official": r"The runs' test set is the official Fashion-MNIST test set (its 10{,}000 images and labels, checked "
                r"by content), so the study ran on the official 60{,}000/10{,}000 split, which "
                r"\texttt{python -m fmnist.data.prepare} builds from the raw files, and its accuracies compare with "
                r"published ones.",
    "other": r"The runs' test set is not the official Fashion-MNIST test set (checked by content): the runs used a "
             r"re-split, so their accuracies do not compare directly with published ones.",
    "unlabelled": "The runs' test set has no labels, so no test accuracy could be measured.",
    None: "The data folder was not available to the analysis, so the test set was not checked.",
}


def _data_split(result: AnalysisResult) -> dict[str, str]:
    return {"readDataSplit": DATA_SPLIT[getattr(result, "test_set", None)]}


def preset_prefixes(result: AnalysisResult) -> dict[str, str]:
    """Macro prefix of every analysed preset and every study stage (stage2_skip -> stageTwoSkip)."""
    names = list(dict.fromkeys([*stage_presets(), *result.collection.swept]))
    return {name: latex.macro_name(name) for name in names}


def _results(result: AnalysisResult) -> list[str]:
    lines = []
    for _, c in result.cells.iterrows():
        fields = {"test_acc": latex.pct_pm(c["test_acc_mean"], c["test_acc_std"]),
                  "val_acc": latex.pct_pm(c["best_val_acc_mean"], c["best_val_acc_std"]),
                  "delta": latex.pp(c["delta"]), "p": latex.pvalue(c["p_holm"]), "n": str(int(c["n"])),
                  "params": latex.count(c["params_mean"]), "flops": latex.count(c["flops_mean"]),
                  "time": latex.seconds(c["train_time_s_mean"], c["train_time_s_std"]), "verdict": escape(c["verdict"])}
        key = f"{c['preset']}}}{{{c['cell']}"
        lines += [rf"\resultdef{{{key}}}{{{f}}}{{{v}}}" for f, v in fields.items()]
    return lines


def build_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX value of every named macro (n/a where the data is missing)."""
    prefixes = preset_prefixes(result)
    return {**_setup_defaults(), **_overview(result), **_setup(result), **_presets(result, prefixes),
            **_named(result), **_confusion(result), **_dead(result), **_speed(result), **_operations(result),
            **_data_split(result), **evidence_macros(result)}


def _setup_defaults() -> dict[str, str]:
    keys = ("Model", "Epochs", "Batch", "Optimizer", "LR", "Momentum", "WD", "Scheduler", "Augment", "Norm",
            "Activation", "LabelSmoothing", "ValFraction", "Subset", "Train", "Val", "Test", "Device", "Torch",
            "Commit")
    return {f"setup{k}": NA for k in keys} | {f"best{k}": NA for k in ("Preset", "Cell", "Acc", "Std", "N")}


def macros_tex(result: AnalysisResult) -> str:
    """The text of report/macros.tex."""
    lines = ["% Generated by fmnist.analysis (python analyze.py ... report=true) from the analysed sweeps:",
             "% every number the report quotes. Do not edit; rerun the analysis.",
             r"\providecommand{\NA}{n/a}",
             r"\newcommand{\resultdef}[4]{\expandafter\def\csname fmres@#1/#2/#3\endcsname{#4}}",
             r"\newcommand{\result}[3]{\ifcsname fmres@#1/#2/#3\endcsname\csname fmres@#1/#2/#3\endcsname"
             r"\else\NA\fi}",
             r"\newcommand{\ifpreset}[3]{\ifcsname fmpreset@#1\endcsname#2\else#3\fi}"]
    lines += [rf"\expandafter\def\csname fmpreset@{p}\endcsname{{}}" for p in result.collection.swept]
    lines += [rf"\newcommand{{\{name}}}{{{value}}}" for name, value in build_macros(result).items()]
    lines += _results(result)
    return "\n".join(lines) + "\n"
