"""`hydra/launcher=slurm`: hydra-submitit-launcher's Slurm launcher, made safe for long sweeps.

Differences from `submitit_slurm`:
- A job that dies without an answer (killed, cancelled, out of host memory, node failure) is recorded
  as failed in its summary.json and the launcher goes on collecting the other jobs; the plain launcher
  raises at the first such job, and Hydra then stops with a traceback before the sweep's report.
- A job whose run dir already holds a completed run of its configuration (a sweep launched again after a
  preemption or a failure) is recorded here and not submitted: no array task waits in the queue to skip it.
- Ctrl-C (SIGTERM) to the submitting process cancels the sweep's jobs that have not ended (`scancel`) and ends it
  with one line and exit status 130, as it stops a local sweep; the same command later resumes them. A closed
  terminal (SIGHUP: an SSH connection lost) is not a request to stop: the jobs train on, and the line says so. (The
  plain launcher dies with a traceback, or silently on SIGTERM, and leaves them running unwatched.)
- The repository root is put on the jobs' PYTHONPATH (sbatch passes the environment on), so the jobs
  find `fmnist` and this plugin wherever the sweep was launched from.

Preemption and timeouts: submitit requeues the job (`checkpoint()` resubmits the same call), the job
resolves the same run dir (Hydra's resolver cache travels with the pickled config) and the trainer
resumes from `checkpoints/last.pt` there."""

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf

from fmnist.errors import first_line
from fmnist.stopping import STOPPED, interrupt_cause, signals_as_interrupt
from hydra_plugins.fmnist_launchers.failures import failed_return, job_run_dir, record_job_failure, record_lost_job
from hydra_plugins.fmnist_launchers.job_checks import compose_job, record_if_completed

log = logging.getLogger(__name__)

PLUGIN_ROOT = Path(__file__).resolve().parents[2]


def bad_params(params: dict) -> str | None:
    """What is wrong with the launcher's values that sbatch would take without a word (None when nothing): a
    parallelism below 1 (`--array=0-9%0`: no limit at all), and a signal due before the job has begun (Slurm sends
    it signal_delay_s before timeout_min is up; submitit then requeues the job at once, again and again, without
    progress, until max_num_timeout is spent)."""
    parallelism, timeout = params.get("array_parallelism"), params.get("timeout_min")
    delay, requeues = params.get("signal_delay_s"), params.get("max_num_timeout")
    if parallelism is not None and parallelism < 1:
        return f"hydra.launcher.array_parallelism={parallelism} must be at least 1 (the jobs that run at once)"
    if timeout is not None and timeout < 1:
        return f"hydra.launcher.timeout_min={timeout} must be at least 1 (each job's time limit, in minutes)"
    if requeues is not None and requeues < 0:
        return f"hydra.launcher.max_num_timeout={requeues} must be 0 or more (the requeues after a time-out)"
    if delay is not None and timeout is not None and not 0 <= delay < 60 * timeout:
        return (f"hydra.launcher.signal_delay_s={delay} must be between 0 and timeout_min in seconds ({60 * timeout}): "
                f"Slurm signals the job that long before its time limit, and submitit requeues it then")
    return None


class _TolerantSubmititMixin:
    """`launch` of BaseSubmititLauncher, collecting every job even when some die."""

    _EXECUTOR: str
    params: dict
    config: Any
    hydra_context: Any

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        paths = [str(PLUGIN_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))

        params = self.params
        if problem := bad_params(params):
            print(f"error: {problem}", file=sys.stderr, flush=True)
            sys.exit(1)
        init_params = {"folder": params["submitit_folder"]}
        specific_init_keys = {"max_num_timeout"}
        init_params.update(**{f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x in specific_init_keys})
        init_keys = specific_init_keys | {"submitit_folder"}
        try:
            executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        except RuntimeError as exc:  # no srun/sbatch on PATH: not on a Slurm cluster (or its module not loaded)
            print(f"error: cannot submit to {self._EXECUTOR}: {first_line(exc)}", file=sys.stderr, flush=True)
            sys.exit(1)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{
            x if x in baseparams else f"{self._EXECUTOR}_{x}": y for x, y in params.items() if x not in init_keys
        })

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))

        done: dict[int, JobReturn] = {}  # jobs whose run is complete already: no array task for them
        job_params: List[Any] = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            ret = record_if_completed(self.hydra_context, compose_job(self.hydra_context, self.config, overrides, idx,
                                                                      f"job_id_for_{idx}"))
            if ret is not None:
                done[idx] = ret
                continue
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        if done:
            log.info(f"{len(done)} job(s) already completed, not submitted (#{', #'.join(map(str, done))})")

        returns: dict[int, JobReturn] = dict(done)
        jobs: list = []
        try:
            with signals_as_interrupt():
                try:
                    jobs = executor.map_array(self, *zip(*job_params)) if job_params else []
                except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError,
                        OSError) as exc:
                    print(f"error: {refused_submission(self._EXECUTOR, len(job_params), exc)}", file=sys.stderr,
                          flush=True)
                    sys.exit(1)  # sbatch refused them (no cluster, a mistyped partition): one line, as for a bad value
                if jobs:
                    log.info(f"submitted {len(jobs)} job(s): {', '.join(str(j.job_id) for j in jobs)}")
                self._collect(job_params, jobs, returns)
        except KeyboardInterrupt as exc:
            self._stopped(exc, [job for (_, _, idx, _, _), job in zip(job_params, jobs) if idx not in returns])
        return [returns[initial_job_idx + i] for i in range(len(job_overrides))]

    def _stopped(self, exc: KeyboardInterrupt, left: List[Any]) -> None:
        """The submitting process was stopped while `left` jobs had not ended: Ctrl-C and SIGTERM cancel them, a
        closed terminal (SIGHUP: an SSH connection lost, not a request to stop) leaves them training; one line, exit
        status 130."""
        STOPPED.set()
        ids = [str(job.job_id) for job in left]
        named = f" ({', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})" if ids else ""
        if interrupt_cause(exc) == "SIGHUP":
            log.error(f"interrupted by SIGHUP (the terminal closed): the sweep's {len(left)} {self._EXECUTOR} "
                      f"job(s) not ended yet{named} train on; launch the same command again once they have ended "
                      "to collect the sweep")
            sys.exit(130)
        for job in left:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
        log.error(f"interrupted: cancelled the sweep's {len(left)} {self._EXECUTOR} job(s) not ended yet{named}; "
                  "launch the same command again to resume them")
        sys.exit(130)

    def _collect(self, job_params: List[Any], jobs: List[Any], returns: dict[int, JobReturn]) -> None:
        """Wait for every submitted job and put its JobReturn into `returns`; a job that died is recorded as failed."""
        for (overrides, _, idx, _, _), job in zip(job_params, jobs):
            try:
                ret = job.results()[0]
            except Exception as exc:  # the job died: UncompletedJobError, FailedJobError, ...
                error = lost_job_error(self._EXECUTOR, job, exc)
                log.error(f"#{idx}: {error}")
                record_lost_job(self.hydra_context, self.config, overrides, idx, error)
                returns[idx] = failed_return(overrides)
                continue
            if ret.status != JobStatus.COMPLETED:
                error = f"{type(ret._return_value).__name__}: {ret._return_value}"
                log.error(f"#{idx}: {error}")
                record_job_failure(job_run_dir(self.hydra_context, self.config, overrides, idx), error)
                ret = failed_return(overrides)
            returns[idx] = ret


def lost_job_error(executor: str, job: Any, exc: BaseException) -> str:
    """One line for a job that ended without a result: the scheduler's state for it (CANCELLED, NODE_FAIL,
    OUT_OF_MEMORY, ...), which submitit puts on the second line of its message, and where its log is."""
    state = re.search(r"\(state: ([^)\n]*)\)", str(exc))
    said = f"state {state.group(1).strip()}" if state else first_line(exc)
    stderr = getattr(getattr(job, "paths", None), "stderr", None)
    log_file = f"; its log: {stderr}" if stderr is not None else ""
    return f"{executor} job {job.job_id} ended without a result ({type(exc).__name__}: {said}{log_file})"


def refused_submission(executor: str, jobs: int, exc: BaseException) -> str:
    """What the scheduler said when it refused to queue the sweep's jobs: the last line of its message that names
    an error, its fatal one when there is one (submitit quotes sbatch's whole output)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = ([line for line in lines if re.search(r"fatal", line, re.I)]
            or [line for line in lines if re.search(r"error|invalid", line, re.I)] or lines)
    return f"{executor} refused to queue the sweep's {jobs} job(s): {said[-1][:300] if said else type(exc).__name__}"


class FmnistSlurmLauncher(_TolerantSubmititMixin, SlurmLauncher):
    pass


class FmnistSubmititLocalLauncher(_TolerantSubmititMixin, LocalLauncher):
    pass
