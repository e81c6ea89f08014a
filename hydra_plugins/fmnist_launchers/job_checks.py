"""What a launcher finds out about a sweep job before giving it a process: is its run complete already, and is
its computation being trained by another job right now.

- A relaunched sweep (the same command after a deadline, a preemption or a failure; the study's next session
  beside finished runs) holds jobs whose run dir already has a completed run of the same configuration. Their
  worker would only start Python, import torch, read summary.json and return it: about 5 s of a GPU slot each on
  the lent machines, and a queued Slurm array task. `record_if_completed` records such a job as Hydra would (its
  run dir's `.hydra/` files, which tell the sweep's closing line that the job was launched and skipped) and
  returns its result, the best validation accuracy, as the worker would have.
- With trainer.reuse_identical a job whose computation another job has claimed (fmnist.train.reuse: it is
  training the identical run) would wait for it in its slot, to copy its results. `claim_busy` tells gpu_pool
  to start later jobs first and come back to it once the claim is released.

Anything else (a run to train, resume or refuse; a job that cannot be composed here) is left to the worker,
which decides as it always did."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, run_job
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.fmnist_launchers.failures import config_run_dir, job_config

log = logging.getLogger(__name__)


@dataclass
class ComposedJob:
    """A sweep job's config as its worker composes it, the task's part of it (no `hydra` node), and its run dir."""

    cfg: DictConfig
    task_cfg: DictConfig
    run_dir: Path


def compose_job(hydra_context: Any, master_config: DictConfig, overrides: Sequence[str], job_num: int,
                job_id: str) -> ComposedJob | None:
    """The job composed as its worker will compose it; None when that fails here (the worker then reports it)."""
    try:
        cfg = job_config(hydra_context, master_config, overrides, job_num, job_id)
        task_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return ComposedJob(cfg, task_cfg, config_run_dir(cfg))
    except Exception as exc:
        log.debug("job #%d not composed in the launcher: %s", job_num, exc)
        return None


def record_if_completed(hydra_context: Any, job: ComposedJob | None) -> JobReturn | None:
    """The JobReturn of a job whose run dir holds a completed run of its configuration, its `.hydra/` record
    written as Hydra writes it for every job; None when the job needs its worker."""
    if job is None:
        return None
    try:
        from fmnist.train.run import completed_run  # (torch: never at plugin discovery)
        from fmnist.train.run_dir import is_busy, restore_hydra_record

        summary = None if is_busy(job.run_dir) else completed_run(job.task_cfg, job.run_dir)
    except Exception as exc:  # cannot tell: the worker will
        log.debug("%s not checked for a completed run: %s", job.run_dir, exc)
        return None
    if summary is None:
        return None
    # the job's own task function would return the same: the completed run's result, without training
    ret = run_job(hydra_context=hydra_context, task_function=lambda _cfg: summary.get("best_val_acc"),
                  config=job.cfg, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
                  configure_logging=False)
    restore_hydra_record(job.run_dir, summary)  # run_job wrote this launch's .hydra/: the run keeps its own record
    return ret


def claim_path(job: ComposedJob | None) -> Path | None:
    """The lock file of the claim on the job's computation when it runs with trainer.reuse_identical, else None."""
    if job is None:
        return None
    try:
        from fmnist.train.logging import to_container
        from fmnist.train.reuse import claim_file

        if not OmegaConf.select(job.task_cfg, "trainer.reuse_identical", default=False):
            return None
        return claim_file(job.run_dir, to_container(job.task_cfg), job.task_cfg.data.dir)
    except Exception as exc:
        log.debug("%s: no claim path: %s", job.run_dir, exc)
        return None


def claim_busy(path: Path | None) -> bool:
    """Whether another process holds the claim at `path` (is training the identical run) right now."""
    from fmnist.train.run_dir import lock_busy

    return path is not None and lock_busy(path)
