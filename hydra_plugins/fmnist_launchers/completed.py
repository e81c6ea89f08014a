"""Jobs whose run is already complete: recorded by the launcher itself, with no process, node or GPU slot.

A relaunched sweep (the same command after a deadline, a preemption or a failure; the study's next seed beside
finished ones) holds jobs whose run dir already has a completed run of the same configuration. Their worker would
only start Python, import torch, read summary.json and return it: about 5 s of a GPU slot each on the lent
machines, and a queued Slurm array task. The launcher instead records such a job as Hydra would (its run dir's
`.hydra/` files, which tell the sweep's closing line that the job was launched and skipped) and returns its result,
the best validation accuracy, as the worker would have. Anything else (a run to train, resume, refuse, or one
being trained right now) is left to the worker, which decides as it always did."""

from __future__ import annotations

import copy
import logging
from typing import Any, Sequence

from hydra.core.utils import JobReturn, run_job
from omegaconf import DictConfig, open_dict

from hydra_plugins.fmnist_launchers.failures import config_run_dir, job_config

log = logging.getLogger(__name__)


def record_if_completed(hydra_context: Any, master_config: DictConfig, overrides: Sequence[str], job_num: int,
                        job_id: str) -> JobReturn | None:
    """The JobReturn of a job whose run dir holds a completed run of its configuration, its `.hydra/` record
    written as Hydra writes it for every job; None when the job needs its worker (or cannot be checked here)."""
    try:
        from fmnist.train.run import completed_run  # (torch: never at plugin discovery)
        from fmnist.train.run_dir import is_busy

        cfg = job_config(hydra_context, master_config, overrides, job_num, job_id)
        run_dir = config_run_dir(cfg)
        task_cfg = copy.deepcopy(cfg)
        with open_dict(task_cfg):
            del task_cfg["hydra"]
        summary = None if is_busy(run_dir) else completed_run(task_cfg, run_dir)
    except Exception as exc:  # cannot tell: the worker will
        log.debug("job #%d not checked for a completed run: %s", job_num, exc)
        return None
    if summary is None:
        return None
    # the job's own task function would return the same: the completed run's result, without training
    return run_job(hydra_context=hydra_context, task_function=lambda _cfg: summary.get("best_val_acc"), config=cfg,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)
