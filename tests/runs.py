"""Helpers shared by the tests that make real training runs (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from fmnist.train import run as run_mod

ROOT = Path(__file__).resolve().parents[1]


def compose_train(data_dir: Path, *overrides: str) -> DictConfig:
    """The composed conf/train.yaml for `data_dir` with the given overrides (later ones win)."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"data.dir={data_dir}", *overrides])


def train_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *args]


def run_train_cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a subprocess, output captured."""
    return subprocess.run(train_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def interrupted_at_epoch(cfg: DictConfig, run_dir: Path, monkeypatch: pytest.MonkeyPatch, epoch: int = 2) -> None:
    """Train until the metrics of `epoch` are about to be written, then stop as a preemption would
    (KeyboardInterrupt: the checkpoints of the epochs before are on disk, this epoch's is not)."""
    real_write = run_mod.write_metrics

    def crash_in_epoch(run_dir, rows):
        if len(rows) == epoch:
            raise KeyboardInterrupt("simulated preemption")
        real_write(run_dir, rows)

    with monkeypatch.context() as patch:
        patch.setattr(run_mod, "write_metrics", crash_in_epoch)
        with pytest.raises(KeyboardInterrupt):
            run_mod.train(cfg, run_dir)
