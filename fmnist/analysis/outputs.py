"""out_dir as one consistent analysis: everything is written to a staging folder inside it first, and only
when the whole analysis succeeded do its files replace those of the previous analysis. A failure part-way
leaves out_dir as it was; files the analysis does not write (see :func:`generated`) are never touched.

The replacement itself is a series of renames: the files it replaces or removes are first linked into the staging
folder's BACKUP_DIR and the renames listed in its JOURNAL (locked while they run), so a stop part-way puts the
previous analysis back, and one killed part-way (kill -9) is put back by the next analysis into out_dir."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from fmnist.analysis.errors import AnalysisError

#: The tables the analysis writes (each as .csv and .parquet), its summary, and its figure folder.
TABLES = ("runs", "epochs", "cells", "problems", "dead_neurons", "dead_neurons_by_layer")
META_FILE = "analysis.json"
FIGURE_DIR = "figures"
FIGURE_SUFFIXES = (".pdf", ".png")
STAGING_PREFIX = ".analysis-staging-"
#: In a staging folder while its files replace the previous analysis's: the targets (relative to out_dir), and the
#: previous analysis's files among them or removed by it (hard links).
JOURNAL = ".publishing.json"
BACKUP_DIR = ".previous"


def generated(out_dir: Path) -> list[Path]:
    """The files in `out_dir` that the analysis there wrote: the tables, analysis.json, and the figures its
    analysis.json lists (figures/<name>.pdf|png; a file of one's own in figures/ is not one of them)."""
    files = [out_dir / f"{name}.{ext}" for name in TABLES for ext in ("csv", "parquet")] + [out_dir / META_FILE]
    try:
        names = json.loads((out_dir / META_FILE).read_text()).get("figures") or []
    except (OSError, ValueError, AttributeError):  # none, or damaged: no figure is known to be the analysis's
        names = []
    files += [out_dir / FIGURE_DIR / f"{name}{suffix}" for name in names if isinstance(name, str)
              for suffix in FIGURE_SUFFIXES]
    return [p for p in files if p.is_file() or p.is_symlink()]


@contextlib.contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A fresh staging folder inside `out_dir` to write the analysis to; when the block succeeds, its files
    replace the previous analysis's (:func:`publish`). The staging folder is removed either way, and so is
    `out_dir` when this call created it and the block failed."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        undo_killed_publish(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    except OSError as exc:
        raise AnalysisError(f"cannot write to out_dir {out_dir}: {exc.strerror or exc}") from exc
    try:
        yield staging
        publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()


def publish(staging: Path, out_dir: Path) -> None:
    """Move the files of `staging` into `out_dir` (replacing those of the same name), then remove the files of
    the previous analysis that this one did not write (a figure of a preset no longer analysed, ...)."""
    moves = [(p, out_dir / p.relative_to(staging)) for p in sorted(staging.rglob("*")) if p.is_file()]
    stale = set(generated(out_dir)) - {target for _, target in moves}
    folders = {target.parent for _, target in moves}
    for target in sorted({target for _, target in moves} | folders):  # before anything moves: all or nothing
        if target.exists() and target.is_dir() != (target in folders):
            kind = "a folder" if target.is_dir() else "a file"
            raise AnalysisError(f"cannot write the analysis to {out_dir}: {target} is {kind} (move it away)")
    try:
        _back_up([t for _, t in moves if t.exists() or t.is_symlink()] + sorted(stale), out_dir, staging / BACKUP_DIR)
        with open(staging / JOURNAL, "w", encoding="utf-8") as journal:
            with contextlib.suppress(OSError):  # a file system without locks: a killed publish is not undone then
                fcntl.flock(journal, fcntl.LOCK_EX)
            json.dump([str(t.relative_to(out_dir)) for _, t in moves], journal)
            journal.flush()
            try:
                for folder in sorted(folders):  # before any file moves
                    folder.mkdir(parents=True, exist_ok=True)
                for path, target in moves:
                    os.replace(path, target)
                for path in stale:
                    path.unlink()
            except BaseException:
                _roll_back(staging, out_dir)
                raise
            os.unlink(staging / JOURNAL)
        _remove_empty_figures(out_dir)
    except OSError as exc:
        raise AnalysisError(f"cannot write the analysis to {out_dir}: {exc.strerror or exc}") from exc


def _back_up(files: list[Path], out_dir: Path, backup: Path) -> None:
    """Hard links (copies where there are none) to `files` of `out_dir` in `backup`, at the same relative paths."""
    for path in files:
        kept = backup / path.relative_to(out_dir)
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, kept, follow_symlinks=False)
        except OSError:
            shutil.copy2(path, kept, follow_symlinks=False)


def _roll_back(staging: Path, out_dir: Path) -> None:
    """Put back the previous analysis that the renames journaled in `staging` began to replace."""
    targets = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
    backup = staging / BACKUP_DIR
    for rel in targets:
        if not ((backup / rel).exists() or (backup / rel).is_symlink()):
            (out_dir / rel).unlink(missing_ok=True)  # a file the previous analysis did not have
    for kept in sorted(backup.rglob("*")):
        if kept.is_file() or kept.is_symlink():
            os.replace(kept, out_dir / kept.relative_to(backup))
    os.unlink(staging / JOURNAL)
    _remove_empty_figures(out_dir)


def _remove_empty_figures(out_dir: Path) -> None:
    figures = out_dir / FIGURE_DIR
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()


def undo_killed_publish(out_dir: Path) -> None:
    """Put back the previous analysis where an analysis into `out_dir` was killed while replacing it (its staging
    folder still holds a journal no process has locked), and remove that staging folder."""
    for staging in sorted(out_dir.glob(f"{STAGING_PREFIX}*")):
        try:
            with open(staging / JOURNAL, "r+", encoding="utf-8") as journal:
                fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _roll_back(staging, out_dir)
        except (OSError, ValueError):  # no journal (not publishing), or one still being written or replayed
            continue
        shutil.rmtree(staging, ignore_errors=True)
