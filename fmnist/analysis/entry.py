"""The glue between Hydra and the analysis: errors reach the user as one line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import DictConfig

from fmnist.analysis.pipeline import main
from fmnist.errors import FmnistError

log = logging.getLogger("fmnist.analysis")


def bare_argument(argv: list[str]) -> str | None:
    """The one-line error for a path given without its key (`python analyze.py multirun/...`), else None; Hydra
    would only report a lexer error. An option's value (`--cfg job`, `-cd conf`) is left to Hydra."""
    for before, arg in zip(["", *argv], argv):
        option_value = before.startswith("-") and before not in ("-m", "--multirun")
        a_path = "/" in arg or Path(arg).exists()
        if "=" not in arg and not arg.startswith(("-", "~")) and not option_value and a_path:
            return f"error: {arg} is not a key=value override: python analyze.py sweep_dir={arg}"
    return None


def hydra_main(cfg: DictConfig) -> None:
    """Run the analysis (and report); a user-facing error exits with status 1 and one line."""
    try:
        main(cfg)
    except FmnistError as exc:
        log.error("error: %s", exc)
        sys.exit(1)
