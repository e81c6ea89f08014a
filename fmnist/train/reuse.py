"""`trainer.reuse_identical`: copy the results of a completed run of the very same configuration instead of
training it again.

The study's presets share cells on purpose (each preset is a self-contained comparison): the base ResNet9 run
of a seed is a cell of eight presets, ResNet18 at width 64 of two. With the option on (`python -m fmnist.study`
turns it on), a run first looks for an identical completed run among the run dirs two levels above its own
(`<root>/<sweep>/<run>`: the other presets of the study, or the other sweeps of the day) and, when one holds
what the analysis reads, copies its results into its own run dir and records where they came from
(summary.json `reused_from`, relative to this run dir). Identical means the same resolved config, seed
included, up to the keys that do not change what a run computes (`run_dir.NEUTRAL_KEYS`), `name`, and
keys only one of the two configs has (added to conf/ since; see `fmnist.config.differing_keys`), and trained
on the same data (the same `data_fingerprint`, wherever the folder is; the same folder for runs that recorded
none).

Presets run at once (`fmnist.study --concurrent N`, Slurm array jobs) start their shared cell together. A run
with the option on claims its computation first (`claim_computation`: an flock on `<root>/.claims/<key>.lock`):
the first one trains, and an identical run launched meanwhile waits for it and then copies its results. When
the claimant fails or is killed, its claim is released and the next one trains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from fmnist.analysis.dead_neurons import DEAD_UNITS_FILE, DeadStats
from fmnist.config import differing_keys
from fmnist.errors import FmnistError
from fmnist.train.checkpoint import discard_resume_state
from fmnist.train.run_dir import (
    CHECKPOINT_DIR, CLAIMS_DIR, METRICS_FILE, NEUTRAL_KEYS, PREDICTIONS_FILE, SUMMARY_FILE, flock_held, read_summary,
    write_summary,
)

log = logging.getLogger("fmnist")

#: Keys two runs may differ in and still be the same computation.
IDENTITY_IGNORED_KEYS = NEUTRAL_KEYS + ("name",)
#: Files a run must hold to be reused: what the analysis reads (dead_units.json too, when the run has one).
REQUIRED_FILES = (METRICS_FILE, PREDICTIONS_FILE)
#: What is never copied: the run's own Hydra config and log, checkpoints, launcher and W&B folders.
NOT_COPIED = frozenset({SUMMARY_FILE, ".hydra", "train.log", CHECKPOINT_DIR, ".submitit", "wandb"})
#: summary.json fields that describe this run, not the computation it reuses.
OWN_FIELDS = ("run_dir", "config", "choices", "overrides", "command", "process_command")
#: Where the copy was made (summary.json `reused_by`); the copied `hostname` and `slurm_job_id` are the original's.
COPIER_FIELDS = ("hostname", "slurm_job_id")


def computation_key(config: Mapping[str, Any], data_dir: str | Path) -> str:
    """A short hash naming what a run computes: its resolved config without IDENTITY_IGNORED_KEYS, and the
    resolved data folder. Two runs with the same key are identical in find_identical_run's sense."""
    def kept(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out = {}
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if dotted in IDENTITY_IGNORED_KEYS:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # 0.0 == 0 for differing_keys too
            out[str(key)] = kept(value, dotted + ".") if isinstance(value, Mapping) else value
        return out

    text = json.dumps([kept(config), str(Path(data_dir).expanduser().resolve())], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def claim_file(run_dir: Path, config: Mapping[str, Any], data_dir: str | Path) -> Path:
    """The lock file of the claim on this run's computation: `<root>/.claims/<computation_key>.lock`, root being
    two levels above `run_dir`."""
    return Path(run_dir).resolve().parent.parent / CLAIMS_DIR / f"{computation_key(config, data_dir)}.lock"


@contextmanager
def claim_computation(run_dir: Path, config: Mapping[str, Any], data_dir: str | Path) -> Iterator[None]:
    """Hold the claim on this run's computation among the run dirs two levels above `run_dir`, waiting (and
    saying so once) while another process holds it: that process is training the identical run, whose results
    this one can copy once it finishes. The claim is an flock, so it is released when its holder exits, killed
    included. Where no lock can be taken (a read-only folder, a file system without locks) the block runs
    unclaimed."""
    run_dir = Path(run_dir).resolve()
    path = claim_file(run_dir, config, data_dir)

    def wait(holder: str) -> None:
        log.info("an identical run is being trained right now (%s); waiting for it, to copy its results",
                 holder or "another process")

    with flock_held(path, f"pid {os.getpid()} on {socket.gethostname()}, in {run_dir}", wait):
        yield


def find_identical_run(run_dir: Path, config: dict[str, Any], data_dir: str | Path,
                       fingerprint: Callable[[], str] | None = None) -> Path | None:
    """A completed run of the same computation two levels above `run_dir` that holds every file the analysis
    reads, or None. An original is preferred to a run that itself reused one.

    `data.dir` is a neutral key (a study resumes on another machine's copy of the data), so the data are compared
    here instead: by content where the candidate recorded its `data_fingerprint` and `fingerprint` (called at
    most once, only when a candidate needs it) gives this run's, so that a copy of the data elsewhere counts and
    other data put into the same folder does not; else by the folder (summary.json `data_dir`, resolved)."""
    data_dir = str(Path(data_dir).expanduser().resolve())
    run_dir = Path(run_dir).resolve()
    root = run_dir.parent.parent
    own: list[str] = []

    def same_data(summary: dict[str, Any]) -> bool:
        if fingerprint is None or not summary.get("data_fingerprint"):
            return summary.get("data_dir") == data_dir
        if not own:
            own.append(fingerprint())
        return summary["data_fingerprint"] == own[0]

    found: list[tuple[bool, str, Path]] = []
    for summary_path in root.glob(f"*/*/{SUMMARY_FILE}"):
        candidate = summary_path.parent
        if candidate.resolve() == run_dir:
            continue
        summary = read_summary(candidate)
        if (not summary or summary.get("status") != "completed" or not isinstance(summary.get("config"), dict)
                or differing_keys(summary["config"], config, IDENTITY_IGNORED_KEYS) or not _intact(candidate)):
            continue
        if same_data(summary):
            found.append((bool(summary.get("reused_from")), str(candidate), candidate))
    return min(found)[2] if found else None


def _intact(run_dir: Path) -> bool:
    """The run's files a copy would carry are there and readable: metrics.csv and predictions_test.csv not empty,
    and its dead_units.json (when it has one) complete, so that a damaged run is trained again, not copied."""
    if not all((run_dir / name).is_file() and (run_dir / name).stat().st_size for name in REQUIRED_FILES):
        return False
    if (run_dir / DEAD_UNITS_FILE).is_file() and DeadStats.load(run_dir) is None:  # warns, naming the file
        return False
    return True


def _results(run_dir: Path) -> list[Path]:
    """The files and folders of `run_dir` that hold a run's results (what a copy takes), by name."""
    return [item for item in sorted(run_dir.iterdir())
            if item.name not in NOT_COPIED and not item.name.startswith(".")]


def adopt_results(source: Path, run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Copy `source`'s results into `run_dir` and write its summary.json: `source`'s results with this run's
    own fields (`summary`: run dir, config, command, ...), `reused_from` (where they were copied from, itself a
    copy only when no original was found), `reused_at` and `reused_by` (the host and Slurm job that copied them).
    Results of an earlier attempt in `run_dir` are removed first. Returns it."""
    source, run_dir = Path(source), Path(run_dir)
    origin = read_summary(source) or {}
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for item in _results(run_dir):  # an earlier attempt's: not mixed into the copy (a second events file)
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()
        for item in _results(source):
            target = run_dir / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)
    except OSError as exc:
        raise FmnistError(f"cannot copy the results of {source} into {run_dir}: {exc.strerror or exc}") from exc
    discard_resume_state(run_dir)  # an interrupted attempt of this run is no longer needed
    adopted = {**origin, **{k: summary[k] for k in OWN_FIELDS if k in summary}}
    adopted.update(reused_from=os.path.relpath(source.resolve(), run_dir.resolve()),  # one spelling: links, `..`
                   reused_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   reused_by={k: summary.get(k) for k in COPIER_FIELDS})
    write_summary(run_dir, adopted)
    log.info("identical to the completed run %s: its results were copied here (reused_from in summary.json); "
             "trainer.reuse_identical=false trains it again", source)
    return adopted
