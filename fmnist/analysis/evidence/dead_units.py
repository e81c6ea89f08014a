"""Dead units: each trained network counted once, the runs that compare one setting with all else equal, the
readings by activation (rank correlation with accuracy) and by learning rate, and the cells that lost the most.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import _test, metric_name, primary
from fmnist.analysis.evidence.wording import _p, p_math
from fmnist.analysis.latex import NA
from fmnist.analysis.pipeline import AnalysisResult


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
    presets = _sweeping(result, key)
    if not dead.empty and (presets or not fallback):
        dead = dead[dead["preset"].isin(presets)]
    return distinct_dead_runs(result, dead)


def _sweeping(result: AnalysisResult, key: str) -> list[str]:
    """The analysed presets that sweep `key` (or its object's class: activation._target_)."""
    return [p for p, keys in result.collection.swept.items() if key in keys or f"{key}._target_" in keys]


def dead_runs_named(result: AnalysisResult, key: str, name: str) -> tuple[str, str]:
    """How a caption names the runs :func:`dead_runs_sweeping` (with its fallback) picks for `key` (`name`: how the
    prose names it), and what differs between them: ('the runs of the presets that sweep the activation', 'all else
    equal'), or without such a preset ('all the analysed runs', 'no preset sweeps the activation, so their other
    settings may differ')."""
    if _sweeping(result, key):
        return f"the runs of the presets that sweep {name}", "all else equal"
    return "all the analysed runs", f"no preset sweeps {name}, so their other settings may differ"


def distinct_dead_layers(result: AnalysisResult, runs: pd.DataFrame) -> pd.DataFrame:
    """``result.dead_layers`` of the runs `runs` (from :func:`distinct_dead_runs`) keeps."""
    return result.dead_layers[result.dead_layers["run_dir"].isin(runs["run_dir"])]


def most_dead_layer(layers: pd.DataFrame) -> tuple[str, float] | None:
    r"""The layer of `layers` (rows of ``result.dead_layers``) with the highest mean dead fraction over its runs, as
    LaTeX (``\texttt{stem.2}``, with the model when the rows span several: a layer name of one model is not the
    same layer in another), and that fraction; None when no unit is dead."""
    if layers.empty or "layer" not in layers:
        return None
    several = "model" in layers and layers["model"].nunique() > 1
    by_layer = layers.groupby(["model", "layer"] if several else ["layer"])["dead_fraction"].mean()
    if not len(by_layer) or not by_layer.max() > 0:
        return None
    key = by_layer.idxmax()
    name = rf"\texttt{{{latex.escape(key[1] if several else key)}}}"
    return (name + f" of {latex.escape(key[0])}" if several else name), float(by_layer.max())


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
    if not (dead["dead_fraction"] > 0).any():  # nothing to test: no unit died at any rate
        return (rf"With ReLU, no unit is dead at any of the {len(lrs)} learning rates, {latex.number(lrs[0])} to "
                rf"{latex.number(lrs[-1])} (all schedules pooled).")
    if c.a == 0 and c.b == 0:  # nothing to test: no unit died at either end
        return (rf"With ReLU, no unit is dead at learning rate {latex.number(lrs[-1])} or at {latex.number(lrs[0])} "
                "(all schedules pooled).")
    return (rf"With ReLU, {latex.pct(c.a)}\,\% of the units are dead at learning rate {latex.number(lrs[-1])} against "
            rf"{latex.pct(c.b)}\,\% at {latex.number(lrs[0])} (all schedules pooled, {_p(c)})" + (
                "." if math.isnan(c.p) else
                ": not a significant difference." if not c.significant(result.alpha) else
                ": large steps kill units." if c.diff > 0 else ": fewer units die at the larger learning rate."))


def dead_concentration(result: AnalysisResult, floor: float = 0.01, top: int = 3) -> str:
    r"""Where the dead units are: the cells whose networks lost the most units (mean dead fraction over the seeds
    above `floor`, at most `top`, each trained network once), each against its preset's reference cell (Welch's p,
    a single test) and with the layer of that cell that lost the most. Layers are named per cell, never pooled by
    name across cells: ``stem.2`` of ResNet-50 and of ResNet-18 are different layers."""
    dead = result.dead_runs
    if dead.empty or not {"preset", "cell", "dead_fraction"} <= set(dead):
        return ""
    means = distinct_dead_runs(result).groupby(["preset", "cell"], sort=False)["dead_fraction"].mean()
    worst = means[means > floor].sort_values(ascending=False, kind="stable").head(top)
    if worst.empty:
        return "" if not means.max() > 0 else rf" No cell lost more than {latex.pct(floor, 0)}\,\% of its units."
    refs = result.cells[result.cells["is_reference"]].set_index("preset")["cell"] if len(result.cells) else {}
    parts = []
    for (preset, cell), mean in worst.items():
        runs = dead[(dead["preset"] == preset) & (dead["cell"] == cell)]
        text = rf"{latex.escape(cell)} of \texttt{{{latex.escape(preset)}}}, {latex.pct(mean)}\,\% ("
        text += latex.plural(len(runs), "seed")
        ref = refs.get(preset)
        if ref is not None and ref != cell:
            ref_values = dead.loc[(dead["preset"] == preset) & (dead["cell"] == ref), "dead_fraction"]
            c = _test(runs["dead_fraction"].to_numpy(float), ref_values.to_numpy(float))
            if c is not None:
                verdict = ("" if math.isnan(c.p) else ", within seed noise" if not c.significant(result.alpha)
                           else f", {'more' if c.diff > 0 else 'fewer'} than the reference")
                text += rf"; reference {latex.escape(ref)}: {latex.pct(c.b)}\,\%, {_p(c)}{verdict}"
        text += ")"
        most = most_dead_layer(distinct_dead_layers(result, runs))
        if most:
            text += rf", most in {most[0]} ({latex.pct(most[1], 1)}\,\% of its units)"
        parts.append(text)
    rest = means.drop(worst.index)
    tail = rf"; every other cell lost at most {latex.pct(rest.max())}\,\%" if len(rest) else ""
    lead = "The cell that lost the most units" if len(parts) == 1 else "The cells that lost the most units"
    return f" {lead}: " + "; ".join(parts) + tail + "."
