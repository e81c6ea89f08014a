"""The generated LaTeX tables of the report (report/tables/*.tex), all from the analysis tables."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from fmnist.analysis import latex
from fmnist.analysis.collect import COMPLETED, short_keys
from fmnist.analysis.evidence import (dead_runs_named, dead_runs_sweeping, distinct_dead_layers, key_comparisons,
                                      keyed, lr_schedule_spread, main_effects, most_dead_layer, preset_summary)
from fmnist.analysis.evidence.classes import MODELS, model_name, preset_class_accuracy
from fmnist.analysis.latex import escape, plural
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import TEST_NAME, shown_verdict
from fmnist.analysis.style import slugs
from fmnist.models.factory import build_model
from fmnist.models.summary import model_summary


def _param(value: object) -> str:
    if latex.missing(value):
        return latex.NA
    return escape(value) if isinstance(value, str) else latex.number(value)


def preset_table(result: AnalysisResult, preset: str) -> str:
    """Cells of one preset: mean ± std, n, capacity, time, and the comparison with the reference."""
    cells = result.cells[result.cells["preset"] == preset]
    keys = result.collection.swept[preset]
    metric = str(cells["metric"].iloc[0])
    short = short_keys(keys)
    columns = [rf"\texttt{{{escape(k)}}}" for k in short] + [
        "$n$", r"val.\ acc.\ (\%)", r"test acc.\ (\%)", "params", "FLOPs", "time (s)",
        rf"$\Delta$ {'test' if metric == 'test_acc' else 'val.'} (pp)", r"$p_\mathrm{Holm}$", "vs.\\ reference"]
    rows = []
    key = keyed(cells)
    for i, c in cells.iterrows():
        n = str(int(c["n"])) + (f" (+{int(c['n_failed'])} failed)" if c["n_failed"] else "") + (
            f" (+{int(c['n_unfinished'])} unfinished)" if c["n_unfinished"] else "")
        verdict = "reference" if c["is_reference"] else escape(shown_verdict(c))
        rows.append([_param(c[k]) for k in keys] + [
            n, latex.pct_pm(c["best_val_acc_mean"], c["best_val_acc_std"]),
            latex.pct_pm(c["test_acc_mean"], c["test_acc_std"]), latex.count(c["params_mean"]),
            latex.count(c["flops_mean"]), latex.seconds(c["train_time_s_mean"], c["train_time_s_std"]),
            "" if c["is_reference"] else latex.pp(c["delta"]),
            "" if c["is_reference"] else latex.pvalue(c["p_holm"]) + (r"$^\dagger$" if key[i] else ""), verdict])
    caption = (rf"Preset \texttt{{{escape(preset)}}}: mean\,$\pm$\,std over the completed seeds ($n$). "
               rf"$\Delta$ is the difference from the reference cell; $p$ from {escape(TEST_NAME)}; "
               rf"a cell differs from the reference when $p_\mathrm{{Holm}} < \alpha = {result.alpha:g}$, "
               r"otherwise it is within seed noise. Time is training time per run; FLOPs per image (forward).")
    if key.any():
        caption += (r" $^\dagger$: the key comparison of a question of the study (Table~\ref{tab:key-comparisons}); "
                    r"its $p_\mathrm{Holm}$ is corrected across the questions instead, and the preset's other "
                    r"comparisons among themselves.")
    if short != list(keys):
        caption += " Keys: " + ", ".join(rf"\texttt{{{escape(a)}}} is \texttt{{{escape(k)}}}"
                                          for a, k in zip(short, keys) if a != k) + "."
    align = "l" * len(keys) + "rrrrrrrrl"
    return latex.table(columns, rows, align, caption, f"tab:preset-{preset_slug(result, preset)}")


def preset_slug(result: AnalysisResult, preset: str) -> str:
    """`preset`'s slug among the analysed presets' (style.slugs: one of its own), for its file names and labels."""
    return slugs([*result.collection.swept, preset])[preset]


def presets_section(result: AnalysisResult) -> str:
    """One subsection per analysed preset: its counts, its best cell against the reference, its table and figures."""
    out = []
    for preset, s in slugs(result.collection.swept).items():
        runs = result.collection.runs[result.collection.runs["preset"] == preset]
        n_cells = int((result.cells["preset"] == preset).sum())
        summary = preset_summary(result, preset).replace(latex.NA, "")
        title = rf"\texorpdfstring{{\texttt{{{escape(preset)}}}}}{{{escape(preset)}}}"
        shown = [rf"{what} in Figure~\ref{{fig:{name}_{s}}}" for name, what in (
            ("curves", "its training curves"), ("accuracy", "the final accuracies"),
            ("dead_training", "dead units during training")) if f"{name}_{s}" in result.figures]
        figures = f"; {latex.and_join(shown)}" if shown else ""
        seeded = bool((runs.groupby("cell")["seed"].nunique() >= 2).any()) if "seed" in runs else False
        out += [rf"\subsection{{Preset {title}}}\label{{sec:preset-{s}}}",
                rf"This preset has {plural(n_cells, 'cell')} and {plural(len(runs), 'run')}, of which "
                rf"{int((runs['status'] == COMPLETED).sum())} completed (Table~\ref{{tab:preset-{s}}}{figures}). "
                rf"{summary}", "", rf"\input{{tables/preset_{s}}}"]
        for name, caption, width in (
                (f"curves_{s}", rf"Training (dashed) and validation (solid) curves of \texttt{{{escape(preset)}}}"
                                + (r", mean over seeds with a $\pm1$ std band." if seeded else " (one seed per cell)."),
                 r"\linewidth"),
                (f"accuracy_{s}", rf"Final accuracy per cell of \texttt{{{escape(preset)}}}: "
                                  + (r"mean\,$\pm$\,std (filled), each seed (hollow); dotted: the reference; *: "
                                     r"significant." if seeded else "one seed per cell; dotted: the reference."),
                 r"0.7\linewidth"),
                (f"dead_training_{s}", rf"Dead units and sparsity during training, \texttt{{{escape(preset)}}}.",
                 r"\linewidth")):
            if name in result.figures:
                out.append(rf"\reportfigure{{{name}}}{{{width}}}{{{caption}}}")
        out.append("")
    return "\n".join(out)


#: A table column type prefix: ragged-right text, so that long run names break at their separators.
RAGGED = r">{\raggedright\arraybackslash}"


def problems_table(result: AnalysisResult) -> str:
    """The runs that did not complete, with their error; run names and errors break across lines."""
    problems = result.collection.problems()
    if problems.empty:
        n = len(result.collection.runs)
        return ("The only run completed." if n == 1 else f"All {n} runs completed.") + "\n"
    rows = [[rf"\texttt{{{latex.breakable(p['run'])}}}", escape(p["preset"]), escape(p["status"]),
             latex.breakable(str(p["error"] or "")[:110])] for _, p in problems.iterrows()]
    align = rf"{RAGGED}p{{0.3\linewidth}}ll{RAGGED}p{{0.38\linewidth}}"
    return latex.long_table(["run", "preset", "status", "error"], rows, align,
                            "Runs that did not complete (failed, unfinished or unreadable); they are not in the "
                            "statistics.", "tab:problems", size=r"\scriptsize")


def provenance_table(result: AnalysisResult) -> str:
    """Where every number comes from: per preset, the folder holding its run dirs, how many there are, how many
    completed and copied an identical run (reused_from), and the code commits that produced them."""
    rows = []
    for preset, g in result.collection.runs.groupby("preset", sort=False):
        folder = latex.shown_path(os.path.commonpath([str(Path(d).parent) for d in g["run_dir"]]))
        commits = sorted({str(c)[:7] for c in g["git_commit"].dropna()}) if "git_commit" in g else []
        shown = ", ".join(commits[:3]) + (f" (+{len(commits) - 3})" if len(commits) > 3 else "")
        reused = int(g["reused_from"].notna().sum()) if "reused_from" in g else 0
        rows.append([rf"\texttt{{{escape(preset)}}}", rf"\texttt{{{escape(folder)}}}", str(len(g)),
                     str(int((g["status"] == "completed").sum())), str(reused), escape(shown) or latex.NA])
    return latex.table(["preset", "run directories", "runs", "completed", "copied", "commits"], rows, "llrrrl",
                       r"Where the numbers come from: the folder of each preset's run directories (each holds its "
                       r"config, \texttt{metrics.csv}, \texttt{summary.json}, log and predictions), the runs that "
                       r"copied an identical completed run (\texttt{reused\_from}) and the code commits.",
                       "tab:provenance", size=r"\scriptsize")


def per_class_table(result: AnalysisResult) -> str:
    if result.classes is None:
        return ""
    acc = result.classes.class_accuracy()
    rows = [[escape(r["class"]), latex.pct_pm(r["mean"], r["std"])] for _, r in acc.iterrows()]
    spread = r"mean\,$\pm$\,std over \confRuns" if result.classes.n_runs > 1 else "one run"
    return latex.table(["class", r"test acc.\ (\%)"], rows, "lr",
                       rf"Per-class test accuracy of \confCell{{}} (\confPreset), {spread}.", "tab:per-class")


def models_per_class_table(result: AnalysisResult) -> str:
    """tables/models_per_class.tex: the per-class test accuracy of each model of stage1_models (mean over its runs),
    the highest of each class in bold; "" with fewer than two models."""
    table = preset_class_accuracy(result, MODELS)
    if len(table) < 2:
        return ""
    classes = [c for c in table.columns if c not in ("cell", "n", "overall")]

    def cell(value: float, column: str) -> str:
        """The value; bold when it is its column's highest as printed, unless every model prints the same (n/a, a
        class without images in a model's runs, is never the highest)."""
        text, shown = latex.pct(value, 1), [latex.pct(v, 1) for v in table[column] if not latex.missing(v)]
        best = max(shown, key=float, default=None)
        return rf"\textbf{{{text}}}" if text == best and len(set(shown)) > 1 else text

    rows = [[model_name(result, r["cell"]), str(int(r["n"]))] + [cell(r[c], c) for c in [*classes, "overall"]]
            for _, r in table.iterrows()]
    seeds = "one seed per model" if table["n"].max() == 1 else r"mean over the seeds ($n$)"
    return latex.table(["model", "$n$", *[escape(c) for c in classes], "all"], rows, "lr" + "r" * (len(classes) + 1),
                       rf"Per-class test accuracy (\%) of the models of \texttt{{{escape(MODELS)}}}, {seeds}; bold: "
                       r"the highest of each class (none where all are equal). The per-class differences between "
                       r"models are not tested.", "tab:models-per-class", size=r"\scriptsize")


#: The most cells the seed-ensemble table lists (those with the largest churn; ensembles.csv holds every cell).
ENSEMBLE_ROWS = 12


def ensembles_table(result: AnalysisResult) -> str:
    """tables/ensembles.tex: the cells with two seeds or more, largest churn first (at most ENSEMBLE_ROWS of them):
    single-run and ensemble test accuracy, gain, churn, and the images wrong for every / for some seed."""
    table = result.ensembles
    if table.empty:
        return ""
    shown = table.sort_values("churn", ascending=False, kind="stable").head(ENSEMBLE_ROWS)
    rows = [[rf"\texttt{{{escape(r['preset'])}}}", latex.breakable(r["cell"]), str(int(r["n_runs"])),
             latex.pct_pm(r["acc_mean"], r["acc_std"]), latex.pct(r["ensemble_acc"]), latex.pp(r["gain"]),
             latex.pct(r["churn"]), latex.pct(r["acc_diff"]), latex.pct(r["wrong_all"]), latex.pct(r["wrong_any"])]
            for _, r in shown.iterrows()]
    which = (f"the {len(shown)} of the {len(table)} cells with two seeds or more whose seeds disagree most "
             r"(\texttt{ensembles.csv} of the analysis holds them all)" if len(shown) < len(table)
             else "every cell with two seeds or more, largest churn first")
    return latex.table(["preset", "cell", "seeds", r"single run (\%)", r"ensemble (\%)", "gain (pp)", r"churn (\%)",
                        r"$|\Delta|$ acc.\ (pp)", r"all wrong (\%)", r"any wrong (\%)"], rows,
                       rf"l{RAGGED}p{{0.22\linewidth}}rrrrrrrr",
                       rf"Seed ensembles, {which}: test accuracy of a single run (mean\,$\pm$\,std over the seeds) "
                       r"and of the ensemble (the seeds' predicted probabilities averaged), the ensemble's gain, the "
                       r"churn (test images on which two seeds predict different classes, mean over the pairs of "
                       r"seeds) beside the pairs' mean difference in accuracy, and the test images that every seed / "
                       r"at least one seed gets wrong.", "tab:ensembles")


def dead_table(result: AnalysisResult) -> str:
    """Dead units and sparsity per activation, each trained network once, from the presets that sweep the activation,
    else from every run (evidence.dead_runs_sweeping; the caption says which: evidence.dead_runs_named)."""
    runs = dead_runs_sweeping(result, "activation")
    if runs.empty:
        return ""
    layers = distinct_dead_layers(result, runs)
    rows = []
    for act, g in runs.groupby("activation", sort=False):
        worst = most_dead_layer(layers[layers["activation"] == act])
        most = rf"{worst[0]} ({latex.pct(worst[1], 1)}\,\%)" if worst else "none"
        rows.append([escape(act), str(len(g)), latex.pct_pm(g["dead_fraction"].mean(), g["dead_fraction"].std()),
                     latex.pct_pm(g["zero_fraction"].mean(), g["zero_fraction"].std()), most,
                     "never $>0$" if bool(g["negative_capable"].any()) else "always 0"])
    which, differ = dead_runs_named(result, "activation", "the activation")
    return latex.table(["activation", "runs", r"dead units (\%)", r"zero activations (\%)", "most dead layer",
                        "dead means"], rows, "lrrrll",
                       r"Dead units (channels whose output is never $>0$ on the whole validation split) and "
                       rf"sparsity (fraction of exactly-zero activations), mean\,$\pm$\,std over {which} ({differ}; "
                       r"a run that copied an identical run counted once), best checkpoints. For activations that can "
                       r"be negative, ``dead'' is the same never-positive statistic; such a unit still passes "
                       r"gradient.",
                       "tab:dead")


def _describe(path: Path) -> str:
    """A model config's first comment line as LaTeX: its ASCII arrows and sizes (``28x28: 28->14``, ``x4``) typeset
    as maths, so that a table cell neither prints them raw nor breaks a line inside an arrow, and its straight
    quotes as typographic ones."""
    first = path.read_text().splitlines()[0] if path.stat().st_size else ""
    text = escape(first.lstrip("# ").strip()) if first.startswith("#") else ""
    text = re.sub(r'"([^"]*)"', r"``\1''", text)  # typographic quotes, not straight ones
    text = re.sub(r"(\d+)x(\d+)", r"$\1{\\times}\2$", text)
    text = re.sub(r"\bx(\d+)\b", r"$\\times$\1", text)
    return re.sub(r"(\d+)->", r"\1$\\to$", text)


def models_table(conf_dir: Path) -> str:
    """Every model of conf/model/ at its default width, with BatchNorm and ReLU: convolutions, parameters,
    FLOPs (built on the meta device: no memory, no compute)."""
    norm = OmegaConf.load(conf_dir / "norm" / "batchnorm.yaml")
    act = OmegaConf.load(conf_dir / "activation" / "relu.yaml")
    rows = []
    for path in sorted((conf_dir / "model").glob("*.yaml")):
        cfg = OmegaConf.create({"model": OmegaConf.load(path), "norm": norm, "activation": act})
        with torch.device("meta"):
            model = build_model(cfg)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        wide = sum(1 for m in convs if m.kernel_size != (1, 1))
        info = model_summary(model)
        rows.append([rf"\texttt{{{escape(path.stem)}}}", _describe(path),
                     f"{wide} + {len(convs) - wide}", latex.count(info["params"]), latex.count(info["flops"])])
    return latex.table(["model", "description", r"convs ($3{\times}3$ + $1{\times}1$)", "params", "FLOPs"], rows,
                       r"lp{0.5\linewidth}rrr",
                       r"The models at their default width with BatchNorm and ReLU (counted from the code): "
                       r"convolution layers, trainable parameters and forward FLOPs per $28{\times}28$ image.",
                       "tab:models", size=r"\scriptsize")


def lr_schedules_table(result: AnalysisResult) -> str:
    """tables/lr_schedules.tex: per schedule of stage2_lr, its best and worst learning rate."""
    _, table = lr_schedule_spread(result)
    if table.empty:
        return ""
    rows = [[rf"\texttt{{{escape(r['scheduler'])}}}", latex.number(r["best_lr"]), latex.pct(r["best"]),
             latex.number(r["worst_lr"]), latex.pct(r["worst"]), latex.pp(r["spread"]).lstrip("+"), str(r["failed"])]
            for _, r in table.iterrows()]
    return latex.table(["schedule", "best lr", r"acc.\ (\%)", "worst lr", r"acc.\ (\%)", "spread (pp)",
                        "failed runs"], rows, "lrrrrrr",
                       r"\texttt{stage2\_lr}: for each schedule, the learning rate with the highest and the lowest "
                       r"mean test accuracy over seeds, and the spread between them.", "tab:lr-schedules")


def main_effects_table(result: AnalysisResult) -> str:
    """tables/main_effects.tex: the main effects of stage3_regularization's factors."""
    effects = main_effects(result)
    if effects.empty:
        return ""
    rows = [[escape(r["factor"]), latex.number(r["level"]), str(int(r["n"])), latex.pct(r["acc"]),
             "" if math.isnan(r["p"]) else latex.pp(r["delta"]), "" if math.isnan(r["p"]) else latex.pvalue(r["p"])]
            for _, r in effects.iterrows()]
    return latex.table(["factor", "level", "runs", r"test acc.\ (\%)", r"$\Delta$ (pp)", "$p$"], rows, "lrrrrr",
                       r"Main effects in \texttt{stage3\_regularization}: test accuracy of all runs at one level "
                       r"of a factor (the other factors' levels pooled), compared with the factor's lowest level by "
                       r"a two-sided t-test against the seed noise within the preset's cells (not corrected for the "
                       r"multiple comparisons).", "tab:main-effects")


def key_comparisons_table(result: AnalysisResult) -> str:
    """tables/key_comparisons.tex: a sentence and the table of the one comparison that answers each question."""
    rows = [[escape(r["question"]), rf"\texttt{{{escape(r['preset'])}}}", escape(r["a"]), escape(r["b"]),
             f"{r['n_a']} / {r['n_b']}", latex.pct(r["acc_a"]), latex.pct(r["acc_b"]), latex.pp(r["delta"]),
             latex.pvalue(r["p"]), latex.pvalue(r["p_holm"]), escape(r["verdict"])]
            for _, r in key_comparisons(result).iterrows()]
    if not rows:
        return ""
    return r"Table~\ref{tab:key-comparisons} collects the key comparison of each question." + "\n" + latex.table(
        ["question", "preset", "a", "b", "$n$", r"a (\%)", r"b (\%)", r"$\Delta$ (pp)", "$p$", r"$p_\mathrm{Holm}$",
         r"a vs.\ b"], rows,
        "llllrrrrrrl", r"The key comparison of each question: two cells of one preset that differ only in the named "
                       r"setting; test accuracy, mean over seeds; $p$ from Welch's two-sided t-test, "
                       r"$p_\mathrm{Holm}$ Holm-corrected across the questions (the verdict's).",
        "tab:key-comparisons")
