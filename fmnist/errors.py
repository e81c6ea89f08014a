"""User-facing errors: one clear message, no traceback wall."""

from __future__ import annotations


class FmnistError(Exception):
    """An error caused by the user's input or environment; printed as one line by the CLIs."""


class DataError(FmnistError):
    """The dataset folder or a file in it is missing or malformed."""


class ConfigError(FmnistError):
    """The composed configuration is invalid."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
