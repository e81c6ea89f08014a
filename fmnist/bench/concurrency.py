"""Study throughput against the number of concurrent jobs per GPU (the `gpu_pool` launcher)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fmnist.train.run_dir import read_summary

TRAIN_SCRIPT = Path(__file__).resolve().parents[2] / "train.py"
ERROR_LINES = 5  # lines of a failed sweep's output kept in the result
#: summary.json's phases of a run's wall time, in order, and their names (train_time_s: the epochs' own time,
#: epochs_s: the epoch loop's, checkpoints and logs included).
PHASES = {"startup_s": "start-up", "setup_s": "setup", "train_time_s": "training", "epochs_s": "epoch loop",
          "finish_s": "test and files"}


def sweep_throughput(jobs_per_gpu: int, n_jobs: int, overrides: list[str], root: Path | None = None) -> dict[str, Any]:
    """Run `n_jobs` seeds of one configuration through `gpu_pool` with K = `jobs_per_gpu` (K CPU jobs
    without a GPU) and time the whole sweep, process start-up and data loading included. The sweep goes to
    `root`, or to a temporary folder that is removed afterwards; when a job did not complete, `error` holds the
    end of the sweep's output. `median_phases_s` says where a run's time went (start-up, setup, epochs, test)."""
    seeds = ",".join(str(s) for s in range(n_jobs))
    with tempfile.TemporaryDirectory(prefix="fmnist-concurrency-") as tmp:
        sweep = (Path(root) if root else Path(tmp)) / f"k{jobs_per_gpu}"
        cmd = [sys.executable, str(TRAIN_SCRIPT), "-m", "hydra/launcher=gpu_pool",
               f"hydra.launcher.jobs_per_gpu={jobs_per_gpu}", f"hydra.launcher.cpu_jobs={jobs_per_gpu}",
               f"seed={seeds}", "logger=none", *overrides, f"hydra.sweep.dir={sweep}"]
        tic = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - tic
        summaries = [read_summary(p.parent) or {} for p in sweep.glob("*/summary.json")]
    done = [r for r in summaries if r.get("status") == "completed"]
    completed = len(done)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-ERROR_LINES:]
    return {
        "jobs_per_gpu": jobs_per_gpu, "jobs": n_jobs, "completed": completed, "wall_s": wall,
        "runs_per_min": 60.0 * completed / wall, "returncode": proc.returncode,
        "sweep_dir": str(sweep) if root else None, "error": "\n".join(tail) if completed < n_jobs else None,
        "median_phases_s": median_phases(done),
    }


def median_phases(summaries: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median over completed runs of each phase of a run's wall time (fmnist.train.phases), with the epochs'
    training time (`train_time_s`) beside them; None for a phase no run recorded."""
    medians: dict[str, float | None] = {}
    for key in PHASES:
        values = [r[key] for r in summaries if isinstance(r.get(key), (int, float))]
        medians[key] = statistics.median(values) if values else None
    return medians
