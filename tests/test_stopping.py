"""Stopping child processes (fmnist/stopping.py): the gpu_pool workers and the study's sweeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmnist.stopping import STOP_SIGNALS, die_with_parent, signals_as_interrupt, stop_children

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
#: A parent that starts CHILD in its own session, as the pool and the study do, then waits; with a third argument, it
#: ignores SIGINT as a shell's background job (`cmd &`) does, which CHILD must not inherit.
PARENT = """import signal, subprocess, sys, time
from fmnist.stopping import die_with_parent
if len(sys.argv) > 3:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
@pytest.mark.parametrize("background", [False, True])
def test_a_child_in_its_own_session_is_interrupted_when_its_parent_is_killed(tmp_path: Path, background: bool) -> None:
    """`kill -9` of the launcher (or `timeout --kill-after`) leaves no job running on its own: each gets SIGINT, and
    takes it even when the launcher was started as `python train.py -m ... &`, ignoring SIGINT."""
    extra = ["background"] if background else []
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(tmp_path / "child"), *extra],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert wait_for(tmp_path / "child.up")
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_for(tmp_path / "child.interrupted", seconds=10)


def test_stop_signals_raise_keyboard_interrupt_within_the_block_only() -> None:
    """SIGTERM and SIGHUP stop a run like Ctrl-C inside the block; the handlers from before are back after it."""
    assert set(STOP_SIGNALS) == {signal.SIGTERM, signal.SIGHUP}

    def mine(signum: int, frame: object) -> None:
        pass

    before = {sig: signal.signal(sig, mine) for sig in STOP_SIGNALS}
    try:
        for sig in STOP_SIGNALS:
            with pytest.raises(KeyboardInterrupt, match=sig.name), signals_as_interrupt():
                os.kill(os.getpid(), sig)
                time.sleep(1)  # the handler runs at once; this is not reached
            assert signal.getsignal(sig) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_ignored_signals_stay_ignored_within_the_block() -> None:
    """`nohup` makes a process ignore SIGHUP: a sweep started that way trains on after its user logs out."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)  # no KeyboardInterrupt
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # the signals not ignored still stop it
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_child_of_a_parent_ignoring_sigint_is_stopped_by_its_sigint(tmp_path: Path) -> None:
    """A sweep run as `python train.py -m ... &` ignores SIGINT, and its workers would too: stop_children's SIGINT
    would then be lost, the worker killed by SIGTERM without recording `interrupted`."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "child")], start_new_session=True,
                                 preexec_fn=die_with_parent)
    finally:
        signal.signal(signal.SIGINT, before)
    assert wait_for(tmp_path / "child.up")
    stop_children([child], grace_s=20.0)
    assert child.returncode == 0 and (tmp_path / "child.interrupted").exists()


#: Shells that ignore SIGINT: the first stops on SIGTERM (saying so), the second only dies of SIGKILL.
TERMINATES = "trap '' INT; trap 'echo > {out}.terminated; exit 3' TERM; echo > {out}.up; while :; do sleep 0.02; done"
STUBBORN = "trap '' INT TERM; echo > {out}.up; while :; do sleep 0.02; done"


def test_children_that_ignore_the_interrupt_get_sigterm_then_sigkill(tmp_path: Path) -> None:
    """A child still running `grace_s` after its SIGINT gets SIGTERM, and one still running `grace_s` after that
    gets SIGKILL: stop_children never leaves a child behind, and gives each the gentlest signal that stops it."""
    procs = [subprocess.Popen(["sh", "-c", script.format(out=tmp_path / name)])
             for name, script in (("a", TERMINATES), ("b", STUBBORN))]
    assert wait_for(tmp_path / "a.up") and wait_for(tmp_path / "b.up")
    start = time.monotonic()
    stop_children(procs, grace_s=1.0)  # ample for the trap to run on a loaded machine
    assert [p.returncode for p in procs] == [3, -signal.SIGKILL]
    assert (tmp_path / "a.terminated").exists()
    assert 2.0 <= time.monotonic() - start < 10


#: A sweep (the pool launcher, or a study's preset) as fmnist stops one: its worker in its own session, started with
#: die_with_parent; on Ctrl-C (or SIGTERM) it stops the worker with stop_children, with a grace of argv[3] s.
SWEEP = """import pathlib, subprocess, sys, time
from fmnist.stopping import die_with_parent, signals_as_interrupt, stop_children
worker = subprocess.Popen(["sh", "-c", sys.argv[1]], start_new_session=True, preexec_fn=die_with_parent)
try:
    with signals_as_interrupt():
        pathlib.Path(sys.argv[2]).write_text("")
        time.sleep(60)
except KeyboardInterrupt:
    stop_children([worker], grace_s=float(sys.argv[3]))
    sys.exit(130)
"""


def test_a_parent_stopping_its_children_is_not_cut_short_by_its_own_parents_signals(tmp_path: Path) -> None:
    """The study stops a preset's sweep that stops its workers: the study's SIGTERM (its grace ran out first) must
    not kill the sweep halfway, leaving a worker that ignores SIGINT with a second SIGINT (die_with_parent) and never
    the SIGTERM that the sweep owes it."""
    out = tmp_path / "w"
    worker = "echo $$ > {out}.pid; " + TERMINATES
    sweep = subprocess.Popen([sys.executable, "-c", SWEEP, worker.format(out=out), str(tmp_path / "sweep.up"), "1.5"],
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert wait_for(tmp_path / "w.up") and wait_for(tmp_path / "sweep.up")
        stop_children([sweep], grace_s=1.0)  # SIGINT, SIGTERM 1 s later, SIGKILL 1 s after that
        assert wait_for(tmp_path / "w.terminated", seconds=5)
        assert sweep.returncode == 130
    finally:
        sweep.kill()
        try:
            os.kill(int((tmp_path / "w.pid").read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
