"""User-facing errors: one clear message, no traceback wall."""


class FmnistError(Exception):
    """An error caused by the user's input or environment; printed as one line by the CLIs."""


class DataError(FmnistError):
    """The dataset folder or a file in it is missing or malformed."""


class ConfigError(FmnistError):
    """The composed configuration is invalid."""
