"""Helpers shared by the tests that make real training runs (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

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
