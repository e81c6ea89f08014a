"""Benchmark results (the JSON files of ``python -m fmnist.bench --out``) -> the README's performance tables.

    python -m fmnist.bench.markdown device-out/bench_*.json > perf.md

Every number comes from the files; each table says on which device, torch version and date it was measured,
and every row is set against issue 6's target where there is one (met / missed: never asserted, only shown).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable

#: Seconds per epoch on one H100 that the project aims at: (model, batch size) -> seconds.
EPOCH_TARGETS: dict[tuple[str, int], float] = {
    ("resnet18", 128): 1.0, ("resnet18", 512): 0.7, ("resnet9", 512): 0.4, ("resnet50", 512): 2.0,
    ("vgg11", 512): 0.4}
#: Time-to-accuracy aims: preset -> (test accuracy, seconds of training).
TTA_TARGETS: dict[str, tuple[float, float]] = {"fast": (0.94, 10.0), "fast95": (0.955, 45.0), "best": (0.96, 600.0)}
#: The result lists a benchmark JSON file may hold.
SECTIONS = ("throughput", "time_to_accuracy", "concurrency")


def _machine(result: dict[str, Any]) -> str:
    return (f"{result.get('device_name') or result.get('device')}, torch {result.get('torch_version')}, "
            f"{str(result.get('date', ''))[:10]}, precision {result.get('precision')}")


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "missed")


def throughput_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("throughput") or []
    if not rows:
        return []
    cudnn = result.get("cudnn") or {}
    modes = list(dict.fromkeys(m for r in rows for m in r.get("modes", {})))
    head = ["model", "batch", "naive s/epoch", *[f"{m} s/epoch" for m in modes], "speed-up (naive / ours)", "target",
            "setup s (best mode)"]
    settings = result.get("settings") or {}
    timed = (f"timed over {settings['steps']} steps after {settings.get('warmup', 0)} warm-up steps"
             if settings.get("steps") else "one whole epoch timed")
    kernels = {True: "; deterministic cuDNN kernels", False: "; cuDNN benchmark mode"}.get(
        cudnn.get("deterministic"), "")
    lines = [f"Seconds per training epoch of 60,000 images ({timed}; {_machine(result)}{kernels}):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        target = EPOCH_TARGETS.get((r["model"], r["batch_size"]))
        best = r.get("ours_s_per_epoch")
        cells = [r["model"], str(r["batch_size"]), _num(r.get("naive_s_per_epoch")),
                 *["failed" if "error" in r["modes"].get(m, {}) else _num(r["modes"].get(m, {}).get("s_per_epoch"))
                   for m in modes],
                 f"{r['speedup']:.1f}x faster" if r.get("speedup") else "-",
                 f"≤ {target:g} ({_verdict(best <= target)})" if target and best else "-",
                 _num(r["modes"].get(r.get("ours_mode"), {}).get("setup_s"), 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def tta_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("time_to_accuracy") or []
    if not rows:
        return []
    lines = [f"Time to accuracy (official test set; training time counted, CUDA-graph capture included; "
             f"{_machine(result)}):", "",
             "| preset | epochs | test acc. | training s | aim | |", "|---|---|---|---|---|---|"]
    for r in rows:
        aim = TTA_TARGETS.get(r["preset"])
        acc, seconds = r.get("test_acc"), r.get("train_time_s")
        ok = None if aim is None or acc is None or seconds is None else acc >= aim[0] and seconds <= aim[1]
        verdict = "failed" if r.get("status") == "failed" else _verdict(ok)
        epochs = "-" if r.get("epochs") is None else r["epochs"]
        lines.append(f"| `{r['preset']}` | {epochs} | {_pct(acc)} | {_num(seconds, 1)} | "
                     + (f"≥ {100 * aim[0]:.1f} % in ≤ {aim[1]:g} s" if aim else "-") + f" | {verdict} |")
    return lines + [""]


def concurrency_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("concurrency") or []
    if not rows:
        return []
    overrides = " ".join(result.get("settings", {}).get("concurrency_overrides") or [])
    mps = "; under CUDA MPS" if result.get("mps") else ""
    lines = [f"Jobs per GPU (gpu_pool, {rows[0]['jobs']} runs of `{overrides}`, process start and data load "
             f"included; {_machine(result)}{mps}):", "", "| jobs per GPU | runs/min | vs. first | completed |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['jobs_per_gpu']} | {r['runs_per_min']:.2f} | {r.get('speedup_vs_first') or 0:.2f}x | "
                     f"{r['completed']}/{r['jobs']} |")
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
    results = []
    for path in args.files:
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: cannot read benchmark results {path}: {exc}", file=sys.stderr)
            return 1
        if not isinstance(result, dict) or not any(result.get(k) for k in SECTIONS):
            print(f"error: {path} holds no benchmark results (python -m fmnist.bench --out writes them)",
                  file=sys.stderr)
            return 1
        results.append(result)
    try:
        text = markdown(results)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"error: a benchmark result lacks a field or has a wrong value ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
