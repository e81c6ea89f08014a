"""Makefile targets on a fresh clone (no .venv yet): what they would do, by `make -n` (nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(tmp_path: Path, *args: str) -> str:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return subprocess.run(["make", "-n", *args], cwd=tmp_path, capture_output=True, text=True, check=True).stdout


def test_report_without_sweeps_says_how_before_installing_anything(tmp_path: Path) -> None:
    plan = dry_run(tmp_path, "report")
    assert "-m venv" not in plan and "pip install" not in plan
    assert "usage: make report SWEEPS=" in plan
    plan = dry_run(tmp_path, "report", "SWEEPS=multirun/a multirun/b")
    assert "-m venv" in plan and "analyze.py 'sweep_dir=[multirun/a,multirun/b]' report=true" in plan
