"""Recording a job that died without recording itself (killed, out of host memory, lost node)."""


import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, run_job
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


def job_config(hydra_context: Any, master_config: DictConfig, overrides: Sequence[str], job_num: int,
               job_id: str | None = None) -> DictConfig:
    """A sweep job's config, composed as its worker composes it (raises what composing raises)."""
    cfg = hydra_context.config_loader.load_sweep_config(master_config, list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.num = job_num
        cfg.hydra.job.id = job_id or str(job_num)
    return cfg


def config_run_dir(cfg: DictConfig) -> Path:
    """The run dir of a composed sweep job's config (hydra.sweep.dir / hydra.sweep.subdir), absolute."""
    return Path(os.path.abspath(os.path.join(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir))))


def job_run_dir(hydra_context: Any, master_config: DictConfig, overrides: Sequence[str],
                job_num: int) -> Path | None:
    """The run dir a sweep job writes to (hydra.sweep.dir / hydra.sweep.subdir), computed as the job does."""
    try:
        return config_run_dir(job_config(hydra_context, master_config, overrides, job_num))
    except Exception as exc:  # never let bookkeeping break the sweep
        log.warning("cannot work out the run dir of job #%d: %s", job_num, exc)
        return None


def record_job_failure(run_dir: Path | None, error: str, since: float | None = None) -> None:
    """Mark the run's summary.json failed with `error`, unless the run recorded its own ending: completed or
    failed, or `interrupted` in a summary written since the job started at `since` (epoch seconds; a worker
    stopped by a signal records that and exits 130: the run resumes, it did not fail)."""
    if run_dir is None:
        return
    try:
        from fmnist.train.callbacks import completed_before
        from fmnist.train.run_dir import read_summary, write_summary

        summary = read_summary(run_dir) or {"run_dir": str(run_dir)}
        if summary.get("status") in ("completed", "failed"):
            return
        if summary.get("status") == "interrupted" and since is not None and not completed_before(run_dir, since):
            return
        summary.update(status="failed", error=error,
                       finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        write_summary(run_dir, summary)
    except Exception as exc:
        log.warning("cannot record the failure of %s: %s", run_dir, exc)


def record_lost_job(hydra_context: Any, master_config: DictConfig, overrides: Sequence[str], job_num: int,
                    error: str) -> None:
    """record_job_failure for a job that ended without a result. One that never started (cancelled or lost while
    queued) first gets the `.hydra/` record its worker would have written (config, hydra, overrides), so that the
    sweep's closing line counts it as launched and the analysis places the failure in its cell."""
    try:
        cfg = job_config(hydra_context, master_config, overrides, job_num)
        run_dir = config_run_dir(cfg)
    except Exception as exc:  # never let bookkeeping break the sweep
        log.warning("cannot work out the run dir of job #%d: %s", job_num, exc)
        return
    if not (run_dir / ".hydra" / "overrides.yaml").is_file():
        try:
            run_job(hydra_context=hydra_context, task_function=lambda _cfg: None, config=cfg,
                    job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=False)
        except Exception as exc:
            log.warning("cannot write the Hydra record of %s: %s", run_dir, exc)
    record_job_failure(run_dir, error)


def failed_return(overrides: Sequence[str]) -> JobReturn:
    """A JobReturn that the sweeper accepts (status COMPLETED, value None) for a job that failed: the
    failure lives in the run's summary.json, and SweepReport counts it and sets the exit status. (A FAILED
    JobReturn would make Hydra's sweeper raise and stop before the report.)"""
    ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    ret.return_value = None
    return ret
