"""Benchmark results (the JSON files of ``python -m fmnist.bench --out``): reading them and their rows, set against
issue 6's targets. The README's Markdown tables (fmnist.bench.markdown) and the report's LaTeX table
(fmnist.analysis.report_tables.bench_section) both render these rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmnist.errors import FmnistError

#: Seconds per epoch on one H100 that the project aims at: (model, batch size) -> seconds.
EPOCH_TARGETS: dict[tuple[str, int], float] = {
    ("resnet18", 128): 1.0, ("resnet18", 512): 0.7, ("resnet9", 512): 0.4, ("resnet50", 512): 2.0,
    ("vgg11", 512): 0.4}
#: Time-to-accuracy aims: preset -> (test accuracy, seconds of training).
TTA_TARGETS: dict[str, tuple[float, float]] = {"fast": (0.94, 10.0), "fast95": (0.955, 45.0), "best": (0.96, 600.0)}
#: The result lists a benchmark JSON file may hold.
SECTIONS = ("throughput", "time_to_accuracy", "concurrency")


def read_result(path: Path) -> dict[str, Any]:
    """One benchmark JSON file; a FmnistError names the file when it cannot be read or holds no results."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FmnistError(f"cannot read benchmark results {path}: {exc}") from exc
    if not isinstance(result, dict) or not any(result.get(k) for k in SECTIONS):
        raise FmnistError(f"{path} holds no benchmark results (python -m fmnist.bench --out writes them)")
    return result


def machine(result: dict[str, Any]) -> str:
    """Device, torch version, date and precision of a result, as one phrase."""
    return (f"{result.get('device_name') or result.get('device')}, torch {result.get('torch_version')}, "
            f"{str(result.get('date', ''))[:10]}, precision {result.get('precision')}")


def throughput_modes(result: dict[str, Any]) -> list[str]:
    """Our step modes timed in `result`, in the order first seen."""
    return list(dict.fromkeys(m for r in result.get("throughput") or [] for m in r.get("modes", {})))


def judged(result: dict[str, Any]) -> bool:
    """Whether `result` is set against the targets: they are for one H100, so a run on a CPU or MPS is not (a result
    that names no device, as hand-made ones may not, is)."""
    return str(result.get("device", "cuda")).startswith("cuda")


def throughput_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model and batch size: naive and per-mode seconds per epoch (None: not timed; "failed"), the
    speed-up of the best mode, its setup seconds, and the target with whether the best mode met it (None where
    there is no target, no time, or the result is not `judged`)."""
    rows = []
    for r in result.get("throughput") or []:
        modes = r.get("modes", {})
        target = EPOCH_TARGETS.get((r["model"], r["batch_size"])) if judged(result) else None
        best = r.get("ours_s_per_epoch")
        rows.append({
            "model": r["model"], "batch_size": r["batch_size"], "naive": r.get("naive_s_per_epoch"),
            "modes": {m: "failed" if "error" in v else v.get("s_per_epoch") for m, v in modes.items()},
            "speedup": r.get("speedup"), "setup_s": modes.get(r.get("ours_mode"), {}).get("setup_s"),
            "target": target, "met": None if target is None or best is None else best <= target,
        })
    return rows


def tta_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per time-to-accuracy run: its aim and verdict ("met", "missed", "failed" or ""; no aim where the
    result is not `judged`)."""
    rows = []
    for r in result.get("time_to_accuracy") or []:
        aim = TTA_TARGETS.get(r["preset"]) if judged(result) else None
        acc, seconds = r.get("test_acc"), r.get("train_time_s")
        ok = None if aim is None or acc is None or seconds is None else acc >= aim[0] and seconds <= aim[1]
        verdict = "failed" if r.get("status") == "failed" else verdict_word(ok)
        rows.append({"preset": r["preset"], "epochs": r.get("epochs"), "test_acc": acc, "train_time_s": seconds,
                     "aim": aim, "verdict": verdict, "model": r.get("model"), "width": r.get("width"),
                     "batch_size": r.get("batch_size"), "n_train": r.get("n_train")})
    return rows


def trained_model(row: dict[str, Any]) -> str:
    """'resnet9, width 32' from a time-to-accuracy row; only the model where the run recorded no width (results of
    earlier versions), '' where it recorded neither."""
    if not row.get("model"):
        return ""
    return row["model"] + ("" if row.get("width") is None else f", width {row['width']}")


def verdict_word(ok: bool | None) -> str:
    """'met', 'missed', or '' when there is nothing to judge."""
    return "" if ok is None else ("met" if ok else "missed")
