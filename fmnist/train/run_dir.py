"""The run-directory contract: the only interface between training and analysis.

A run directory holds (all written atomically: temp file in the same folder, then rename):
    .hydra/                 Hydra's config.yaml, hydra.yaml, overrides.yaml
    metrics.csv             one row per finished epoch (METRIC_COLUMNS)
    summary.json            status running/completed/failed/interrupted and the run's results (see write_summary)
    checkpoints/last.pt     state after the latest epoch (resume)
    checkpoints/best.pt     model weights at the best validation accuracy
    predictions_test.csv    id, label (when known), pred, p0..p9
    dead_units.json         dead units / sparsity of the best weights on the validation split (with a val split)
    train.log               the log (Hydra's file handler)
    tensorboard/            TensorBoard scalars (logger=tensorboard)
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import yaml

from fmnist.errors import FmnistError

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions_test.csv"
CHECKPOINT_DIR = "checkpoints"
HYDRA_DIR = ".hydra"
#: A job refused before training (its run dir holds another configuration's run, or the rerun is invalid) leaves that
#: run as it was, summary.json included; this hidden file (never copied by reuse) tells the sweep's report it failed.
REFUSED_FILE = ".refused"
#: Held (flock) by the process training the run dir, so that a second launch of the same job waits for nothing and
#: writes nothing: two identical sweeps started into one folder would otherwise both train every job in it.
LOCK_FILE = ".lock"
#: Beside the sweeps (`<root>/.claims/`, root = two levels above a run dir): one lock file per computation trained
#: with trainer.reuse_identical=true, held while it trains (fmnist.train.reuse.claim_computation).
CLAIMS_DIR = ".claims"

#: Config keys that change how a run is launched, logged, checkpointed or stepped, or where its data folder is,
#: not what it computes: a run may resume, be skipped as completed or be reused under other values of these (the
#: data themselves are compared by content: fmnist.train.data_identity).
#: conf/train.yaml's `hydra.job.config.override_dirname.exclude_keys` keeps them out of run-dir names too.
NEUTRAL_KEYS: tuple[str, ...] = (
    "trainer.force", "trainer.progress", "trainer.checkpoint_every", "trainer.compile", "trainer.cuda_graphs",
    "trainer.reuse_identical", "logger", "device", "data.dir", "data.cache_dir",
)

#: Bytes a run dir's overrides part may take: a folder name holds 255 (Linux, macOS), less room for `<job>_` with
#: a job number of up to 10 digits (the same for every job number, so a renumbered run dir keeps it).
DIRNAME_MAX_BYTES = 255 - 11


def short_dirname(dirname: str) -> str:
    """A job's `override_dirname` fitted to DIRNAME_MAX_BYTES (`${fmnist.dirname:...}` in conf/train.yaml's
    `hydra.sweep.subdir`): as it is when it fits, else its first whole overrides that fit, then `,~` and 12 hex
    digits of the hash of the whole (the full overrides stay in the run's .hydra/overrides.yaml)."""
    whole = dirname.encode()
    if len(whole) <= DIRNAME_MAX_BYTES:
        return dirname
    tail = ",~" + hashlib.sha256(whole).hexdigest()[:12]
    head = whole[:DIRNAME_MAX_BYTES - len(tail)].decode(errors="ignore")
    if "," in head:
        head = head[:head.rindex(",")]
    return head + tail


#: metrics.csv columns, in order. Wall-clock columns (epoch_time_s, images_per_s) are the only
#: ones that differ between two runs with the same seed on CPU.
METRIC_COLUMNS: tuple[str, ...] = (
    "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_s", "images_per_s",
)
TIMING_COLUMNS: tuple[str, ...] = ("epoch_time_s", "images_per_s")
#: Appended to metrics.csv when the run tracks dead units (trainer.track_dead=true).
DEAD_COLUMNS: tuple[str, ...] = ("dead_fraction", "zero_fraction")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old or the new file, never a partial one."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FmnistError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:  # first: the descriptor is closed whatever fails below
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise FmnistError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    """Atomic JSON (NaN/inf become null so every JSON reader accepts the file)."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_rows_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Atomic CSV of dict rows (missing keys become empty cells)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def write_metrics(run_dir: Path, rows: list[Mapping[str, Any]]) -> None:
    """Rewrite metrics.csv with every epoch row so far (small; atomic rewrite beats append)."""
    extra = DEAD_COLUMNS if rows and DEAD_COLUMNS[0] in rows[0] else ()
    write_rows_csv(Path(run_dir) / METRICS_FILE, METRIC_COLUMNS + extra, rows)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary.json, or None when absent, unreadable or not a JSON object."""
    path = Path(run_dir) / SUMMARY_FILE
    try:
        summary = read_json(path)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


#: The error class of a run whose loss became NaN/inf (fmnist.train.run.TrainingDiverged).
DIVERGED = "TrainingDiverged"


def is_finished(summary: Mapping[str, Any] | None) -> bool:
    """Completed, or failed by diverging: a result that training again would repeat (runs are seeded and
    deterministic), so a resumed sweep skips it. Other failures and interrupted runs are not finished."""
    return bool(summary) and (summary.get("status") == "completed" or (
        summary.get("status") == "failed" and str(summary.get("error") or "").startswith(DIVERGED)))


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    write_json(Path(run_dir) / SUMMARY_FILE, summary)


def restore_hydra_record(run_dir: Path, summary: Mapping[str, Any]) -> list[str]:
    """Rewrite .hydra/overrides.yaml and config.yaml from the run `summary` describes (its `overrides` and
    resolved `config`). Hydra writes .hydra/ for every job before the job starts, also for a job that is then
    refused because the run dir holds another configuration's run; this puts that run's record back. Returns the
    files rewritten (none for a summary that recorded neither)."""
    hydra_dir = Path(run_dir) / HYDRA_DIR
    written = []
    for name, key in (("overrides.yaml", "overrides"), ("config.yaml", "config")):
        value = summary.get(key)
        if value is not None:
            atomic_write_text(hydra_dir / name, yaml.safe_dump(value, sort_keys=False))
            written.append(name)
    return written


def note_refusal(run_dir: Path, error: str) -> None:
    """Record that a job launched into `run_dir` was refused with `error` (see REFUSED_FILE); best effort."""
    try:
        atomic_write_text(Path(run_dir) / REFUSED_FILE, error + "\n")
    except FmnistError:
        pass


def refusal_since(run_dir: Path, since: float) -> str | None:
    """The error of a job refused in `run_dir` at or after `since` (epoch seconds), else None."""
    path = Path(run_dir) / REFUSED_FILE
    try:
        return path.read_text(encoding="utf-8").strip() if path.stat().st_mtime >= since else None
    except OSError:
        return None


class RunDirBusy(FmnistError):
    """Another process is training this run dir right now."""


@contextlib.contextmanager
def flock_held(path: Path, note: str, busy: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive flock on `path` (made with its folder) while the block runs, with `note` written into it
    for others to read. When another process holds it, `busy` gets what that process wrote ("" if nothing): it
    raises to give up, or returns to wait for the lock. Where no lock can be taken (a read-only folder, a file
    system without locks) the block runs unlocked. An flock goes with its holder, killed included."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            busy(handle.read().strip())
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system
            yield
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"{note}\n")
        handle.flush()
        yield


@contextlib.contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir`'s lock while training it; raise RunDirBusy at once when another process holds it (its pid is
    in the message). Where no lock can be taken (a read-only run dir of a finished run, a file system without
    locks) the block runs unlocked: a write it needs then fails with its own message."""
    run_dir = Path(run_dir)

    def refuse(holder: str) -> None:
        raise RunDirBusy(f"{run_dir} is being trained by another process right now (pid {holder or 'unknown'}), e.g. "
                         f"the same sweep launched twice into one folder; this job leaves it alone")

    with flock_held(run_dir / LOCK_FILE, str(os.getpid()), refuse):
        remove_temp_files(run_dir)
        yield


def remove_temp_files(run_dir: Path) -> None:
    """Remove the temp files of atomic writes that a kill -9 cut short (`.<name>.<random>.tmp`: see
    atomic_write_bytes; `.previous.pt.<pid>.tmp`) in `run_dir`, its .hydra/ and its checkpoints/. Only for the
    process holding the run dir's lock: nobody else writes there then."""
    for folder in (run_dir, run_dir / HYDRA_DIR, run_dir / CHECKPOINT_DIR):
        for path in folder.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()


def is_busy(run_dir: Path) -> bool:
    """Whether another process holds `run_dir`'s lock (is training it) right now."""
    return lock_busy(Path(run_dir) / LOCK_FILE)


def lock_busy(path: Path) -> bool:
    """Whether another process holds the flock on `path` right now (False without such a file, or without locks)."""
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no lock file (never trained here), or no locks on this file system
        return False
    return False
