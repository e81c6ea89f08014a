"""Stopping child processes (fmnist/stopping.py): the gpu_pool workers and the study's sweeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: A child that says it is up, then waits; SIGINT makes it record `interrupted` (as a run does). It says so inside
#: the `try`: the test kills the parent as soon as the file appears, and a SIGINT before the `try` would be lost.
CHILD = """import pathlib, sys, time
out = pathlib.Path(sys.argv[1])
try:
    out.with_suffix(".up").write_text("")
    time.sleep(60)
except KeyboardInterrupt:
    out.with_suffix(".interrupted").write_text("")
"""
#: A parent that starts CHILD in its own session, as the pool and the study do, then waits.
PARENT = """import subprocess, sys, time
from fmnist.stopping import die_with_parent
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True,
                 preexec_fn=die_with_parent)
time.sleep(60)
"""


def wait_for(path: Path, seconds: float = 30) -> bool:
    end = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.02)
    return path.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_in_its_own_session_is_interrupted_when_its_parent_is_killed(tmp_path: Path) -> None:
    """`kill -9` of the launcher (or `timeout --kill-after`) leaves no job running on its own: each gets SIGINT."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(tmp_path / "child")],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert wait_for(tmp_path / "child.up")
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_for(tmp_path / "child.interrupted", seconds=10)
