"""Jobs of a sweep that left no run dir: the grid Hydra's basic sweeper launched (its multirun.yaml: the
sweeper's params and the command line's overrides) against the job numbers of the run dirs found there."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterable

from omegaconf import OmegaConf

from fmnist.study import expand_grid

log = logging.getLogger(__name__)

MULTIRUN_FILE = "multirun.yaml"
MISSING = "missing"


def sweep_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The override lists of the jobs `sweep_dir`/multirun.yaml launched; None when there is no such file, or
    it is unreadable or not from the basic sweeper."""
    path = sweep_dir / MULTIRUN_FILE
    if not path.is_file():
        return None
    try:
        hydra = OmegaConf.to_container(OmegaConf.load(path), resolve=False).get("hydra") or {}
        if "BasicSweeper" not in str(hydra["sweeper"].get("_target_", "")):
            return None
        return expand_grid(hydra["sweeper"].get("params") or {}, [str(o) for o in hydra["overrides"]["task"]])
    except Exception as exc:  # a damaged or foreign multirun.yaml: nothing to compare with
        log.warning("cannot read the jobs of %s (%s): missing run dirs are not checked", path, type(exc).__name__)
        return None


def job_number(name: str) -> int | None:
    """The Hydra job number a run dir's name starts with: ``12`` for ``12_seed=0`` (the default subdir) or ``12``
    (``hydra.sweep.subdir=${hydra.job.num}``); None for any other name."""
    match = re.match(r"(\d+)(?:_|$)", name)
    return int(match.group(1)) if match else None


def _swept(jobs: list[list[str]]) -> list[int]:
    """Positions of the overrides that differ between jobs."""
    return [i for i in range(len(jobs[0])) if len({job[i] for job in jobs}) > 1]


def missing_jobs(run_dirs: Iterable[Path], presets: dict[Path, str],
                 training: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """One problem row (preset, run, status "missing", error, run_dir = the sweep dir) per job of every sweep
    holding `run_dirs` that has no run dir of its number; `presets`: run dir -> its preset. `training`: the run dirs
    training now; a sweep holding one of them is still running, and its missing jobs may not have started yet."""
    busy = {Path(p) for p in training}
    rows: list[dict[str, Any]] = []
    by_sweep: dict[Path, list[Path]] = {}
    for run_dir in run_dirs:
        by_sweep.setdefault(run_dir.parent, []).append(run_dir)
    for sweep_dir, dirs in by_sweep.items():
        jobs = sweep_jobs(sweep_dir)
        numbers = {n for n in (job_number(d.name) for d in dirs) if n is not None}
        if not jobs or not numbers:
            continue
        swept = _swept(jobs)
        preset = presets[dirs[0]]
        error = f"no run dir: {MULTIRUN_FILE} of this sweep launched {len(jobs)} jobs"
        if n_busy := len(busy.intersection(dirs)):
            error += f"; not started yet, perhaps: the sweep is still running ({n_busy} training now)"
        for k in sorted(set(range(len(jobs))) - numbers):
            rows.append({"preset": preset, "run": " ".join([f"job {k}", *(jobs[k][i] for i in swept)]),
                         "status": MISSING, "run_dir": str(sweep_dir), "error": error})
    return rows
