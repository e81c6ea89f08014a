"""User-facing errors: one clear message, no traceback wall."""

from __future__ import annotations

import os
import sys
from typing import Any


class FmnistError(Exception):
    """An error caused by the user's input or environment; printed as one line by the CLIs."""


class DataError(FmnistError):
    """The dataset folder or a file in it is missing or malformed."""


class ConfigError(FmnistError):
    """The composed configuration is invalid."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _PipeSafeStream:
    """A text stream that, once its reader is gone (`python train.py | head -1`), sends the rest to /dev/null
    instead of raising BrokenPipeError: in print() a traceback, in a log handler one per later line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _discard(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_standard_streams() -> None:
    """Make sys.stdout survive a reader that stops early and a character its encoding lacks; call first thing in a
    CLI (before Hydra sets up logging).
    Standard streams started closed (`>&- 2>&-`) are opened on /dev/null: else the run's first files take their
    numbers (train.log fd 1, .lock fd 2) and whatever C code or a child process writes to them lands in those files."""
    _fill_closed_std_fds()
    if sys.stdout is not None and not isinstance(sys.stdout, _PipeSafeStream):
        if hasattr(sys.stdout, "reconfigure"):  # an ASCII / Latin-1 console: '\u2014' for a '—', as stderr does
            sys.stdout.reconfigure(errors="backslashreplace")
        sys.stdout = _PipeSafeStream(sys.stdout)


def one_line_interrupts() -> None:
    """Make a Ctrl-C that nothing catches, one that lands while torch and Hydra are imported or the config is
    composed, print one line instead of a traceback; the exit status stays 130 (Python exits through SIGINT).
    Call first thing in a CLI script, before its heavy imports; what the run itself does on Ctrl-C is its own."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            return previous(kind, exc, tb)
        from fmnist.stopping import interrupt_cause  # only now: this module stays free of imports
        print(f"interrupted ({interrupt_cause(exc)}) while starting or ending; run the same command again",
              file=sys.stderr)

    sys.excepthook = hook


def _fill_closed_std_fds() -> None:
    """Open /dev/null on each of fds 0-2 that is closed (a file opened takes the lowest free number)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes fd: the lower ones are open by now
