"""The glue between Hydra and the trainer: where the run dir is, and how errors reach the user."""

from __future__ import annotations

import logging
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fmnist.errors import FmnistError
from fmnist.train.run import train

log = logging.getLogger("fmnist")


def hydra_main(cfg: DictConfig) -> float | None:
    """Run `train` in Hydra's output dir. Returns the best validation accuracy (for sweepers).

    A user-facing error (FmnistError) is logged as one line; a single run then exits with status 1,
    while in a sweep the error is re-raised so Hydra records the job as failed and goes on."""
    hc = HydraConfig.get()
    choices = {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra/")}
    try:
        summary = train(cfg, hc.runtime.output_dir, choices)
    except FmnistError as exc:
        log.error("error: %s", exc)
        if hc.mode == RunMode.RUN:
            sys.exit(1)
        raise
    return summary.get("best_val_acc")

