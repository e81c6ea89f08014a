"""Errors of the analysis: one clear line each (the CLI prints them without a traceback)."""

from fmnist.errors import FmnistError


class AnalysisError(FmnistError):
    """Bad analysis input: a sweep dir that does not exist, holds no runs, a bad option."""


class ReportError(FmnistError):
    """The LaTeX report could not be generated or built."""
