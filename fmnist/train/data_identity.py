"""Whether a run dir's finished run or checkpoint was trained on the data a new launch reads.

`data.dir` is a neutral key (`run_dir.NEUTRAL_KEYS`): a study resumes, skips and reuses runs on another machine's
copy of the data. What must match is the data themselves, by `resplit.data_fingerprint` (the ids, labels and
images of the folder): a copy elsewhere counts as the same data, another split or another folder's images do not."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fmnist.data.prepare import ensure_resplit
from fmnist.data.resplit import data_fingerprint, dataset_folder, load_resplit


def run_data_fingerprint(cfg: DictConfig, build: bool = True) -> str | None:
    """The data_fingerprint of the folder `cfg.data.dir` names: built first when missing and `build` (as training
    would), else None when missing. Computed once per folder state in a process (a sweep checks many jobs)."""
    if build:
        folder = ensure_resplit(cfg.data.dir, auto_prepare=cfg.data.auto_prepare, mode=cfg.data.prepare_mode)
    else:
        folder = dataset_folder(cfg.data.dir)
        if not folder.is_dir():
            return None
    cache_dir = cfg.data.get("cache_dir")
    return _fingerprint(str(folder.resolve()), None if cache_dir is None else str(cache_dir), _stamp(folder))


def other_data(recorded: dict[str, Any], cfg: DictConfig, fingerprint: str | None = None,
               build: bool = True) -> str | None:
    """How the data a run dir's run was trained on (`recorded`: its summary.json or checkpoint, with
    `data_fingerprint` and `data_dir`) differ from those `cfg` reads, as a phrase; None when they are the same,
    or cannot be compared (nothing recorded; the folder missing and not `build`). `fingerprint` is this launch's,
    when already known; otherwise a folder recorded under the same path is taken as the same data, without
    reading it."""
    before = recorded.get("data_fingerprint")
    if not before:
        return None
    if fingerprint is None:
        if recorded.get("data_dir") and Path(recorded["data_dir"]) == dataset_folder(cfg.data.dir).resolve():
            return None
        fingerprint = run_data_fingerprint(cfg, build)
        if fingerprint is None:
            return None
    if fingerprint == before:
        return None
    return (f"trained on other data (data_fingerprint {before}, read from {recorded.get('data_dir') or 'a folder'}) "
            f"than data.dir={cfg.data.dir} holds (data_fingerprint {fingerprint})")


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of the folder's files: a changed file is another folder state."""
    return tuple(sorted((p.name, s.st_size, s.st_mtime_ns) for p in folder.iterdir()
                        if not p.name.startswith(".") and p.is_file() for s in [p.stat()]))


@lru_cache(maxsize=8)
def _fingerprint(folder: str, cache_dir: str | None, stamp: tuple[tuple[str, int, int], ...]) -> str:
    return data_fingerprint(load_resplit(folder, cache_dir=cache_dir))
