"""Replace files of a folder by new ones from a staging folder inside it, all or nothing: the analysis's out_dir
(fmnist.analysis.outputs) and the report's generated files (fmnist.analysis.report).

The replacement is a series of renames. The files it replaces or removes are first linked into the staging folder's
BACKUP_DIR and the renames listed in its JOURNAL (locked while they run), so a stop part-way (Ctrl-C, SIGTERM, an
OSError) puts the previous files back, and one killed part-way (kill -9) is put back by :func:`undo_killed_publish`
at the next start. Publishes into one folder take turns (:func:`locked`): two analyses written into one out_dir or
report_dir at once (analyze.py run twice) leave it holding all the files of the one that published last."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

log = logging.getLogger("fmnist.analysis")

#: In a staging folder while its files replace the previous ones: the targets (relative to the folder), and the
#: previous files among them or removed (hard links).
JOURNAL = ".publishing.json"
BACKUP_DIR = ".previous"


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock on the folder itself: no lock file) while the block runs, waiting
    (with one line saying so) while another process holds it: its publish finishes first, whole."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is writing its files into %s: waiting for it to finish", folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: publishes cannot take turns there
            pass
        yield
    finally:
        os.close(fd)


def publish_files(staging: Path, folder: Path, moves: list[tuple[Path, Path]],
                  stale: Callable[[], Iterable[Path]]) -> None:
    """Rename each (new file in `staging`, target in `folder`) of `moves` and remove the files of `folder` that
    `stale` lists (asked once `folder` is locked: the previous files are those of the publish before, whichever
    process made it), all or nothing. Raises OSError (a target that is a folder where a file goes, or the other way
    round, before anything moved); a stop part-way puts the previous files back before it is passed on."""
    with locked(folder):
        _publish_locked(staging, folder, moves, stale())


def _publish_locked(staging: Path, folder: Path, moves: list[tuple[Path, Path]], stale: Iterable[Path]) -> None:
    stale = sorted(set(stale) - {target for _, target in moves})
    folders = {target.parent for _, target in moves}
    for target in sorted({target for _, target in moves} | folders):  # before anything moves: all or nothing
        if target.exists() and target.is_dir() != (target in folders):
            is_dir = target.is_dir()
            raise (IsADirectoryError if is_dir else NotADirectoryError)(
                errno.EISDIR if is_dir else errno.ENOTDIR, f"{target} is {'a folder' if is_dir else 'a file'} "
                                                           f"(move it away)")
    _back_up([t for _, t in moves if t.exists() or t.is_symlink()] + stale, folder, staging / BACKUP_DIR)
    with open(staging / JOURNAL, "w", encoding="utf-8") as journal:
        with contextlib.suppress(OSError):  # a file system without locks: a killed publish is not undone then
            fcntl.flock(journal, fcntl.LOCK_EX)
        json.dump([str(t.relative_to(folder)) for _, t in moves], journal)
        journal.flush()
        try:
            for parent in sorted(folders):  # before any file moves
                parent.mkdir(parents=True, exist_ok=True)
            for path, target in moves:
                os.replace(path, target)
            for path in stale:
                path.unlink()
        except BaseException:
            _roll_back(staging, folder)
            raise
        os.unlink(staging / JOURNAL)
    _remove_empty_folders(folder, [path.parent for path in stale])


def undo_killed_publish(folder: Path, staging_prefix: str) -> None:
    """Put back the previous files where a publish into `folder` was killed part-way (a staging folder named
    `staging_prefix`* still holds a journal no process has locked), and remove that staging folder."""
    with locked(folder):
        _undo_killed(folder, staging_prefix)


def _undo_killed(folder: Path, staging_prefix: str) -> None:
    for staging in sorted(folder.glob(f"{staging_prefix}*")):
        try:
            with open(staging / JOURNAL, "r+", encoding="utf-8") as journal:
                fcntl.flock(journal, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _roll_back(staging, folder)
        except (OSError, ValueError):  # no journal (not publishing), or one still being written or replayed
            continue
        shutil.rmtree(staging, ignore_errors=True)


def _back_up(files: list[Path], folder: Path, backup: Path) -> None:
    """Hard links (copies where there are none) to `files` of `folder` in `backup`, at the same relative paths."""
    for path in files:
        kept = backup / path.relative_to(folder)
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, kept, follow_symlinks=False)
        except OSError:
            shutil.copy2(path, kept, follow_symlinks=False)


def _roll_back(staging: Path, folder: Path) -> None:
    """Put back the previous files that the renames journaled in `staging` began to replace."""
    targets = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
    backup = staging / BACKUP_DIR
    for rel in targets:
        if not ((backup / rel).exists() or (backup / rel).is_symlink()):
            (folder / rel).unlink(missing_ok=True)  # a file the previous ones did not have
    for kept in sorted(backup.rglob("*")):
        if kept.is_file() or kept.is_symlink():
            os.replace(kept, folder / kept.relative_to(backup))
    os.unlink(staging / JOURNAL)
    _remove_empty_folders(folder, [(folder / rel).parent for rel in targets])


def _remove_empty_folders(folder: Path, parents: Iterable[Path]) -> None:
    """Remove each of `parents` (inside `folder`, never `folder` itself) and its parents up to `folder` that are
    empty: those a publish made for files it then took back, or emptied of stale files."""
    for parent in sorted(set(parents), key=lambda p: len(p.parts), reverse=True):
        while parent != folder and folder in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty, or gone
                break
            parent = parent.parent
