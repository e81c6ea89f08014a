"""Where a run's wall time goes besides its epochs: summary.json's `startup_s`, `setup_s`, `epochs_s`, `finish_s`.

Short runs (a study's 15-epoch cells on a fast GPU) spend much of their time outside the epochs: starting Python,
importing torch, composing the config, loading the data, capturing CUDA graphs, testing, writing files. These
figures say how much, so the study's per-run overhead is measured, not guessed."""

from __future__ import annotations

import os
import time
from pathlib import Path

#: The summary.json keys of the phases, in order (each rounded to milliseconds).
PHASE_KEYS: tuple[str, ...] = ("startup_s", "setup_s", "epochs_s", "finish_s")
#: perf_counter() when the last train() of this process returned (None: none has yet).
_last_run_end: float | None = None


def process_age_s() -> float | None:
    """Seconds since this process started, from Linux's /proc (10 ms resolution); None where that is unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime; fields after "comm" start at 3
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def startup_s() -> float | None:
    """The time before this run's train() was called: since the process started (interpreter, imports, Hydra) for
    the process's first run, since the previous run returned (the launcher's work between jobs) for later ones
    (Hydra's basic launcher runs a sweep's jobs in one process). None where the process start is unknown."""
    if _last_run_end is not None:
        return time.perf_counter() - _last_run_end
    return process_age_s()


def mark_run_end() -> None:
    """Note that a run of this process has returned: the next run's startup_s is counted from here."""
    global _last_run_end
    _last_run_end = time.perf_counter()
