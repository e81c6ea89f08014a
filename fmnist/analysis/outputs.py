"""out_dir as one consistent analysis: everything is written to a staging folder inside it first, and only
when the whole analysis succeeded do its files replace those of the previous analysis. A failure part-way
leaves out_dir as it was; files the analysis does not write (see :func:`generated`) are never touched.

The replacement is fmnist.analysis.publish's: a stop part-way puts the previous analysis back, and one killed
part-way (kill -9) is put back by the next analysis into out_dir."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.publish import publish_files, undo_killed_publish

#: The tables the analysis writes (each as .csv and .parquet; pipeline.write_tables), its summary, and its figure
#: folder.
TABLES = ("runs", "epochs", "cells", "problems", "class_accuracy", "ensembles", "key_churn", "dead_neurons",
          "dead_neurons_by_layer")
META_FILE = "analysis.json"
FIGURE_DIR = "figures"
FIGURE_SUFFIXES = (".pdf", ".png")
STAGING_PREFIX = ".analysis-staging-"


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
        undo_killed_publish(out_dir, STAGING_PREFIX)
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
    try:
        publish_files(staging, out_dir, moves, lambda: generated(out_dir))
    except OSError as exc:
        raise AnalysisError(f"cannot write the analysis to {out_dir}: {exc.strerror or exc}") from exc
