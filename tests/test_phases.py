"""Phase times of a run's wall time (fmnist.train.phases)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmnist.train import phases

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_process_age_counts_from_the_process_start() -> None:
    """A child that sleeps 0.5 s before asking is at least 0.5 s old, and no older than the parent saw it live."""
    code = "import time; time.sleep(0.5); from fmnist.train.phases import process_age_s; print(process_age_s())"
    tic = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lived = time.perf_counter() - tic
    assert 0.5 <= float(out) <= lived + 0.02  # /proc counts in 10 ms ticks


def test_startup_counts_from_the_previous_run_of_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phases, "_last_run_end", None)
    monkeypatch.setattr(phases, "process_age_s", lambda: 7.5)
    assert phases.startup_s() == 7.5  # the process's first run: since the process started
    phases.mark_run_end()
    time.sleep(0.05)
    assert 0.05 <= phases.startup_s() < 1.0  # a later one: since the previous run returned, not the process start
