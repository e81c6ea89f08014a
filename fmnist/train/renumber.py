"""A sweep launched again into its folder with a changed grid: the run dirs that moved to another job number.

Hydra numbers the jobs of a sweep by their place in the grid and names their run dirs `<job>_<overrides>`
(conf/train.yaml, `hydra.sweep.subdir`). When a grid changes between two launches into the same folder (a value
added in front, `seed=0` first and the preset's three seeds later: seeds are the inner loop of every study preset),
a run finished or cut off under one number belongs to a job of another number, which would train it again in a new
run dir, and the analysis would count both. So before any job starts, every run dir whose overrides are those of a
job that now has another number is renamed to that job's run dir: the job then skips it or resumes it."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Mapping

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from fmnist.study import expand_grid
from fmnist.train.run_dir import HYDRA_DIR, SUMMARY_FILE, is_busy, read_summary, short_dirname, write_summary

log = logging.getLogger("fmnist")

#: The run-dir pattern this applies to (conf/train.yaml); a sweep with its own `hydra.sweep.subdir` is left alone.
DEFAULT_SUBDIR = "${hydra.job.num}_${fmnist.dirname:${hydra.job.override_dirname}}"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def job_dirnames(config: DictConfig, jobs: list[list[str]] | None = None) -> list[str] | None:
    """The `override_dirname` of every job the sweep `config` launches (`jobs`, where grid_jobs has expanded them
    already), in job order; None unless the sweep uses Hydra's basic sweeper and the default `hydra.sweep.subdir`."""
    hydra = config.hydra
    jobs = grid_jobs(config) if jobs is None else jobs
    if OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir") != DEFAULT_SUBDIR or jobs is None:
        return None
    naming = hydra.job.config.override_dirname
    parser = OverridesParser.create()
    return [short_dirname(get_overrides_dirname(parser.parse_overrides(job), list(naming.exclude_keys),
                                                naming.item_sep, naming.kv_sep)) for job in jobs]


def grid_jobs(config: DictConfig) -> list[list[str]] | None:
    """The override lists of the jobs the sweep `config` launches, in job order (as Hydra writes them: `1e-1` is
    `0.1`); None unless the sweep uses Hydra's basic sweeper. Within a Hydra app (the sweep's own process) its
    config loader expands a `glob(...)` of group options, as the sweeper does."""
    hydra = config.hydra
    if OmegaConf.select(hydra, "sweeper._target_") != BASIC_SWEEPER:
        return None
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    return expand_grid(hydra.sweeper.params or {}, [str(o) for o in hydra.overrides.task], loader)


def grid_error(jobs: list[list[str]]) -> str | None:
    """The one-line error for a sweep that launches no job (`seed=range(0)`, a glob that matches no option: it
    would end at once, "0 completed", exit status 0) or one job twice (`seed=0,0`, `optimizer.lr=0.1,1e-1`: it
    would train the same run twice, in two run dirs that the analysis then counts once, status duplicate)."""
    if not jobs:
        return ("error: this sweep launches no job: one of its values is a sweep of none (a range(...) that is "
                "empty, a glob(...) that matches no option of its group)")
    first: dict[tuple[str, ...], int] = {}
    for num, job in enumerate(jobs):
        same = first.setdefault(tuple(sorted(job)), num)
        if same != num:
            return (f"error: jobs #{same} and #{num} of this sweep are the same run ({' '.join(job)}): a value the "
                    "sweep lists twice (seed=0,0; optimizer.lr=0.1,1e-1 is 0.1 twice); list each value once")
    return None


def renumber_run_dirs(sweep_dir: Path, dirnames: list[str]) -> list[tuple[str, str]]:
    """Rename each run dir `<m>_<d>` of `sweep_dir` to `<k>_<d>` when `d` is the dirname of job k alone (k != m),
    no `<k>_<d>` exists, no other run dir holds `d` and no process is training it (an earlier launch still
    running). Returns the (old, new) names."""
    jobs: dict[str, list[int]] = {}
    for k, dirname in enumerate(dirnames):
        jobs.setdefault(dirname, []).append(k)
    renamed = move_to_jobs(Path(sweep_dir), jobs)
    for old, new in renamed:
        log.warning("run dir %s is job #%d of the changed grid: renamed %s", old, split_run_name(new)[0], new)
    return renamed


def move_to_jobs(sweep_dir: Path, jobs: Mapping[str, list[int]]) -> list[tuple[str, str]]:
    """Rename each run dir `<m>_<d>` of `sweep_dir` to `<k>_<d>` when `jobs[d]` is [k] alone (k != m), no `<k>_<d>`
    exists, no other run dir holds `d` and no process is training it; the renamed runs' summaries and the links
    to them follow (follow_renames). Returns the (old, new) names."""
    found: dict[str, list[Path]] = {}
    for path in run_dirs(sweep_dir):
        found.setdefault(split_run_name(path.name)[1], []).append(path)
    renamed = []
    for dirname, dirs in found.items():
        numbers = jobs.get(dirname, [])
        if len(numbers) != 1 or len(dirs) != 1:
            continue
        old, new = dirs[0], dirs[0].with_name(f"{numbers[0]}_{dirname}")
        if old != new and is_busy(old):  # an earlier launch is training it right now: leave it where it is
            log.warning("run dir %s is being trained by another process: not renamed to %s", old.name, new.name)
            continue
        if old != new and not new.exists():
            old.rename(new)
            renamed.append((old.name, new.name))
    if renamed:
        follow_renames(sweep_dir, dict(renamed))
    return renamed


def split_run_name(name: str) -> tuple[int, str] | tuple[None, None]:
    """A run dir's name `<job>_<override dirname>` as (job, dirname); (None, None) for another name."""
    match = re.fullmatch(r"(\d+)_(.*)", name, re.DOTALL)
    return (int(match.group(1)), match.group(2)) if match else (None, None)


def run_dirs(sweep_dir: Path) -> list[Path]:
    """The run dirs `<job>_<dirname>` of `sweep_dir`: those holding Hydra's .hydra/ or a summary.json (the study's
    device kit carries summaries alone, fmnist.study_transfer)."""
    if not sweep_dir.is_dir():
        return []
    return [path for path in sorted(sweep_dir.iterdir()) if split_run_name(path.name)[0] is not None
            and ((path / HYDRA_DIR).is_dir() or (path / SUMMARY_FILE).is_file())]


def follow_renames(sweep_dir: Path, renamed: dict[str, str]) -> None:
    """Keep summary.json consistent with the new names: each renamed run's `run_dir` (renamed in the folder it
    records), and the `reused_from` links (relative paths) of the runs beside the sweep (`<root>/<sweep>/<run>`,
    where reuse looks) that copied one."""
    moved = {(sweep_dir / old).resolve(): sweep_dir / new for old, new in renamed.items()}
    for new in moved.values():
        summary = read_summary(new)
        if summary and "run_dir" in summary:
            _rewrite_summary(new, {**summary, "run_dir": str(Path(summary["run_dir"]).with_name(new.name))})
    for path in sweep_dir.resolve().parent.glob(f"*/*/{SUMMARY_FILE}"):
        summary = read_summary(path.parent)
        link = summary.get("reused_from") if summary else None
        if isinstance(link, str) and (target := moved.get((path.parent / link).resolve())) is not None:
            _rewrite_summary(path.parent, {**summary, "reused_from": os.path.relpath(target.resolve(), path.parent)})


def _rewrite_summary(run_dir: Path, summary: dict) -> None:
    """write_summary, keeping summary.json's time: the run did not finish again (the sweep line counts it skipped)."""
    stat = (run_dir / SUMMARY_FILE).stat()
    write_summary(run_dir, summary)
    os.utime(run_dir / SUMMARY_FILE, ns=(stat.st_atime_ns, stat.st_mtime_ns))
