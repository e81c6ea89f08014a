"""Benchmark results (the JSON files of ``python -m fmnist.bench --out``) -> the README's performance tables.

    python -m fmnist.bench.markdown device-out/bench_*.json > perf.md

Every number comes from the files; each table says on which device, torch version and date it was measured,
and every row is set against issue 6's target where there is one (met / missed: never asserted, only shown).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterable

from fmnist.bench.results import (judged, machine, read_result, throughput_modes, throughput_rows, trained_model,
                                  tta_rows, verdict_word)
from fmnist.errors import FmnistError


def _unjudged(result: dict[str, Any]) -> str:
    """What a table's heading says when its runs are not set against the targets, which are for one H100."""
    return "" if judged(result) else f"; the targets are for one H100, so this {result.get('device')} run is not judged"


def throughput_table(result: dict[str, Any]) -> list[str]:
    rows = throughput_rows(result)
    if not rows:
        return []
    cudnn = result.get("cudnn") or {}
    modes = throughput_modes(result)
    head = ["model", "batch", "naive s/epoch", *[f"{m} s/epoch" for m in modes], "speed-up (naive / ours)", "target",
            "setup s (best mode)"]
    settings = result.get("settings") or {}
    timed = (f"timed over {settings['steps']} steps after {settings.get('warmup', 0)} warm-up steps"
             if settings.get("steps") else "one whole epoch timed")
    kernels = {True: "; deterministic cuDNN kernels", False: "; cuDNN benchmark mode"}.get(
        cudnn.get("deterministic"), "")
    lines = [f"Seconds per training epoch of 60,000 images ({timed}; {machine(result)}{kernels}){_unjudged(result)}:",
             "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["batch_size"]), _num(r["naive"]),
                 *[_num(r["modes"].get(m)) if r["modes"].get(m) != "failed" else "failed" for m in modes],
                 f"{r['speedup']:.1f}x faster" if r["speedup"] else "-",
                 f"≤ {r['target']:g} ({verdict_word(r['met'])})" if r["met"] is not None else "-",
                 _num(r["setup_s"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def tta_table(result: dict[str, Any]) -> list[str]:
    rows = tta_rows(result)
    if not rows:
        return []
    lines = [f"Time to accuracy (official test set; training time counted, CUDA-graph capture included; "
             f"{machine(result)}){_unjudged(result)}:", "",
             "| preset | model | epochs | test acc. | training s | aim | |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        aim = r["aim"]
        epochs = "-" if r["epochs"] is None else r["epochs"]
        lines.append(f"| `{r['preset']}` | {trained_model(r) or '-'} | {epochs} | {_pct(r['test_acc'])} | "
                     f"{_num(r['train_time_s'], 1)} | "
                     + (f"≥ {100 * aim[0]:.1f} % in ≤ {aim[1]:g} s" if aim else "-") + f" | {r['verdict']} |")
    return lines + [""]


def concurrency_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("concurrency") or []
    if not rows:
        return []
    overrides = " ".join(result.get("settings", {}).get("concurrency_overrides") or [])
    mps = "; under CUDA MPS" if result.get("mps") else ""
    lines = [f"Jobs per GPU (gpu_pool, {rows[0]['jobs']} runs of `{overrides}`, process start and data load "
             f"included; {machine(result)}{mps}):", "",
             "| jobs per GPU | runs/min | vs. first | completed | median run: start-up / setup / training / test (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        phases = r.get("median_phases_s") or {}
        median_run = " / ".join(_num(phases.get(k), 1) for k in ("startup_s", "setup_s", "train_time_s", "finish_s"))
        lines.append(f"| {r['jobs_per_gpu']} | {r['runs_per_min']:.2f} | {r.get('speedup_vs_first') or 0:.2f}x | "
                     f"{r['completed']}/{r['jobs']} | {median_run} |")
    return lines + [""]


def _num(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.2f} %"


def markdown(results: Iterable[dict[str, Any]]) -> str:
    """The Markdown tables of every result, in the order given."""
    lines: list[str] = []
    for result in results:
        lines += throughput_table(result) + tta_table(result) + concurrency_table(result)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fmnist.bench.markdown", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, help="JSON files written by python -m fmnist.bench --out")
    args = p.parse_args(argv)
    try:
        results = [read_result(path) for path in args.files]
    except FmnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    texts = []
    for path, result in zip(args.files, results):  # one file at a time, so that an error names its file
        try:
            texts.append(markdown([result]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            print(f"error: {path}: a benchmark result lacks a field or has a wrong value ({type(exc).__name__}: "
                  f"{exc})", file=sys.stderr)
            return 1
    print("\n".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
