"""Hydra callbacks (enabled in conf/train.yaml, `hydra.callbacks`).

`SweepReport` ends every `-m` sweep, whatever the launcher, with one line

    sweep: 5 completed, 1 failed, 2 skipped (multirun/2026-11-27/10-00-00_stage2_skip_3fa9c1)

("5 completed (2 copied from identical runs)" when trainer.reuse_identical copied a run's results), followed by
one line per failed job, and makes the process exit with status 1 when any job failed or was never started (a
launcher's deadline: `not_started`). It reads the run dirs' summary.json files, so it also counts jobs that ran
elsewhere (Slurm nodes, pool workers) and jobs that died without a word (killed, out of host memory): a run dir
of this sweep whose summary is missing or still says `running` counts as failed, and so does one where this
sweep's job was refused (run_dir.REFUSED_FILE: its summary.json still describes the run that was there) or left
alone because another process is training it (the same sweep launched twice: its line says so, not "killed").

It also puts the command line that launched the run or sweep into the environment (FMNIST_COMMAND), which
every job inherits, wherever it runs (sbatch passes the environment on), so each run's summary.json
records the command the user typed rather than a worker's own command line. Before a run or sweep starts it
checks that the output folder can be written (one line and exit status 1 when not)."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fmnist.errors import first_line
from fmnist.train.entry import register_resolvers
from fmnist.train.renumber import job_dirnames, renumber_run_dirs, grid_error, grid_jobs
from fmnist.train.run import LAUNCH_COMMAND_ENV
from fmnist.train.run_dir import SUMMARY_FILE, is_busy, read_summary, refusal_since

register_resolvers()  # ${fmnist.unique:} in hydra.sweep.dir, whoever imports this module first

#: Seconds of slack when deciding from file times whether a run dir belongs to this sweep (file systems
#: round times; a shared file system's clock may differ slightly from this machine's).
CLOCK_SLACK_S = 2.0

#: How Hydra's basic sweeper refuses a sweep it cannot expand (interval(...)).
UNSUPPORTED_SWEEP = "does not support sweep type"

#: Folders of a sweep dir that are launcher bookkeeping, not run dirs.
BOOKKEEPING_DIRS = (".submitit", ".pool")


@dataclass
class SweepOutcome:
    sweep_dir: Path
    completed: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    copied: list[Path] = field(default_factory=list)  # completed by copying an identical run (reuse_identical)

    def line(self) -> str:
        source = "an identical run" if len(self.copied) == 1 else "identical runs"
        copied = f" ({len(self.copied)} copied from {source})" if self.copied else ""
        late = f", {len(self.not_started)} not started" if self.not_started else ""
        return (f"sweep: {len(self.completed)} completed{copied}, {len(self.failed)} failed, "
                f"{len(self.skipped)} skipped{late} ({self.sweep_dir})")


def _run_dirs(sweep_dir: Path) -> list[Path]:
    """Every run dir under `sweep_dir` (a folder holding Hydra's .hydra/), in job order."""
    found = []
    for hydra_dir in sweep_dir.rglob(".hydra"):
        rel = hydra_dir.relative_to(sweep_dir).parts
        if any(part in BOOKKEEPING_DIRS for part in rel):
            continue
        found.append(hydra_dir.parent)

    def job_number(p: Path) -> tuple[int, str]:
        head = p.name.split("_", 1)[0]
        return (int(head) if head.isdigit() else 1 << 30, str(p))

    return sorted(found, key=job_number)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def completed_before(run_dir: Path, since: float) -> bool:
    """Whether `run_dir`'s summary.json was written before `since` (epoch seconds, less CLOCK_SLACK_S): a completed
    run that a job launched at `since` skipped rather than trained."""
    written = _mtime(Path(run_dir) / SUMMARY_FILE)
    return written is not None and written < since - CLOCK_SLACK_S


def sweep_outcome(sweep_dir: str | Path, since: float | None = None) -> SweepOutcome:
    """Count the outcomes of the jobs under `sweep_dir` launched at or after `since` (epoch seconds; None
    = all run dirs there). A job counts as launched when Hydra wrote its .hydra/overrides.yaml, which it
    does for every job, a skipped one included."""
    sweep_dir = Path(sweep_dir)
    outcome = SweepOutcome(sweep_dir)
    if not sweep_dir.is_dir():
        return outcome
    start = None if since is None else since - CLOCK_SLACK_S
    for run_dir in _run_dirs(sweep_dir):
        launched = _mtime(run_dir / ".hydra" / "overrides.yaml")
        if start is not None and (launched is None or launched < start):
            continue  # a run dir left by an earlier sweep into the same folder
        refused = None if start is None else refusal_since(run_dir, start)
        summary = read_summary(run_dir)
        status = (summary or {}).get("status")
        if refused is not None:  # the run dir's own run is intact; this sweep's job was not run
            outcome.failed.append((run_dir, refused))
        elif status == "completed":
            if since is not None and completed_before(run_dir, since):
                outcome.skipped.append(run_dir)
            else:
                outcome.completed.append(run_dir)
                if summary.get("reused_from"):
                    outcome.copied.append(run_dir)
        elif status == "failed":
            outcome.failed.append((run_dir, str(summary.get("error") or "failed (no error recorded)")))
        elif is_busy(run_dir):  # this sweep's job found another process training it (RunDirBusy) and left it alone
            outcome.failed.append((run_dir, "another process is training it right now (the same sweep launched twice "
                                            "into one folder?): this sweep's job left it alone"))
        elif summary is None:
            outcome.failed.append((run_dir, "no summary.json: the job died before training started"))
        else:
            outcome.failed.append((run_dir, f"the job ended with status {status!r}: it was killed or lost"))
    return outcome


#: Jobs of the current sweep that a launcher did not start (gpu_pool's deadline); the launcher runs in the
#: process that ends the sweep, so SweepReport reads them from here.
_NOT_STARTED: list[str] = []


def report_not_started(overrides: list[str]) -> None:
    """Called by a launcher for a job of this sweep that it did not start."""
    _NOT_STARTED.append(" ".join(overrides))


def check_output_dir(path: Path) -> None:
    """Exit with one line when the output folder cannot be created or written: Hydra would otherwise stop with
    a traceback while setting up the run's log file."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        print(f"error: cannot write the output folder {path}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def _sweep_grid(config: DictConfig) -> tuple[list[list[str]] | None, str | None]:
    """The jobs of the sweep `config` (renumber.grid_jobs) and renumber.grid_error for them, or the one line for a
    sweep the basic sweeper cannot expand (`interval(...)`: the sweeper stops with a traceback); (None, None) when
    its grid cannot be expanded otherwise (left to the sweeper, which says why)."""
    try:
        jobs = grid_jobs(config)
    except HydraException as exc:
        if UNSUPPORTED_SWEEP not in str(exc):
            return None, None
        return None, (f"error: {first_line(exc)}: interval(...) is for sweepers that sample (Optuna's, Ax's); list "
                      "the values, or use range(...) or choice(...)")
    except Exception:
        return None, None
    return jobs, grid_error(jobs) if jobs is not None else None


def _export_command() -> None:
    os.environ[LAUNCH_COMMAND_ENV] = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])


class SweepReport(Callback):
    """Prints the sweep's outcome line and exits with status 1 when any job failed (see module doc)."""

    def __init__(self, exit_on_failure: bool = True) -> None:
        self.exit_on_failure = exit_on_failure
        self.started: float | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_output_dir(Path(str(config.hydra.run.dir)))
        _export_command()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        _NOT_STARTED.clear()
        _export_command()
        jobs, error = _sweep_grid(config)
        if error:  # before anything is written
            print(error, file=sys.stderr, flush=True)
            sys.exit(1)
        # Resolve the sweep dir here, in the submitting process: the resolver cache travels with the config
        # to every job (and to requeued Slurm jobs), so they all agree on it.
        sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        check_output_dir(sweep_dir)
        try:  # a grid changed since an earlier launch into this folder: its runs keep theirs (fmnist.train.renumber)
            dirnames = job_dirnames(config, jobs)
            if dirnames is not None:
                renumber_run_dirs(sweep_dir, dirnames)
        except Exception as exc:  # bookkeeping never stops a sweep
            print(f"warning: cannot match the run dirs of {sweep_dir} with this grid: {first_line(exc)}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        outcome = sweep_outcome(Path(str(config.hydra.sweep.dir)), since=self.started)
        outcome.not_started = list(_NOT_STARTED)
        print(outcome.line(), flush=True)
        for run_dir, error in outcome.failed:
            print(f"  failed: {run_dir.name}: {error}", flush=True)
        for overrides in outcome.not_started:
            print(f"  not started: {overrides}", flush=True)
        if (outcome.failed or outcome.not_started) and self.exit_on_failure:
            sys.exit(1)
