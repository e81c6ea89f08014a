"""Where a run came from: command line, git commit, host, scheduler job id, library versions."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def git_commit(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """HEAD commit and whether tracked files differ from it; nulls outside a git checkout."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if dirty is None else bool(dirty)}


def slurm_job_id() -> str | None:
    """This Slurm job's id as squeue, sacct, the launcher's 'submitted' line and scancel name it: `<array>_<task>` for
    a task of a job array (a sweep's job; scancel refuses its own SLURM_JOB_ID on some Slurm versions), else
    SLURM_JOB_ID; None outside Slurm."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def provenance() -> dict[str, Any]:
    info: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "hostname": platform.node(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "slurm_job_id": slurm_job_id(),
    }
    info.update(git_commit())
    return info
