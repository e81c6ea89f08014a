"""The glue between Hydra and the analysis: errors reach the user as one line."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

from fmnist.analysis.pipeline import main
from fmnist.errors import FmnistError

log = logging.getLogger("fmnist.analysis")


def hydra_main(cfg: DictConfig) -> None:
    """Run the analysis (and report); a user-facing error exits with status 1 and one line."""
    try:
        main(cfg)
    except FmnistError as exc:
        log.error("error: %s", exc)
        sys.exit(1)
