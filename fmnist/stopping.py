"""Stopping child processes the way Ctrl-C stops a run (the gpu_pool launcher's workers, the study's sweeps).

The children run in their own sessions (`start_new_session=True`), so a Ctrl-C in the terminal reaches the parent
alone and each child gets exactly one SIGINT from it: a second one could arrive while the child records its run
as `interrupted`, and cut that short. Started with `preexec_fn=die_with_parent`, a child also gets that SIGINT when
its parent is killed outright (`kill -9`, `timeout --kill-after`), instead of running on alone: at times several
SIGINTs (die_with_parent), so a run holds further stop signals while it records how it ended (signals_held).

A signal this process was started ignoring stays ignored: `nohup` (SIGHUP) keeps a sweep running after logout.
Its children do not inherit an ignored SIGINT (a shell's `cmd &` ignores it), since SIGINT is how they are stopped."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import threading
import time
from typing import Any, Iterator, Sequence

log = logging.getLogger(__name__)

#: Seconds a child gets to record its run as interrupted and exit before SIGTERM, then as much before SIGKILL
#: (below the 15 s `timeout --kill-after` of scripts/device_session.sh, which would leave it orphaned).
STOP_GRACE_S = 10.0
#: Signals that stop the parent like Ctrl-C (its children, in their own sessions, do not get them).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
#: Set where a Ctrl-C (SIGTERM, SIGHUP) that stops this process's run or sweep is reported: what would follow the
#: sweep's end (the analysis of hydra/callbacks=analyze) is not started after the user asked to stop.
STOPPED = threading.Event()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """A `preexec_fn`: this child does not ignore SIGINT (where its parent does, as a background job of a shell), and
    gets SIGINT when the process that started it dies (Linux; elsewhere that part is a no-op). Not always once: the
    kernel sends it whenever the thread that is the child's parent exits, and the child of a multi-threaded parent
    killed outright (torch gives the launcher several threads) is handed from exiting thread to exiting thread, a
    SIGINT each time (2 and 5 of them in 2 of 20 kills of a parent with 16 threads)."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return
    with contextlib.suppress(AttributeError):
        libc.signal(int(signal.SIGINT), ctypes.c_void_p(0))  # SIG_DFL, through libc: no Python signal state here
    with contextlib.suppress(AttributeError):
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupt_cause(exc: KeyboardInterrupt) -> str:
    """What raised `exc`: the signal's name where signals_as_interrupt turned one into it, else Ctrl-C."""
    cause = str(exc.args[0]) if exc.args else ""
    return cause if cause.startswith("SIG") else "Ctrl-C"


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C (main thread only), unless this
    process ignores them (`nohup`: a hangup is not a request to stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: Any) -> None:
    pass


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within the block (main thread only), Ctrl-C, SIGTERM and SIGHUP do nothing: a parent stopping its children
    (a sweep the study stops, when the study's grace runs out first) is not killed halfway, which would leave them
    with a second SIGINT (die_with_parent) and none of the SIGTERM and SIGKILL it owes them; a run recording how it
    ended is not cut short by a second stop signal (fmnist.train.run)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_children(procs: Sequence[subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """One SIGINT to each running child (a run records summary.json status `interrupted` and exits 130), then
    SIGTERM and SIGKILL for any still running `grace_s` seconds later; Ctrl-C, SIGTERM and SIGHUP to this process
    meanwhile do not cut that short (only SIGKILL does)."""
    with signals_held():
        _stop_children(procs, grace_s)


def _stop_children(procs: Sequence[subprocess.Popen], grace_s: float) -> None:
    alive = [p for p in procs if p.poll() is None]
    for proc in alive:
        log.info("stopping pid %d", proc.pid)
        proc.send_signal(signal.SIGINT)
    for stop in (None, subprocess.Popen.terminate, subprocess.Popen.kill):
        for proc in alive:
            if stop is not None and proc.poll() is None:
                stop(proc)
        end = time.monotonic() + grace_s
        for proc in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, end - time.monotonic()))
        alive = [p for p in alive if p.poll() is None]
        if not alive:
            return
