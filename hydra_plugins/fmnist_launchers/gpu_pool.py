"""`hydra/launcher=gpu_pool`: run a sweep K jobs at a time on every visible GPU.

Small nets leave most of a GPU idle (shared/notes/performance.md: 4 ResNet9 jobs on one H100 give 3x the
throughput of one), so the pool keeps `jobs_per_gpu` jobs running on each GPU. Every job is a separate
Python process (`python -m hydra_plugins.fmnist_launchers._worker`) that sees exactly one GPU through
`CUDA_VISIBLE_DEVICES` (so `device=auto` picks it); a job that crashes, even with SIGKILL or out of host
memory, takes no other job with it and is recorded as failed in its summary.json. On a machine without a
GPU the pool runs `cpu_jobs` (default: `jobs_per_gpu`) CPU jobs at a time.

A job whose run dir already holds a completed run of its configuration (a relaunched sweep) gets no worker: the
launcher records it itself, which saves the seconds a worker takes to start and skip it; and a job whose
identical run another job is training right now (trainer.reuse_identical) waits in the queue, not in a slot,
while later jobs start (fmnist_launchers.job_checks).

Each worker's console output goes to `<sweep dir>/.pool/<job>.log` (the job's own log is
`<run dir>/train.log`); the launcher prints one line when a job starts and one when it ends. The jobs' payloads and
results there (`<job>.<launch>.pkl`) are removed when the launch ends; a launch killed outright (SIGKILL) leaves
them, and the next launch into the sweep removes them once no process of the killed launch runs: each launch holds
a lock (`launch.<launch>.lock`) that its workers inherit.

Ctrl-C (or SIGTERM/SIGHUP to the launcher) stops the sweep as it stops a run: every running worker gets one
SIGINT and records its run as `interrupted`, the launcher prints one line and exits with status 130, and the
same command resumes the sweep. (Workers run in their own sessions, so only the launcher forwards signals.)

`deadline` (Unix seconds) bounds a sweep on a machine held for a fixed time: no job starts after it, the jobs
already running go on, and the ones never started are reported as such (no run dir is made for them), to be
run by the same command later. `end` (Unix seconds: when the machine is gone) lets jobs start past the deadline
too, as long as the longest job this sweep has trained so far, plus 15 %, would still end by then (before any
job has trained, the deadline decides, but the jobs left wait for a running one to tell how long a job takes),
so that the deadline's fixed margin is not left idle.

`shared_slots` (a folder) makes several sweeps run at once share one set of slots: a job starts only on a slot
whose lock file in that folder (`<slot>.lock`, an flock held while the job runs) no other sweep's job holds, so
`fmnist.study --concurrent N` keeps `jobs_per_gpu` jobs on each GPU in all, not N times as many, and one preset's
last jobs no longer leave slots idle. Give every sweep that shares the folder the same `jobs_per_gpu`."""


import contextlib
import fcntl
import logging
import os
import pickle
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from fmnist.stopping import STOPPED, die_with_parent, signals_as_interrupt, stop_children
from fmnist.study import SWEEPS_AT_ONCE_ENV
from fmnist.train.run_dir import lock_busy
from hydra_plugins.fmnist_launchers.failures import failed_return, job_run_dir, record_job_failure
from hydra_plugins.fmnist_launchers.job_checks import claim_busy, claim_path, compose_job, record_if_completed

log = logging.getLogger(__name__)

#: The folder holding hydra_plugins/ (the repository root): workers need it on their import path.
PLUGIN_ROOT = Path(__file__).resolve().parents[2]
POOL_DIR = ".pool"
POLL_S = 0.1
#: A job starts before `end` only if END_SAFETY x the longest job trained so far still fits.
END_SAFETY = 1.15
DEADLINE_REACHED = "deadline reached"


def start_refusal(now: float, deadline: float | None, end: float | None, longest: float) -> str | None:
    """Why no job may start at `now` (None: it may). `longest`: the longest job this sweep trained so far (0 before
    any); with an `end`, a job starts only if END_SAFETY x longest still fits before it, and while nothing has
    trained yet the `deadline` decides (as it does without an `end`)."""
    if end is not None and now >= end:
        return "hydra.launcher.end reached"
    if end is not None and longest > 0:
        if now + END_SAFETY * longest > end:
            return (f"{end - now:.0f}s left before hydra.launcher.end, less than the longest job so far "
                    f"({longest:.0f}s) + {END_SAFETY - 1:.0%}")
        return None
    if deadline is not None and now >= deadline:
        return DEADLINE_REACHED
    return None


@dataclass
class Slot:
    """One place a job can run: a label for the logs and the environment the worker gets."""

    label: str
    env: dict[str, str] = field(default_factory=dict)
    key: str = ""  # its lock file's name in a shared_slots folder: gpu<id>-<k> or cpu-<k>


def cuda_device_count() -> int:
    """The CUDA devices torch sees from this process (0 without torch or a driver)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no torch, no driver
        return 0


def visible_gpus() -> list[str]:
    """The GPUs this process may use: the entries of CUDA_VISIBLE_DEVICES when set, else 0..N-1; none where torch
    sees no GPU (CUDA_VISIBLE_DEVICES=0 left set on a machine without one: CPU slots, not a "gpu 0" that is the
    CPU). A ValueError when CUDA_VISIBLE_DEVICES names a GPU twice, or more GPU numbers than CUDA finds: CUDA stops
    at an entry that is no GPU, so the jobs sent to the entries after it would silently train on the CPU. (UUIDs are
    not counted: a CUDA that enumerates one MIG instance per process finds one of several that each job can use.)"""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = cuda_device_count()
    if env is None:
        return [str(i) for i in range(count)]
    named = [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    numbers = all(g.isdigit() for g in named)
    if count and ((numbers and len(named) > count) or len(set(named)) < len(named)):
        raise ValueError(f"CUDA_VISIBLE_DEVICES={env} names {len(named)} GPUs, but CUDA finds {count} of them: an "
                         "entry that is no GPU of this machine, or one named twice, hides itself and every entry "
                         "after it; name each GPU there is once")
    return named if count else []


def check_named_gpus(gpus: Any) -> None:
    """A ValueError when hydra.launcher.gpus names a GPU this process may not use, so that a job sent there would
    silently train on the CPU, or on a GPU outside the CUDA_VISIBLE_DEVICES the launcher was started with: a number
    this machine lacks (a negative one included), any GPU on a machine without one, an id that CUDA_VISIBLE_DEVICES
    does not list when it is set, and a UUID or MIG id in which CUDA finds no device (gpu_probe)."""
    if gpus is None:
        return
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids, count = _gpu_ids(gpus), cuda_device_count()
    if env is not None:
        usable = visible_gpus()
        absent = [g for g in ids if g not in usable]
        where = f"CUDA_VISIBLE_DEVICES={env} leaves this process {'GPU ' + ', '.join(usable) if usable else 'no GPU'}"
    else:
        absent = [g for g in ids if not count or (int(g) >= count if g.isdigit() else g.startswith("-")
                                                  or not gpu_probe(g))]
        where = "this machine has " + {0: "no GPU", 1: "1 GPU (0)"}.get(count, f"{count} GPUs (0-{count - 1})")
    if absent:
        raise ValueError(f"hydra.launcher.gpus={gpus!r} names GPU {', '.join(absent)}, but {where}; leave it null "
                         "to use the GPUs there are (CPU slots where there is none)")


def gpu_probe(gpu: str) -> bool:
    """Whether CUDA finds a device in `gpu` (a GPU UUID or MIG id), asked in a child process with it as
    CUDA_VISIBLE_DEVICES: this process keeps no CUDA context for the sweep's length."""
    code = "import torch; print(torch.cuda.device_count())"
    try:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu},
                             capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return True  # cannot tell: left to CUDA, as before
    return out not in ("", "0")


def _positive_int(value: Any, key: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"hydra.launcher.{key}={value!r} is invalid: must be {what}")
    return value


def _gpu_ids(gpus: Any) -> list[str]:
    """hydra.launcher.gpus as CUDA_VISIBLE_DEVICES entries: null = the visible GPUs, one id, or a list of ids."""
    if gpus is None:
        return visible_gpus()
    if isinstance(gpus, int) and not isinstance(gpus, bool):
        return [str(gpus)]
    if (isinstance(gpus, (str, bool)) or not isinstance(gpus, Sequence)
            or any(isinstance(g, bool) or not isinstance(g, (int, str)) for g in gpus)):  # 1.0, true, [0]
        raise ValueError(f"hydra.launcher.gpus={gpus!r} is invalid: must be null, a GPU id or a list of them, "
                         "e.g. [0,1]")
    ids = [str(g) for g in gpus]
    if twice := sorted({g for g in ids if ids.count(g) > 1}):
        raise ValueError(f"hydra.launcher.gpus={gpus!r} names GPU {', '.join(twice)} more than once: name each GPU "
                         "once and set hydra.launcher.jobs_per_gpu for several jobs on it")
    return ids


#: What a slot's lock file name (Slot.key) cannot hold of a GPU id: MIG-GPU-<uuid>/<gi>/<ci> (CUDA 11) has slashes.
NOT_IN_FILE_NAME = re.compile(r"[^\w.-]")


def plan_slots(jobs_per_gpu: int, gpus: Any = None, cpu_jobs: int | None = None) -> list[Slot]:
    """`jobs_per_gpu` slots on every GPU (interleaved, so that a short sweep still spreads over all
    GPUs), or `cpu_jobs` (default `jobs_per_gpu`) CPU slots when there is no GPU."""
    jobs_per_gpu = _positive_int(jobs_per_gpu, "jobs_per_gpu", "an integer >= 1")
    gpu_ids = _gpu_ids(gpus)
    if gpu_ids:
        return [Slot(f"gpu {g} (slot {k + 1}/{jobs_per_gpu})", {"CUDA_VISIBLE_DEVICES": g},
                     f"gpu{NOT_IN_FILE_NAME.sub('_', g)}-{k + 1}") for k in range(jobs_per_gpu) for g in gpu_ids]
    n = jobs_per_gpu if cpu_jobs is None else _positive_int(cpu_jobs, "cpu_jobs", "null or an integer >= 1")
    return [Slot(f"cpu (slot {k + 1}/{n})", {"CUDA_VISIBLE_DEVICES": ""}, f"cpu-{k + 1}") for k in range(n)]


class SlotLocks:
    """The slots this pool may start a job on: all of its free ones, or, with a `shared_slots` folder, those whose
    lock file no other sweep's job holds (an flock per slot, released when its job ends or its pool dies)."""

    def __init__(self, folder: str | os.PathLike | None) -> None:
        self.folder = None if folder is None else Path(folder).expanduser()
        self.held: dict[str, int] = {}  # slot key -> the open lock file's descriptor

    def take(self, free: deque[Slot]) -> Slot | None:
        """Remove and return the first free slot this pool may use now; None while every one is taken."""
        for slot in list(free):
            if self.folder is None or self._lock(slot.key):
                free.remove(slot)
                return slot
        return None

    def give_back(self, slot: Slot, free: deque[Slot]) -> None:
        fd = self.held.pop(slot.key, None)
        if fd is not None:
            os.close(fd)  # releases the flock
        free.append(slot)

    def _lock(self, key: str) -> bool:
        assert self.folder is not None
        fd = try_flock(self.folder / f"{key}.lock")
        if fd is None:
            return False
        self.held[key] = fd
        return True


def try_flock(path: Path) -> int | None:
    """A descriptor of `path` (made if need be) that holds its exclusive flock; None when another open file holds
    it. The flock lasts while any process has the descriptor open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, BlockingIOError):
            return None
        raise
    return fd


def _launch_lock(pool_dir: Path, launch_id: str) -> Path:
    return pool_dir / f"launch.{launch_id}.lock"


#: A launch's own files in .pool/: its job payloads and results (`<job>.<launch>.pkl`, `.result.pkl`, a worker's
#: `.result.pkl.tmp`) and its lock (`launch.<launch>.lock`); group 1 is the launch id. Not the workers' logs.
LAUNCH_FILE = re.compile(r"^(?:\d+|launch)\.([0-9a-f]+)\.(?:pkl|result\.pkl|result\.pkl\.tmp|lock)$")


def hold_launch(pool_dir: Path, launch_id: str) -> int | None:
    """Take this launch's lock in `pool_dir`: a descriptor that its workers inherit, so that the lock is held until
    the launcher and every worker it started are gone (remove_stale_launch_files leaves the files of a launch
    holding it). None where the file system has no locks."""
    path = _launch_lock(pool_dir, launch_id)
    while True:
        try:
            fd = try_flock(path)
        except OSError:
            return None
        assert fd is not None, f"{path} is held already"  # a fresh random id
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        os.close(fd)  # another launch's cleanup removed the file before the flock: take a new one


def remove_stale_launch_files(pool_dir: Path) -> list[Path]:
    """Remove the files (LAUNCH_FILE) of every earlier launch into `pool_dir` that left them behind (a launcher
    killed with SIGKILL, a machine gone) and whose lock no process holds any more: neither that launcher nor a
    worker of it still runs. The workers' logs stay. Returns the files removed."""
    removed: list[Path] = []
    for launch_id, paths in _launch_files(pool_dir).items():
        if not lock_busy(_launch_lock(pool_dir, launch_id)):
            removed += remove_launch_files(paths)
    return removed


def _launch_files(pool_dir: Path) -> dict[str, list[Path]]:
    """The LAUNCH_FILE files in `pool_dir`, by launch id."""
    files: dict[str, list[Path]] = {}
    for path in pool_dir.iterdir():
        if match := LAUNCH_FILE.match(path.name):
            files.setdefault(match.group(1), []).append(path)
    return files


def remove_launch_files(paths: list[Path]) -> list[Path]:
    """Remove one launch's files, its lock last; returns those removed."""
    removed = []
    for path in sorted(paths, key=lambda p: p.name.startswith("launch.")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed from outside, or out of host memory)" if -code == signal.SIGKILL else ""
        return f"worker process killed by {name}{hint}"
    return f"worker process exited with status {code}"


@dataclass
class _Job:
    num: int
    overrides: list[str]
    payload: Path
    result: Path
    log: Path
    proc: subprocess.Popen | None = None
    slot: Slot | None = None
    started: float = 0.0     # time.monotonic(), for its duration
    started_at: float = 0.0  # time.time(), to tell a run it completed from one completed before (skipped)
    claim: Path | None = None  # its computation's claim file (trainer.reuse_identical), see next_startable
    deferred: bool = False     # said once that it waits for the identical run another job is training


class GpuPoolLauncher(Launcher):
    def __init__(self, jobs_per_gpu: int = 4, gpus: Sequence[Any] | None = None, cpu_jobs: int | None = None,
                 threads_per_job: int | None = None, deadline: float | None = None,
                 shared_slots: str | None = None, end: float | None = None) -> None:
        self.jobs_per_gpu = jobs_per_gpu
        self.deadline = deadline
        self.end = end
        self.longest = 0.0  # seconds: the longest job this launcher trained (not skipped, not copied)
        self.shared_slots = shared_slots
        self.gpus = gpus
        self.cpu_jobs = cpu_jobs
        self.threads_per_job = threads_per_job
        self.launch_lock: int | None = None  # the descriptor holding this launch's lock (hold_launch) in launch()
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    # ---------------------------------------------------------------------------------------------- launch

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        try:
            for key in ("deadline", "end"):
                value = getattr(self, key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ValueError(f"hydra.launcher.{key}={value!r} is invalid: must be null or a Unix time "
                                     "in seconds")
            slots = plan_slots(self.jobs_per_gpu, self.gpus, self.cpu_jobs)
            check_named_gpus(self.gpus)
            if self.threads_per_job is not None:
                _positive_int(self.threads_per_job, "threads_per_job", "null (share the cores) or an integer >= 1")
            locks = SlotLocks(self.shared_slots)
            if locks.folder is not None:
                try:
                    locks.folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ValueError(f"hydra.launcher.shared_slots={self.shared_slots!r}: cannot make that folder "
                                     f"({exc.strerror})") from exc
        except ValueError as exc:  # a bad hydra.launcher value: one line, as for any other bad setting
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(1)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        pool_dir = sweep_dir / POOL_DIR
        pool_dir.mkdir(parents=True, exist_ok=True)
        launch_id = secrets.token_hex(3)  # another sweep into this folder has jobs of the same numbers
        self.launch_lock = hold_launch(pool_dir, launch_id)
        if self.launch_lock is not None and (stale := remove_stale_launch_files(pool_dir)):
            log.info(f"gpu_pool: removed {len(stale)} file(s) an earlier launch into this sweep left in {pool_dir} "
                     "(killed before it could clean up; its logs stay)")
        # the sweeps fmnist.study runs beside this one share the cores, unless they share the slots too
        sweeps_at_once = None if locks.folder is not None else os.environ.get(SWEEPS_AT_ONCE_ENV)
        threads = self.threads_per_job or cpu_threads(usable_cores(), len(slots), sweeps_at_once)
        shared = f", shared with the sweeps using {locks.folder}" if locks.folder is not None else ""
        log.info(f"gpu_pool: {len(job_overrides)} jobs, {len(slots)} at a time{shared} "
                 f"({', '.join(s.label for s in slots)}), {threads} CPU thread(s) each; sweep dir {sweep_dir}")

        returns: dict[int, JobReturn] = {}
        pending: deque[_Job] = deque()
        running: list[_Job] = []
        free: deque[Slot] = deque(slots)
        try:
            with signals_as_interrupt():
                pending.extend(self._prepare(job_overrides, initial_job_idx, pool_dir, launch_id, returns))
                self._run(pending, running, free, locks, threads, returns)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: each running job records `interrupted`; one line, 130
            STOPPED.set()
            stop_children([j.proc for j in running if j.proc is not None])
            log.error(f"interrupted: gpu_pool stopped {len(running)} running job(s)"
                      f"{' (#' + ', #'.join(str(j.num) for j in running) + ')' if running else ''} and did not start "
                      f"{len(job_overrides) - len(returns) - len(running)}; launch the same command again to resume "
                      "them")
            sys.exit(130)
        except BaseException:  # a bug in the loop: no worker is left running on its own
            stop_children([j.proc for j in running if j.proc is not None])
            raise
        finally:
            for job in running:  # the slots of jobs stopped above (the others were given back as they ended)
                if job.slot is not None:
                    locks.give_back(job.slot, free)
            remove_launch_files(_launch_files(pool_dir).get(launch_id, []))  # this launch's own (the logs stay)
            if self.launch_lock is not None:
                os.close(self.launch_lock)
        return [returns[initial_job_idx + i] for i in range(len(job_overrides))]

    def _prepare(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, pool_dir: Path, launch_id: str,
                 returns: dict[int, JobReturn]) -> list[_Job]:
        """The jobs that need a worker, each with its payload written; a job whose run dir holds a completed run of
        its configuration is recorded in `returns` instead."""
        import cloudpickle  # a dependency of submitit; pickles train.py's task function by value

        singletons = Singleton.get_state()
        jobs: list[_Job] = []
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            composed = compose_job(self.hydra_context, self.config, overrides, num, f"pool_{os.getpid()}_{num}")
            done = record_if_completed(self.hydra_context, composed)
            if done is not None:  # a completed run of this configuration: no worker, no slot
                returns[num] = done
                continue
            job = _Job(num, list(overrides), pool_dir / f"{num}.{launch_id}.pkl",
                       pool_dir / f"{num}.{launch_id}.result.pkl", pool_dir / f"{num}.log", claim=claim_path(composed))
            with open(job.payload, "wb") as f:
                cloudpickle.dump({
                    "hydra_context": self.hydra_context, "task_function": self.task_function,
                    "config": self.config, "overrides": job.overrides, "job_num": num,
                    "job_id": f"pool_{os.getpid()}_{num}", "singletons": singletons,
                }, f)
            jobs.append(job)
        if returns:
            log.info(f"gpu_pool: {len(returns)} job(s) already completed, skipped without a worker "
                     f"(#{', #'.join(map(str, returns))})")
        return jobs

    def _run(self, pending: deque[_Job], running: list[_Job], free: deque[Slot], locks: SlotLocks, threads: int,
             returns: dict[int, JobReturn]) -> None:
        """Start jobs on free slots until every job has ended (or the deadline or the end leaves the rest
        unstarted)."""
        while pending or running:
            refusal = start_refusal(time.time(), self.deadline, self.end, self.longest) if pending else None
            # past the deadline with an end but no training finished yet: a running job may still tell how long
            # one takes, so the pending ones wait for it rather than giving up
            waiting = refusal == DEADLINE_REACHED and self.end is not None and not self.longest and running
            if refusal and not waiting:
                from fmnist.train.callbacks import report_not_started  # (torch: not at plugin discovery)

                log.warning(f"gpu_pool: {refusal}; {len(pending)} job(s) not started "
                            f"(#{', #'.join(str(j.num) for j in pending)}): run the same command again for them")
                for job in pending:
                    returns[job.num] = failed_return(job.overrides)
                    report_not_started(filter_overrides(job.overrides))
                pending.clear()
            while pending and not refusal and free and (job := next_startable(pending)) is not None:
                if (slot := locks.take(free)) is None:
                    break
                pending.remove(job)
                running.append(self._start(job, slot, threads))
            time.sleep(POLL_S)
            for job in [j for j in running if j.proc is not None and j.proc.poll() is not None]:
                running.remove(job)
                assert job.slot is not None
                returns[job.num] = self._finish(job)
                locks.give_back(job.slot, free)

    def _start(self, job: _Job, slot: Slot, threads: int) -> _Job:
        env = dict(os.environ)
        env.update(slot.env)
        paths = [str(PLUGIN_ROOT)] + ([sys.path[0]] if sys.path and sys.path[0] else [])
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if "OMP_NUM_THREADS" not in os.environ:
            env["OMP_NUM_THREADS"] = str(threads)
        env["FMNIST_POOL_SLOT"] = slot.label
        job.started_at = time.time()
        with open(job.log, "ab") as out:
            job.proc = subprocess.Popen(
                [sys.executable, "-m", "hydra_plugins.fmnist_launchers._worker", str(job.payload), str(job.result)],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent,  # one SIGINT, from here (fmnist/stopping.py)
                pass_fds=() if self.launch_lock is None else (self.launch_lock,),  # held while it lives (hold_launch)
            )
        job.slot, job.started = slot, time.monotonic()
        (job.log.with_suffix(".pid")).write_text(f"{job.proc.pid}\n")
        log.info(f"gpu_pool: #{job.num} started on {slot.label}, pid {job.proc.pid}: "
                 f"{' '.join(filter_overrides(job.overrides))}")
        return job

    def _finish(self, job: _Job) -> JobReturn:
        assert job.proc is not None
        code = job.proc.returncode
        took = time.monotonic() - job.started
        ret: JobReturn | None = None
        if code == 0 and job.result.exists():
            try:
                with open(job.result, "rb") as f:
                    ret = pickle.load(f)
            except Exception as exc:
                log.warning(f"gpu_pool: cannot read the result of job #{job.num}: {exc}")
        run_dir = None
        if ret is not None and ret.hydra_cfg is not None:
            run_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
        else:
            run_dir = job_run_dir(self.hydra_context, self.config, job.overrides, job.num)
        if ret is None or ret.status != JobStatus.COMPLETED:
            error = _describe_exit(code) if code != 0 else "the job raised (see its log)"
            if ret is not None and ret.status == JobStatus.FAILED:
                error = f"{type(ret._return_value).__name__}: {ret._return_value}"
            record_job_failure(run_dir, error, since=job.started_at)
            log.error(f"gpu_pool: #{job.num} failed after {took:.1f}s: {error} (log: {job.log})")
            return failed_return(job.overrides)
        status, trained = _run_outcome(run_dir, job.started_at)
        if trained:  # a training's length, for start_refusal
            self.longest = max(self.longest, took)
        log.info(f"gpu_pool: #{job.num} finished in {took:.1f}s on {job.slot.label if job.slot else '?'}: {status}")
        return ret


def next_startable(pending: deque[_Job]) -> _Job | None:
    """The first pending job that can start now: one whose computation no other job is training right now (its
    claim, trainer.reuse_identical), since that one would only wait in its slot to copy the other's results. It is
    started once the claim is released, and copies them then. None while every pending job waits so."""
    for job in pending:
        if not claim_busy(job.claim):
            return job
        if not job.deferred:
            job.deferred = True
            log.info(f"gpu_pool: #{job.num} waits for the identical run being trained elsewhere (its results are "
                     "copied once it ends); later jobs start first")
    return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (what Slurm's --cpus-per-task, taskset or a container's
    cpuset leave it, where os.cpu_count() counts the whole machine) where the system tells, else every core."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return os.cpu_count() or 1


def cpu_threads(cores: int, slots: int, sweeps_at_once: str | None) -> int:
    """CPU threads per job: the cores shared by this pool's slots and by the other sweeps `fmnist.study` runs
    beside it (its SWEEPS_AT_ONCE_ENV; unset or not a positive integer: this sweep alone)."""
    sweeps = int(sweeps_at_once) if sweeps_at_once and sweeps_at_once.isdigit() and int(sweeps_at_once) > 0 else 1
    return max(1, cores // (slots * sweeps))


def _summary_status(run_dir: Path | None, since: float = 0.0) -> str:
    """The run's status for the end-of-job line; "skipped" when it completed before `since` (the job's start), as
    the sweep line counts it."""
    return _run_outcome(run_dir, since)[0]


def _run_outcome(run_dir: Path | None, since: float = 0.0) -> tuple[str, bool]:
    """_summary_status's line, and whether the job trained its run (completed now, not copied from an identical
    run by trainer.reuse_identical): one read of summary.json for both."""
    try:
        from fmnist.train.callbacks import completed_before
        from fmnist.train.run_dir import read_summary

        summary = read_summary(run_dir) if run_dir is not None else None
        skipped = summary and completed_before(run_dir, since)
    except Exception:
        summary = skipped = None
    if not summary:
        return "no summary.json", False
    if summary.get("status") == "failed":
        return f"failed: {summary.get('error')}", False
    if summary.get("status") == "completed" and skipped:
        return "skipped: already completed", False
    return str(summary.get("status")), summary.get("status") == "completed" and not summary.get("reused_from")
