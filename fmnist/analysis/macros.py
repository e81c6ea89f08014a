r"""report/macros.tex: every number the prose quotes, taken from the analysis tables.

Every macro the prose may use is always defined: when its data is not in the analysed sweeps a number
expands to ``\NA`` ("n/a") and a sentence to nothing, so the report builds from any sweep. A count of things
carries its noun ("1 seed", "3 seeds"). Five kinds:

* named macros (overview, setup, best cell, confusion, seed ensembles, dead neurons, speed, and the study's key
  cells such as ``\accResNetNine``), see :func:`build_macros`;
* per preset ``\<preset>Best``, ``\<preset>BestAcc``, ``\<preset>Ref``, ..., ``\<preset>Summary`` (``stage2_skip``
  -> ``\stageTwoSkip...``) for every analysed preset and every study stage;
* ``\result{preset}{cell}{field}`` for any number of the cell tables (field: test_acc, val_acc, delta, p, n,
  params, flops, time, verdict; LaTeX specials but ``_`` written as in text, e.g. ``\%``);
* flags: ``\ifdata{name}{yes}{no}`` (setup, commit, best, confusion, confpooled, ensembles, dead, speed, tested,
  untested, multiseed, keyed),
  ``\ifpreset{preset}{yes}{no}``, ``\iffigure{figure}{yes}{no}``, so that the text names only what exists;
* the sentences ``\read...``, ``\sum...`` (:mod:`fmnist.analysis.evidence`; empty when their data is missing).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from fmnist.analysis import latex
from fmnist.analysis.collect import COMPLETED, DUPLICATE, UNFINISHED, run_config, run_target, select
from fmnist.analysis.evidence import (best_cell, compare, dead_concentration, dead_runs_named, dead_runs_sweeping,
                                      distinct_dead_runs, ensemble_macros, evidence_macros, find_cell,
                                      key_family_p, keyed, metric_name, named_pairs, preset_summary, primary,
                                      run_source, untested_count, verdict)
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult, DataCheck
from fmnist.analysis.stats import TEST_NAME, selection_metric
from fmnist.data.resplit import OFFICIAL_RESPLIT_FINGERPRINT
from fmnist.study import expand_grid, preset_params, stage_presets

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
#: The pairwise comparisons quoted by name (evidence.named_pairs): diff<stem>, p<stem>, verdict<stem>.
PAIR_STEMS = ("ResVsPlainEighteen", "SkipVsNoSkip", "Depth", "Width")
#: How the prose names the built-in activations (activation_names: every option the runs chose).
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU"}


def _counted_runs(result: AnalysisResult) -> pd.DataFrame:
    """The analysed runs, each (preset, cell, seed) once: a duplicate found in a second sweep dir is not another
    run, so the report's run counts add up to completed + failed + unfinished."""
    runs = result.collection.runs
    return runs[runs["status"] != DUPLICATE]


def _overview(result: AnalysisResult) -> dict[str, str]:
    runs, cells, grids = _counted_runs(result), result.cells, study_grids()
    m = {
        "nRuns": plural(len(runs), "run"), "nCompleted": str(int((runs["status"] == COMPLETED).sum())),
        "nFailed": str(int((runs["status"] == "failed").sum())),
        "nUnfinished": str(int(runs["status"].isin([*UNFINISHED, "unreadable"]).sum())),
        "nPresets": plural(len(result.collection.swept), "preset"), "nCells": plural(len(cells), "cell"),
        "presetList": ("the preset " if len(result.collection.swept) == 1 else "the presets ")
        + ", ".join(rf"\texttt{{{escape(p)}}}" for p in result.collection.swept),
        "primaryMetric": metric_name(result), **_seeds_per_cell(result, grids),
        "sigAlpha": f"{result.alpha:g}", "sigTest": escape(TEST_NAME),
        "notAnalysedList": ", ".join(rf"\texttt{{{escape(p)}}}" for p in stage_presets()
                                     if p not in result.collection.swept) or "none",
        "incompleteList": _incomplete_presets(result, grids) or "none", "studyShare": _study_share(result, grids),
    }
    best = best_cell(result)
    if best is not None:
        metric = primary(result)
        m.update(bestPreset=rf"\texttt{{{escape(best['preset'])}}}", bestCell=escape(best["cell"]),
                 bestAcc=latex.pct(best[f"{metric}_mean"]), bestStd=latex.pct(best[f"{metric}_std"]),
                 bestN=plural(best["n"], "seed"))
    return m


def study_grids() -> dict[str, list[list[str]]]:
    """Each study preset's jobs (conf/experiment/<preset>.yaml's whole grid, seeds included), as override lists."""
    return {p: expand_grid(preset_params(p)) for p in stage_presets()}


def _incomplete_presets(result: AnalysisResult, grids: dict[str, list[list[str]]]) -> str:
    """'\texttt{stage2_lr} (17 of its 20 cells, 17 of its 60 runs)' for each analysed study preset with fewer cells
    or runs than its grid (conf/experiment/<preset>.yaml; a cell is a grid point, seeds aside): a partly run study
    says what its tables lack."""
    items = []
    runs = result.collection.runs
    for preset, jobs in grids.items():
        if preset not in result.collection.swept:
            continue
        grid = {tuple(sorted(o for o in job if o.split("=", 1)[0] != "seed")) for job in jobs}
        found = int((result.cells["preset"] == preset).sum())
        ran = int((runs["preset"] == preset).sum())
        lacking = ([f"{found} of its {len(grid)} cells"] if found < len(grid) else []) + (
            [f"{ran} of its {len(jobs)} runs"] if ran < len(jobs) else [])
        if lacking:
            items.append(rf"\texttt{{{escape(preset)}}} ({', '.join(lacking)})")
    return ", ".join(items)


def _study_share(result: AnalysisResult, grids: dict[str, list[list[str]]]) -> str:
    r"""', 42 of the 192 runs the study plans (...)' when study presets are analysed and the study (every stage
    preset's whole grid, seeds included) has more runs than they hold; else empty: the abstract says how much of
    the planned study a partial report rests on."""
    if not any(p in result.collection.swept for p in grids):
        return ""
    planned = sum(len(jobs) for jobs in grids.values())
    ran = int(result.collection.runs["preset"].isin(list(grids)).sum())
    return (rf", {ran} of the {planned} runs the study plans (Section~\ref{{sec:results}} names what is missing)"
            if ran < planned else "")


def _seeds_per_cell(result: AnalysisResult, grids: dict[str, list[list[str]]]) -> dict[str, str]:
    """``seedsPerCell``: '3 seeds' when every cell ran that many seeds, else '1--3 seeds' (failed runs count: they
    were run), plus e.g. ' so far (3 planned)' when a study preset's grid has more seeds than a cell ran, and how many
    of them completed when some did not ('2 seeds (0--2 of them completed)'); ``seedsPlanned``: the seeds of the
    study presets' grids ('3 seeds'), else the seeds that ran."""
    runs = result.collection.runs
    counts = runs.groupby(["preset", "cell"])["seed"].nunique() if "seed" in runs else pd.Series(dtype=int)
    if counts.empty:
        return {"seedsPerCell": NA, "seedsPlanned": NA}
    low, high = int(counts.min()), int(counts.max())
    ran = plural(low, "seed") if low == high else f"{low}--{high} seeds"
    planned = max((len({o for job in jobs for o in job if o.startswith("seed=")})
                   for p, jobs in grids.items() if p in result.collection.swept), default=0)
    notes = [f"{planned} planned"] if low < planned else []
    if "status" in runs:  # a cell whose seeds did not all complete has fewer results than seeds
        done = runs[runs["status"] == COMPLETED].groupby(["preset", "cell"])["seed"].nunique()
        done = done.reindex(counts.index, fill_value=0)
        if not done.equals(counts):
            least, most = int(done.min()), int(done.max())
            notes.append("none completed" if most == 0 else
                         f"{least if least == most else f'{least}--{most}'} of them completed")
    return {"seedsPerCell": ran + (" so far" if low < planned else "") + (f" ({'; '.join(notes)})" if notes else ""),
            "seedsPlanned": plural(planned, "seed") if planned else ran}


def _setup(result: AnalysisResult) -> dict[str, str]:
    """The reference configuration: the reference cell that most presets share (the study's base ResNet9 run,
    the reference of most presets; not stage1_capacity's ResNet18), described from its first run."""
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
        return _text(latex.number(value) if isinstance(value, (int, float)) else value)

    def field(name: str) -> str:
        return _text(run.get(name))

    return {
        "setupModel": field("model"), "setupEpochs": plural(select(cfg, "trainer.epochs"), "epoch"),
        "setupBatch": get("trainer.batch_size"), "setupOptimizer": field("optimizer"),
        "setupLR": get("optimizer.lr"), "setupMomentum": get("optimizer.momentum"),
        "setupWD": get("optimizer.weight_decay"), "setupScheduler": field("scheduler"),
        "setupAugment": field("augment"), "setupNorm": field("norm"),
        "setupActivation": field("activation"), "setupLabelSmoothing": get("trainer.label_smoothing"),
        "setupValFraction": get("data.val_fraction"), "setupSubset": get("data.subset"),
        "setupTrain": latex.thousands(run.get("n_train")), "setupVal": latex.thousands(run.get("n_val")),
        "setupTest": latex.thousands(run.get("n_test")), "setupDevice": field("device_name"),
        "setupTorch": field("torch_version"),
        "setupCommit": NA if latex.missing(run.get("git_commit")) else escape(str(run["git_commit"])[:10]),
    }


def _text(value: Any) -> str:
    """A value as LaTeX text: escaped, n/a when missing or empty."""
    return NA if latex.missing(value) or value == "" else escape(value)


#: The macros of each preset: \<prefix><field> (Summary, a sentence, last).
PRESET_FIELDS = ("Cells", "Runs", "Completed", "Best", "BestAcc", "BestStd", "Ref", "RefAcc", "RefStd", "Worst",
                 "WorstAcc", "NSig", "NCompared", "Seeds", "Summary")


def _presets(result: AnalysisResult, prefixes: Mapping[str, str]) -> dict[str, str]:
    m: dict[str, str] = {}
    metric = primary(result)
    for preset, p in prefixes.items():
        cells = result.cells[result.cells["preset"] == preset]
        runs = _counted_runs(result)[lambda r: r["preset"] == preset]
        done = cells[(cells["n"] > 0) & cells[f"{metric}_mean"].notna()] if len(cells) else cells
        m.update({f"{p}{k}": NA for k in PRESET_FIELDS[:-1]})
        m[f"{p}Summary"] = ""
        if cells.empty:
            continue
        ref = cells[cells["is_reference"]].iloc[0]
        compared = cells[cells["significant"].notna()]
        m.update({f"{p}Cells": plural(len(cells), "cell"), f"{p}Runs": plural(len(runs), "run"),
                  f"{p}Completed": str(int((runs["status"] == COMPLETED).sum())),
                  f"{p}Ref": escape(ref["cell"]), f"{p}RefAcc": latex.pct(ref[f"{metric}_mean"]),
                  f"{p}RefStd": latex.pct(ref[f"{metric}_std"]),
                  f"{p}NSig": str(int(compared["significant"].astype(bool).sum())),
                  f"{p}NCompared": str(len(compared)), f"{p}Seeds": plural(cells["n"].max(), "seed"),
                  f"{p}Summary": preset_summary(result, preset).replace(NA, "")})
        chosen_by = f"{selection_metric(result.cells)}_mean"  # validation picks them, as evidence.best_cell
        done = done[done[chosen_by].notna()]
        if not done.empty:
            best, worst = done.loc[done[chosen_by].idxmax()], done.loc[done[chosen_by].idxmin()]
            m.update({f"{p}Best": escape(best["cell"]), f"{p}BestAcc": latex.pct(best[f"{metric}_mean"]),
                      f"{p}BestStd": latex.pct(best[f"{metric}_std"]), f"{p}Worst": escape(worst["cell"]),
                      f"{p}WorstAcc": latex.pct(worst[f"{metric}_mean"])})
    return m


def _named(result: AnalysisResult) -> dict[str, str]:
    m: dict[str, str] = {}
    metric = primary(result)
    for stem, (preset, params) in NAMED_CELLS.items():
        cell = find_cell(result, preset, params)
        m.update({f"acc{stem}": NA if cell is None else latex.pct(cell[f"{metric}_mean"]),
                  f"acc{stem}Std": NA if cell is None else latex.pct(cell[f"{metric}_std"]),
                  f"n{stem}": NA if cell is None else plural(cell["n"], "seed"),
                  f"params{stem}": NA if cell is None else latex.count(cell["params_mean"]),
                  f"delta{stem}": NA if cell is None else latex.pp(cell["delta"]),
                  f"verdict{stem}": NA if cell is None else escape(cell["verdict"])})
    pairs = named_pairs(result)
    for stem in PAIR_STEMS:
        pair = pairs.get(stem)
        c = None if pair is None else compare(result, pair.preset, pair.a, pair.b, metric)
        m.update({f"diff{stem}": NA, f"p{stem}": NA, f"verdict{stem}": NA} if c is None else
                 {f"diff{stem}": latex.pp(c.diff), f"p{stem}": latex.pvalue(c.p),
                  f"verdict{stem}": verdict(c, result.alpha)})
    return m


def _confusion(result: AnalysisResult) -> dict[str, str]:
    """The confusion cell. Its accuracy is the cell's mean over seeds, the number its preset's table shows."""
    keys = ("confPreset", "confCell", "confRuns", "confAcc", "worstClass", "worstClassAcc", "bestClass",
            "bestClassAcc", "topConfTrue", "topConfPred", "topConfRate", "secondConfTrue", "secondConfPred",
            "secondConfRate")
    m = {k: NA for k in keys}
    r = result.classes
    if r is None:
        return m
    acc = r.class_accuracy()
    worst, best = acc.loc[acc["mean"].idxmin()], acc.loc[acc["mean"].idxmax()]
    cell = result.cells[(result.cells["preset"] == r.preset) & (result.cells["cell"] == r.cell)]
    m.update(confPreset=rf"\texttt{{{escape(r.preset)}}}", confCell=escape(r.cell),
             confRuns=plural(r.n_runs, "seed"),
             confAcc=latex.pct(cell[f"{primary(result)}_mean"].iloc[0]) if len(cell) else NA,
             worstClass=escape(worst["class"]), worstClassAcc=latex.pct(worst["mean"]),
             bestClass=escape(best["class"]), bestClassAcc=latex.pct(best["mean"]))
    top = r.top_confusions(2)
    for i, prefix in enumerate(("topConf", "secondConf")):
        if len(top) > i:
            m.update({f"{prefix}True": escape(top.iloc[i]["true"]), f"{prefix}Pred": escape(top.iloc[i]["pred"]),
                      f"{prefix}Rate": latex.pct(top.iloc[i]["rate"], 1)})
    return m


def _dead(result: AnalysisResult) -> dict[str, str]:
    """Dead units and sparsity pooled over the analysed runs, each trained network once (a run that copied an
    identical run is not counted again), ``\\readDead``, the sentences that quote them, and ``deadActivationRuns``,
    the runs that the per-activation figure pools, named as the dead-unit table's caption names them."""
    runs = distinct_dead_runs(result)
    which, differ = dead_runs_named(result, "activation", "the activation")  # as the dead-unit table's caption
    m = {"deadRuns": NA, "deadMean": NA, "zeroMean": NA, "readDead": "", "deadActivationRuns": f"{which} ({differ})"}
    used = sorted(map(str, runs["activation"].dropna().unique())) if "activation" in runs else []
    stems = latex.macro_stems([*ACTIVATIONS, *used], _dead_forms, taken=m)  # relu6 beside relu_6: one each
    m.update({name: NA for stem in stems.values() for name in _dead_forms(stem)})
    if runs.empty:
        return m
    m.update(deadRuns=plural(len(runs), "run"), deadMean=latex.pct(runs["dead_fraction"].mean()),
             zeroMean=latex.pct(runs["zero_fraction"].mean()))
    for act, g in runs.groupby("activation"):
        dead, zero = _dead_forms(stems[str(act)])
        m[dead], m[zero] = latex.pct(g["dead_fraction"].mean()), latex.pct(g["zero_fraction"].mean())
    copies = len(result.dead_runs) - len(runs)
    text = (rf"Over {m['deadRuns']}" + (f" ({plural(copies, 'copy', 'copies')} of an identical run not counted "
                                         "again)" if copies else "") +
            rf", {m['deadMean']}\,\% of units are dead and {m['zeroMean']}\,\% of activations are zero." +
            ("" if runs["dead_fraction"].max() > 0 else " No unit is dead.") + dead_concentration(result))
    m["readDead"] = text + _dead_by_activation(dead_runs_sweeping(result, "activation", fallback=False))
    return m


def _dead_forms(stem: str) -> list[str]:
    """The per-activation macros of an activation's macro stem: reluSix -> deadReluSix, zeroReluSix."""
    return [latex.macro_name("dead", stem), latex.macro_name("zero", stem)]


def activation_names(runs: pd.DataFrame) -> dict[str, str]:
    """How the prose names the activations of `runs` (their ``activation`` column, pipeline.activation_label) in
    LaTeX: the class or function name of the ``_target_`` in the config of the first run of each (relu -> ReLU, a
    user's mish -> Mish; torch.nn's class names are those of ACTIVATIONS), else ACTIVATIONS' name or the activation's
    own; two of one name are told apart by their option names: ReLU6 (relu6), ReLU6 (relu\\_6)."""
    firsts = runs.dropna(subset=["activation"]).drop_duplicates("activation") if "activation" in runs else runs[:0]
    targets = {str(a): run_target(Path(d), "activation") for a, d in zip(firsts["activation"], firsts["run_dir"])}
    names = {a: ACTIVATIONS.get(a, escape(a)) if t is None else escape(t.rsplit(".", 1)[-1])
             for a, t in targets.items()}
    shared = Counter(names.values())
    return {a: name if shared[name] == 1 else f"{name} ({escape(a)})" for a, name in names.items()}


def _dead_by_activation(runs: pd.DataFrame) -> str:
    """' In the runs that sweep the activation, all else equal, dead units are ReLU 1.50 %, ELU 0.00 %; for ELU,
    which can output negative values, ...' (`runs`: evidence.dead_runs_sweeping without its fallback, so that the
    activations are compared with all else equal; empty without a preset that sweeps the activation), each activation
    named as activation_names says."""
    if runs.empty:
        return ""
    acts = runs.groupby("activation", sort=False)
    if acts.ngroups < 2 and not runs["negative_capable"].any():
        return ""
    names = activation_names(runs)
    shown = {a: names[str(a)] for a in acts.groups}
    text = " In the runs that sweep the activation, all else equal, dead units are " + latex.and_join(
        [rf"{shown[a]} {latex.pct(g['dead_fraction'].mean())}\,\%" for a, g in acts])
    negative = [shown[a] for a, g in acts if bool(g["negative_capable"].any())]
    if negative:
        text += (f"; for {latex.and_join(negative)}, which can output negative values, ``dead'' is the same "
                 "never-positive statistic and such units still pass gradient")
    return text + "."


def _speed(result: AnalysisResult) -> dict[str, str]:
    """Training time of the analysed runs (the study's GPU time: a run that reused the results of an identical
    run counts once, as `trainReused`), seconds per epoch of each Stage-1 model, and the sentences that quote
    them (``\\readReuse``, ``\\readSharing``, ``\\readOverhead``, ``\\readSecPerEpoch``)."""
    runs = result.collection.completed
    stage1 = {stem: params for stem, (preset, params) in NAMED_CELLS.items() if preset == "stage1_models"}
    m = {"trainHours": NA, "trainEpochs": NA, "trainDevices": NA, "trainReused": plural(0, "run"), "readReuse": "",
         "readSharing": "", "readOverhead": "", "readSecPerEpoch": ""} | {f"secPerEpoch{stem}": NA for stem in stage1}
    if runs.empty or "train_time_s" not in runs:
        return m
    seconds = pd.to_numeric(runs["train_time_s"], errors="coerce")
    epochs = pd.to_numeric(runs.get("epochs_completed"), errors="coerce")
    trained = runs["reused_from"].isna() if "reused_from" in runs else pd.Series(True, index=runs.index)
    devices = sorted({str(d) for d in runs.get("device_name", pd.Series(dtype=str)).dropna()})
    m.update(trainHours=f"{seconds[trained].sum() / 3600:.2f}", trainEpochs=plural(epochs[trained].sum(), "epoch"),
             trainDevices=_text(", ".join(devices)), trainReused=plural(int((~trained).sum()), "run"),
             readReuse=_reuse(runs), readSharing=_sharing(runs[trained]), readOverhead=_overhead(runs[trained]))
    per_epoch = seconds / epochs
    quoted = []
    for stem, params in stage1.items():
        cell = find_cell(result, "stage1_models", params)
        if cell is not None:
            mask = (runs["preset"] == "stage1_models") & (runs["cell"] == cell["cell"])
            m[f"secPerEpoch{stem}"] = f"{per_epoch[mask].mean():.2f}"
            quoted.append(f"{MODEL_NAMES[stem]} {m[f'secPerEpoch{stem}']}")
    if quoted:
        m["readSecPerEpoch"] = (r"Seconds per training epoch in the \texttt{stage1\_models} runs, validation included: "
                                f"{latex.and_join(quoted)}.")
    return m


#: How the prose names the Stage-1 models.
MODEL_NAMES = {"ResNetNine": "ResNet-9", "ResNetEighteen": "ResNet-18", "ResNetFifty": "ResNet-50",
               "PreActResNetEighteen": "pre-activation ResNet-18", "PlainEighteen": "Plain-18", "VGGEleven": "VGG-11"}


def _reuse(runs: pd.DataFrame) -> str:
    """How many runs copied an identical completed run instead of training, and how many presets share one run."""
    if "reused_from" not in runs or runs["reused_from"].isna().all():
        return ""
    source = [run_source(d, r) for d, r in zip(runs["run_dir"], runs["reused_from"])]
    shared = int(runs.groupby(source)["preset"].nunique().max())
    copies = int(runs["reused_from"].notna().sum())
    here = f" (here one run belongs to up to {shared} presets)" if shared > 1 else ""  # else not shared here
    return (f"A run that several presets share{here} was trained "
            f"once: {plural(copies, 'run')} copied the results of an identical completed run and "
            f"{'is' if copies == 1 else 'are'} not counted again.")


def _sharing(runs: pd.DataFrame) -> str:
    """How many of the trained `runs` ran at once on one machine (summary.json's started_at, finished_at and hostname)
    and the wall-clock time they took, so that per-run times measured under sharing are read as such; empty when
    the times are missing."""
    if not {"started_at", "finished_at"} <= set(runs.columns):
        return ""
    start = pd.to_datetime(runs["started_at"], errors="coerce", utc=True)
    end = pd.to_datetime(runs["finished_at"], errors="coerce", utc=True)
    host = runs["hostname"].fillna("") if "hostname" in runs else pd.Series("", index=runs.index)
    ok = start.notna() & end.notna() & (end > start)
    if not ok.any():
        return ""
    busy = run_time = 0.0
    most = 0
    for _, group in pd.DataFrame({"start": start[ok], "end": end[ok], "host": host[ok]}).groupby("host"):
        events = sorted([(t.timestamp(), 1) for t in group["start"]] + [(t.timestamp(), -1) for t in group["end"]],
                        key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
        running, since = 0, None
        for t, step in events:
            if running and since is not None:
                busy += t - since
            running += step
            most = max(most, running)
            since = t
        run_time += float((group["end"] - group["start"]).dt.total_seconds().sum())
    counted = plural(int(ok.sum()), "trained run")
    if most <= 1:
        return (f"No two of the {counted} with recorded times overlapped: each had its machine to itself, so its "
                f"times are those of one run alone.")
    return (f"The runs shared their machine: on average {run_time / busy:.1f} ran at once (at most {most}), so the "
            f"times here and in the tables are per run under that sharing, longer than one run alone would take; "
            f"at least one of the {counted} with recorded times was running for {busy / 60:.1f} minutes of "
            f"wall-clock time in all.")


#: summary.json's phases of a run's wall time besides its epochs (fmnist.train.phases), as the prose names them.
OVERHEAD_PHASES = {"startup_s": "starting (process, imports, configuration)",
                   "setup_s": "on setup (data, model, CUDA-graph capture)", "finish_s": "testing and writing its files"}


def _overhead(runs: pd.DataFrame) -> str:
    """Where the trained `runs`' wall time went besides training (the median of each phase over the runs that
    recorded them all), and the share of a run's wall time that was not training; empty for runs of versions that
    did not record the phases."""
    columns = [*OVERHEAD_PHASES, "epochs_s", "train_time_s"]
    if not set(columns) <= set(runs.columns):
        return ""
    phases = runs[columns].apply(pd.to_numeric, errors="coerce").dropna()
    wall = phases[[*OVERHEAD_PHASES, "epochs_s"]].sum(axis=1)
    phases, wall = phases[wall > 0], wall[wall > 0]
    if phases.empty:
        return ""
    median = phases.median()
    share = float(((wall - phases["train_time_s"]) / wall).median())
    spent = latex.and_join([f"{median[k]:.1f}\\,s {what}" for k, what in OVERHEAD_PHASES.items()])
    return (f"Besides its epochs (a median {median['train_time_s']:.1f}\\,s of training and validation per run), a run "
            f"spent a median {spent}; {100 * share:.0f}\\,\\% of a run's wall time, checkpoint writes included, went "
            f"to anything but its epochs (median over {plural(len(phases), 'run')}).")


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
    replayed = "all" if captured == len(runs) else "none" if captured == 0 else str(captured)
    text = f"Of the {plural(len(runs), 'trained run')}, {replayed} replayed their training step as CUDA graphs"
    if len(failed):
        reason = failed.value_counts().index[0].removeprefix("failed:").strip()
        text += (f" and {len(failed)} fell back to eager training after a failed capture (most often: "
                 rf"\texttt{{{escape(reason[:120])}}})")
    text += "."
    if "precision" in runs and runs["precision"].notna().any():
        counts = runs["precision"].dropna().value_counts()
        text += " Numeric precision: " + ", ".join(f"{escape(k)} ({plural(v, 'run')})" for k, v in counts.items()) + "."
    resumed = int(runs["resumed_from_epoch"].notna().sum()) if "resumed_from_epoch" in runs else 0
    text += (f" In all, {plural(resumed, 'run')} {'was' if resumed == 1 else 'were'} interrupted (preemption, a "
             "session's time limit) and resumed from the last checkpoint." if resumed else
             " No run was interrupted and resumed from a checkpoint.")
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
    sentences = (DATA_SPLIT[getattr(result, "test_set", None)], _same_data(getattr(result, "data", None)))
    return {"readDataSplit": " ".join(t for t in sentences if t)}


def _same_data(check: DataCheck | None) -> str:
    """Whether every run trained on the same data, by the data fingerprint each recorded (pipeline.data_check)."""
    if check is None:
        return ""
    prints = ", ".join(rf"\texttt{{{f}}}" for f in check.fingerprints)
    if check.mixed:
        return (f"The runs did not all train on the same data: they recorded {len(check.fingerprints)} different data "
                rf"fingerprints ({prints}; \texttt{{runs.csv}}, column \texttt{{data\_fingerprint}}), so comparisons "
                "between them mix data sets.")
    older = f" (the {plural(check.unrecorded, 'older run')} recorded none)" if check.unrecorded else ""
    official = (r", that of the split \texttt{python -m fmnist.data.prepare} builds"
                if check.fingerprints == [OFFICIAL_RESPLIT_FINGERPRINT] else "")
    every, those = (("Every run that recorded a data fingerprint recorded the same one", "those runs")
                    if check.unrecorded else ("Every run recorded the same data fingerprint", "all of them"))
    text = (f"{every}{official} ({prints}, a hash of the ids, labels and images it read){older}, so {those} trained "
            "and were tested on the same data.")
    if check.folder_differs:
        text += (rf" The data folder the analysis read has another fingerprint (\texttt{{{check.folder}}}), so the "
                 "check of the test set above describes that folder, not the runs' data.")
    return text


def preset_prefixes(result: AnalysisResult, taken: Iterable[str] = ()) -> dict[str, str]:
    """Macro prefix of every analysed preset and every study stage (stage2_skip -> stageTwoSkip); a preset whose
    name differs from an earlier one's only in what a macro name cannot hold (stage2-norm beside stage2_norm), or
    whose macros would be one of `taken` (the other macros: a preset named n would define \\nRuns), gets a prefix
    of its own (stageTwoNormAltTwo), never the other's macros."""
    return latex.macro_stems([*stage_presets(), *result.collection.swept],
                             lambda prefix: [prefix + f for f in PRESET_FIELDS], taken)


def _results(result: AnalysisResult) -> list[str]:
    lines = []
    for _, c in result.cells.iterrows():
        fields = {"test_acc": latex.pct_pm(c["test_acc_mean"], c["test_acc_std"]),
                  "val_acc": latex.pct_pm(c["best_val_acc_mean"], c["best_val_acc_std"]),
                  "delta": latex.pp(c["delta"]), "p": latex.pvalue(c["p_holm"]), "n": str(int(c["n"])),
                  "params": latex.count(c["params_mean"]), "flops": latex.count(c["flops_mean"]),
                  "time": latex.seconds(c["train_time_s_mean"], c["train_time_s_std"]), "verdict": escape(c["verdict"])}
        key = f"{latex.key(c['preset'])}}}{{{latex.key(c['cell'])}"
        lines += [rf"\resultdef{{{key}}}{{{f}}}{{{v}}}" for f, v in fields.items()]
    return lines


def build_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX value of every named macro (n/a where the data is missing)."""
    head = {**_setup_defaults(), **_overview(result), **_setup(result)}
    rest = {**_named(result), **_confusion(result), **ensemble_macros(result), **_dead(result), **_speed(result),
            **_operations(result), **_data_split(result), **evidence_macros(result)}
    return {**head, **_presets(result, preset_prefixes(result, taken=[*head, *rest])), **rest}


def _setup_defaults() -> dict[str, str]:
    keys = ("Model", "Epochs", "Batch", "Optimizer", "LR", "Momentum", "WD", "Scheduler", "Augment", "Norm",
            "Activation", "LabelSmoothing", "ValFraction", "Subset", "Train", "Val", "Test", "Device", "Torch",
            "Commit")
    return {f"setup{k}": NA for k in keys} | {f"best{k}": NA for k in ("Preset", "Cell", "Acc", "Std", "N")}


def flags(result: AnalysisResult, macros: Mapping[str, str]) -> list[str]:
    """The names ``\\ifdata`` is true for: what the analysis has (setup, commit, best, confusion, dead, speed;
    ``confpooled`` when the confusion cell's matrix pools two runs or more; ``ensembles`` when some cell has two seeds
    or more with readable labelled predictions (the seed ensembles);
    ``tested`` when at least one cell could be tested against its reference, or one key comparison between two other
    cells (ResNet-18 against Plain-18) could: two seeds or more on both sides;
    ``untested`` when at least one cell's difference from its reference could not (evidence.untested_count: fewer
    than two seeds on a side), so that a partly seeded study, which is both, says that some differences are quoted
    without a test; neither when no cell has a difference to test (evidence.no_comparison says why: a single cell,
    no completed run to compare); ``multiseed`` when some cell has two completed seeds or more; ``keyed`` when a
    preset table marks a key comparison, whose p is corrected across the questions: evidence.key_family_cells),
    ``preset:<name>`` for each analysed preset and ``figure:<name>`` for each figure it drew."""
    have = {"setup": macros["setupModel"], "commit": macros["setupCommit"], "best": macros["bestCell"],
            "confusion": macros["confCell"], "dead": macros["deadMean"], "speed": macros["trainHours"],
            "confpooled": NA if result.classes is None or result.classes.n_runs < 2 else "yes",
            "ensembles": macros["ensCells"]}
    cells = result.cells
    tested = ["tested"] if cells["p_value"].notna().any() or key_family_p(result) else []
    tested += ["untested"] if untested_count(cells) else []
    tested += ["multiseed"] if (cells["n"] >= 2).any() else []
    if keyed(cells).any():
        tested.append("keyed")  # a preset table marks a key comparison, corrected across the questions
    return ([name for name, value in have.items() if value != NA] + tested
            + [f"preset:{p}" for p in result.collection.swept]
            + [f"figure:{f}" for f in sorted(result.figures)])


#: The LaTeX side of the macros: n/a, the cell numbers (\resultdef/\result, keys compared as text), the flags, and
#: \fmthen\readX: a space and the generated sentences \readX, or nothing when they are empty (never two spaces).
PREAMBLE = r"""\providecommand{\NA}{n/a}
\makeatletter
\newcommand{\resultdef}[4]{\expandafter\def\csname fmres@\detokenize{#1/#2/#3}\endcsname{#4}}
\newcommand{\result}[3]{\ifcsname fmres@\detokenize{#1/#2/#3}\endcsname
  \csname fmres@\detokenize{#1/#2/#3}\endcsname\else\NA\fi}
\newcommand{\ifdata}[1]{\ifcsname fmdata@\detokenize{#1}\endcsname\expandafter\@firstoftwo
  \else\expandafter\@secondoftwo\fi}
\newcommand{\fmthen}[1]{\edef\fm@then{\detokenize\expandafter{#1}}\ifx\fm@then\@empty\else\space#1\fi}
\makeatother
\newcommand{\ifpreset}[1]{\ifdata{preset:#1}}
\newcommand{\iffigure}[1]{\ifdata{figure:#1}}"""


def macros_tex(result: AnalysisResult) -> str:
    """The text of report/macros.tex."""
    macros = build_macros(result)
    lines = ["% Generated by fmnist.analysis (python analyze.py ... report=true) from the analysed sweeps:",
             "% every number the report quotes. Do not edit; rerun the analysis.", PREAMBLE]
    lines += [rf"\expandafter\def\csname fmdata@\detokenize{{{latex.key(f)}}}\endcsname{{}}"
              for f in flags(result, macros)]
    lines += [rf"\newcommand{{\{name}}}{{{value}}}" for name, value in macros.items()]
    lines += _results(result)
    return "\n".join(lines) + "\n"
