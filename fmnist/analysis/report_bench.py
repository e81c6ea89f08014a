"""The report's speed section (report/tables/bench.tex) from benchmark results (analyze.py bench_dir=...): seconds
per epoch of the naive pipeline and ours, time to accuracy, jobs per GPU. Every number is read from the files."""

from __future__ import annotations

from typing import Any, Sequence

from fmnist.analysis import latex
from fmnist.analysis.latex import escape
from fmnist.bench.results import machine, throughput_modes, throughput_rows, tta_rows, verdict_word

#: How the table heads our step modes (fmnist.bench.pipelines.MODES).
MODE_NAMES = {"eager": "eager", "graphs": "CUDA graphs", "compile-default": "compile",
              "compile-reduce-overhead": "compile (r.-o.)", "compile-max-autotune": "compile (m.-a.)"}


def _seconds(value: Any) -> str:
    if value == "failed":
        return "failed"
    return "--" if latex.missing(value) else f"{float(value):.3g}"  # 0.401 s against a 0.4 s target


def throughput_table(results: Sequence[dict[str, Any]], source: str | None = None) -> str:
    """Every throughput row of `results` in one table (the union of their modes; `source`: the folder the caption
    names); '' when none has one."""
    with_rows = [r for r in results if r.get("throughput")]
    if not with_rows:
        return ""
    modes = list(dict.fromkeys(m for r in with_rows for m in throughput_modes(r)))
    rows = []
    for result in with_rows:
        for r in throughput_rows(result):
            target = "--" if r["met"] is None else f"{r['target']:g} ({verdict_word(r['met'])})"
            rows.append([escape(r["model"]), str(r["batch_size"]), _seconds(r["naive"]),
                         *[_seconds(r["modes"].get(m)) for m in modes],
                         "--" if latex.missing(r["speedup"]) else f"{r['speedup']:.1f}$\\times$", target])
    machines = latex.and_join(sorted({escape(machine(r)) for r in with_rows}))
    columns = ["model", "batch", "naive", *[MODE_NAMES.get(m, escape(m)) for m in modes], "naive / best",
               "target (s)"]
    return latex.table(
        columns, rows, "lr" + "r" * (len(modes) + 3),
        rf"Seconds per training epoch of 60,000 images ({machines}): the naive pipeline (per-image PNG decoding "
        r"and transforms in DataLoader workers, fp32) and ours in each step mode, timed after warm-up steps; "
        r"naive / best is the speed-up of our fastest mode, and the targets are the project's for one H100. "
        r"A row measured in two benchmark runs appears twice."
        + (rf" Source: \texttt{{{latex.breakable(source)}}}." if source else ""), "tab:bench", size=r"\scriptsize")


def tta_sentence(results: Sequence[dict[str, Any]]) -> str:
    """The time-to-accuracy runs as one sentence; '' when there are none."""
    parts = []
    for result in results:
        for r in tta_rows(result):
            if r["verdict"] == "failed" or latex.missing(r["test_acc"]):
                parts.append(rf"\texttt{{{escape(r['preset'])}}} failed")
                continue
            aim = (f" (aim {100 * r['aim'][0]:.1f}\\,\\% in {r['aim'][1]:g}\\,s: {r['verdict']})"
                   if r["aim"] and r["verdict"] else "")
            epochs = "" if r["epochs"] is None else f" after {r['epochs']} epochs"
            parts.append(rf"\texttt{{{escape(r['preset'])}}}{_recipe(r)} reached {latex.pct(r['test_acc'])}\,\% on "
                         rf"the official test set{epochs} in {latex.seconds(r['train_time_s'])}\,s of training{aim}")
    if not parts:
        return ""
    return ("Time to accuracy of the speed presets, with the training time counted (CUDA-graph capture included; "
            r"each preset trains a recipe of its own, the one \texttt{conf/experiment/<preset>.yaml} held when it ran, "
            r"not a study cell's): "
            + latex.and_join(parts) + ".")


def _recipe(row: dict[str, Any]) -> str:
    """' (resnet18, width 64, batch 512, 60,000 training images)' from what a time-to-accuracy run recorded; '' when
    it recorded none of it (results of earlier versions)."""
    parts = ([rf"\texttt{{{escape(row['model'])}}}"] if row.get("model") else []) + (
        [f"width {row['width']}"] if row.get("width") is not None else []) + (
        [f"batch {row['batch_size']}"] if row.get("batch_size") else []) + (
        [f"{latex.thousands(row['n_train'])} training images"] if row.get("n_train") else [])
    return f" ({', '.join(parts)})" if parts else ""


def concurrency_sentence(results: Sequence[dict[str, Any]]) -> str:
    """Jobs per GPU as one sentence per result that measured it; '' when none did."""
    sentences = []
    for result in results:
        rows = result.get("concurrency") or []
        if not rows:
            continue
        runs = " ".join(result.get("settings", {}).get("concurrency_overrides") or [])
        rates = [f"{r['jobs_per_gpu']} at a time {r['runs_per_min']:.2f} runs per minute"
                 + ("" if i == 0 or not r.get("speedup_vs_first") else f" ({r['speedup_vs_first']:.1f}$\\times$)")
                 for i, r in enumerate(rows)]
        mps = ", under CUDA MPS" if result.get("mps") else ""
        sentences.append(rf"Several jobs per GPU ({rows[0]['jobs']} runs of \texttt{{{escape(runs)}}}, process "
                         rf"start included; {escape(machine(result))}{mps}): {latex.and_join(rates)}.")
    return " ".join(sentences)


def bench_section(results: Sequence[dict[str, Any]], source: str | None = None) -> str:
    """report/tables/bench.tex: the table and the two sentences; '' without results. `source`: their folder."""
    text = " ".join(filter(None, (tta_sentence(results), concurrency_sentence(results))))
    table = throughput_table(results, source)
    if not text and not table:
        return ""
    lead = r"Table~\ref{tab:bench} compares the training pipelines. " if table else ""
    return f"{lead}{text}\n\n{table}"
