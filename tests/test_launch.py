"""Launching: launcher presets, K jobs per device (gpu_pool), unique output folders, failure isolation
and the sweep's closing report (CPU, tiny nets)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobStatus
from hydra.types import HydraContext
from omegaconf import OmegaConf, open_dict
from hydra._internal.callbacks import Callbacks

from fmnist.train.callbacks import CLOCK_SLACK_S, SweepReport, report_not_started, sweep_outcome
from fmnist.train.renumber import job_dirnames, renumber_run_dirs
from fmnist.train.logging import to_container
from fmnist.train.reuse import claim_file
from fmnist.train.run_dir import DIRNAME_MAX_BYTES, flock_held, hold_run_dir, short_dirname
from fmnist.train.run import LAUNCH_COMMAND_ENV
from hydra_plugins.fmnist_launchers import gpu_pool
from hydra_plugins.fmnist_launchers.job_checks import claim_path, compose_job, record_if_completed
from hydra_plugins.fmnist_launchers.failures import config_run_dir, job_config, record_job_failure
from hydra_plugins.fmnist_launchers.gpu_pool import GpuPoolLauncher, plan_slots, visible_gpus
from runs import run_train_cli, train_cmd

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=4", "data.subset=256", "data.val_fraction=0.02", "trainer.epochs=1", "logger=none"]


run_cli = run_train_cli


def summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name.split("_", 1)[0]: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}


def hydra_cfg(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


# ------------------------------------------------------------------------------------------------ presets


def test_slurm_preset_exposes_the_cluster_knobs() -> None:
    launcher = hydra_cfg("hydra/launcher=slurm").hydra.launcher
    assert launcher._target_ == "hydra_plugins.fmnist_launchers.slurm.FmnistSlurmLauncher"
    for key in ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min", "array_parallelism",
                "max_num_timeout", "setup", "qos", "account", "additional_parameters"):
        assert key in launcher, key
    assert launcher.max_num_timeout > 0  # timeouts requeue and resume
    tuned = hydra_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2",
                      "hydra.launcher.setup=[module load cuda]").hydra.launcher
    assert (tuned.partition, tuned.gpus_per_node, list(tuned.setup)) == ("gpu", 2, ["module load cuda"])


@pytest.mark.parametrize(("preset", "target"), [
    ("local", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    ("basic", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    ("submitit_procs", "hydra_plugins.fmnist_launchers.slurm.FmnistSubmititLocalLauncher"),
    ("gpu_pool", "hydra_plugins.fmnist_launchers.gpu_pool.GpuPoolLauncher"),
])
def test_launcher_presets_compose(preset: str, target: str) -> None:
    assert hydra_cfg(f"hydra/launcher={preset}").hydra.launcher._target_ == target


def test_sweep_report_is_on_by_default() -> None:
    callbacks = hydra_cfg().hydra.callbacks
    assert any(c._target_ == "fmnist.train.callbacks.SweepReport" for c in callbacks.values())


# ------------------------------------------------------------------------------------- device assignment


def test_pool_puts_k_jobs_on_every_gpu_interleaved() -> None:
    slots = plan_slots(3, gpus=["0", "1"])
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "0", "1", "0", "1"]
    assert len({s.label for s in slots}) == 6


def test_pool_without_gpu_runs_k_cpu_workers() -> None:
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(2, gpus=[])] == ["", ""]
    assert len(plan_slots(2, gpus=[], cpu_jobs=3)) == 3
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(2, gpus=3)] == ["3", "3"]  # gpus=3: GPU 3 alone
    with pytest.raises(ValueError, match="jobs_per_gpu"):
        plan_slots(0, gpus=[])


@pytest.mark.parametrize(("cores", "slots", "sweeps", "threads"), [
    (16, 4, None, 4), (16, 4, "2", 2), (16, 4, "3", 1), (2, 4, None, 1), (16, 4, "0", 4), (16, 4, "two", 4)])
def test_cpu_threads_share_the_cores_among_slots_and_sweeps_at_once(cores: int, slots: int, sweeps: str | None,
                                                                      threads: int) -> None:
    assert gpu_pool.cpu_threads(cores, slots, sweeps) == threads


def test_threads_per_job_share_the_cores_this_process_may_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Under `srun --cpus-per-task=8` (or taskset, a container's cpuset) on a 64-core node, 2 slots get 4 threads
    each, not 32: os.cpu_count() counts the whole node, the CPU affinity what this process may use."""
    fake_workers(tmp_path, monkeypatch, caplog, "pass")
    monkeypatch.delenv(gpu_pool.SWEEPS_AT_ONCE_ENV, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    cpu_pool(tmp_path / "sweep", jobs=2).launch([["seed=0"]], 0)
    assert "2 at a time (cpu (slot 1/2), cpu (slot 2/2)), 4 CPU thread(s) each" in caplog.text
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS
    assert gpu_pool.usable_cores() == 64


def test_pool_honours_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == []  # this machine has no GPU: CPU slots, not a "gpu 2" that is the CPU
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: 2)  # torch counts the GPUs the variable names
    assert visible_gpus() == ["2", "3"]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(1)] == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the usual way to hide every GPU: CPU slots, not a GPU "-1"
    assert visible_gpus() == [] and [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(2)] == ["", ""]


#: A stand-in pool worker: says it is up, then waits; Ctrl-C makes it record `interrupted` (as train() does).
FAKE_WORKER = """import pathlib, sys, time
result = pathlib.Path(sys.argv[-1])
try:
    result.with_suffix(".up").write_text("")  # in the `try`: the pool is stopped as soon as the file appears
    time.sleep(60)
except KeyboardInterrupt:
    result.with_suffix(".interrupted").write_text("")
    sys.exit(130)
"""


def fake_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, worker: str) -> None:
    """gpu_pool workers run the Python code `worker` instead of a job; the pool's log goes to caplog."""
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\nexec {sys.executable} -c '{worker}' \"$@\"\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    monkeypatch.setattr(gpu_pool, "configure_log", lambda *a: None)
    monkeypatch.setattr(gpu_pool.log, "handlers", [caplog.handler])  # whatever Hydra's logging setup did before
    caplog.set_level(logging.INFO, logger=gpu_pool.log.name)  # whatever level an earlier test left it at


def cpu_pool(sweep: Path, jobs: int) -> GpuPoolLauncher:
    """A gpu_pool launcher for `sweep` with `jobs` CPU slots."""
    launcher = GpuPoolLauncher(jobs_per_gpu=jobs, gpus=[])
    launcher.setup(hydra_context=object(), task_function=print,
                   config=hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={sweep}"))
    return launcher


def _refused_launch(launcher: GpuPoolLauncher, tmp_path: Path, capsys: pytest.CaptureFixture) -> str:
    """What `launcher` printed to stderr refusing a one-job sweep into tmp_path/sweep: it exits with status 1 and
    makes no sweep folder."""
    launcher.setup(hydra_context=object(), task_function=print,
                   config=hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / 'sweep'}"))
    with pytest.raises(SystemExit) as info:
        launcher.launch([["seed=0"]], 0)
    assert info.value.code == 1 and not (tmp_path / "sweep").exists()
    return capsys.readouterr().err


@pytest.mark.parametrize(("settings", "message"), [
    ({"jobs_per_gpu": 0}, "hydra.launcher.jobs_per_gpu=0 is invalid: must be an integer >= 1"),
    ({"jobs_per_gpu": "abc"}, "hydra.launcher.jobs_per_gpu='abc' is invalid: must be an integer >= 1"),
    ({"jobs_per_gpu": 2, "cpu_jobs": 0}, "hydra.launcher.cpu_jobs=0 is invalid: must be null or an integer >= 1"),
    ({"deadline": "abc"}, "hydra.launcher.deadline='abc' is invalid: must be null or a Unix time in seconds"),
    ({"gpus": "abc"}, "hydra.launcher.gpus='abc' is invalid: must be null, a GPU id or a list of them, e.g. [0,1]"),
    ({"gpus": [0, 1.0]}, "hydra.launcher.gpus=[0, 1.0] is invalid: must be null, a GPU id or a list of them, "
                         "e.g. [0,1]"),
    ({"threads_per_job": 0}, "hydra.launcher.threads_per_job=0 is invalid: must be null (share the cores) or an "
                             "integer >= 1"),
])
def test_bad_pool_settings_are_one_line_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   settings: dict, message: str) -> None:
    assert _refused_launch(GpuPoolLauncher(**{"gpus": [], **settings}), tmp_path, capsys) == f"error: {message}\n"


@pytest.mark.parametrize(("count", "gpus", "message"), [
    (0, [0, 1], "hydra.launcher.gpus=[0, 1] names GPU 0, 1, but this machine has no GPU"),
    (2, [1, 2], "hydra.launcher.gpus=[1, 2] names GPU 2, but this machine has 2 GPUs (0-1)"),
    (1, 3, "hydra.launcher.gpus=3 names GPU 3, but this machine has 1 GPU (0)"),
    (2, [0, -1], "hydra.launcher.gpus=[0, -1] names GPU -1, but this machine has 2 GPUs (0-1)"),  # -1: no GPU
])
def test_gpus_the_machine_lacks_are_refused_not_run_on_the_cpu(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        count: int, gpus, message: str) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: count)
    err = _refused_launch(GpuPoolLauncher(jobs_per_gpu=2, gpus=gpus), tmp_path, capsys)
    assert err.startswith(f"error: {message}; leave it null") and err.count("\n") == 1


def test_named_gpus_the_machine_has_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: 2)
    monkeypatch.setattr(gpu_pool, "gpu_probe", lambda gpu: gpu == "GPU-5a1b")  # CUDA finds a device in this UUID
    for gpus in (None, [0, 1], 1, ["GPU-5a1b"], []):
        gpu_pool.check_named_gpus(gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-5a1b")  # set: the ids it lists, as it spells them
    for gpus in (None, [2], ["GPU-5a1b", 2], []):
        gpu_pool.check_named_gpus(gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-a,MIG-b")  # a CUDA that finds one MIG instance per process
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: 1)
    assert visible_gpus() == ["MIG-a", "MIG-b"]  # each job is given one of them


@pytest.mark.parametrize(("env", "count", "gpus", "message"), [
    # a job given CUDA_VISIBLE_DEVICES=0 would escape the GPUs the launcher was started with (Slurm, a shared box)
    ("2,3", 2, [0, 1], "hydra.launcher.gpus=[0, 1] names GPU 0, 1, but CUDA_VISIBLE_DEVICES=2,3 leaves this process "
                       "GPU 2, 3"),
    ("", 0, [0], "hydra.launcher.gpus=[0] names GPU 0, but CUDA_VISIBLE_DEVICES= leaves this process no GPU"),
    ("0", 0, [0], "hydra.launcher.gpus=[0] names GPU 0, but CUDA_VISIBLE_DEVICES=0 leaves this process no GPU"),
    (None, 2, ["GPU-0000dead"], "hydra.launcher.gpus=['GPU-0000dead'] names GPU GPU-0000dead, but this machine has "
                                "2 GPUs (0-1)"),  # a UUID in which CUDA finds no device
    (None, 0, ["GPU-5a1b"], "hydra.launcher.gpus=['GPU-5a1b'] names GPU GPU-5a1b, but this machine has no GPU"),
])
def test_gpus_outside_cuda_visible_devices_or_unknown_uuids_are_refused(
        monkeypatch: pytest.MonkeyPatch, env: str | None, count: int, gpus, message: str) -> None:
    if env is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: count)
    monkeypatch.setattr(gpu_pool, "gpu_probe", lambda gpu: gpu == "GPU-5a1b")
    with pytest.raises(ValueError) as info:
        gpu_pool.check_named_gpus(gpus)
    assert str(info.value).startswith(message + "; leave it null")


@pytest.mark.parametrize(("env", "count", "message"), [
    # CUDA stops at an entry that is no GPU: on one GPU, "0,1" is GPU 0 alone, and GPU 1's jobs would train on the CPU
    ("0,1", 1, "CUDA_VISIBLE_DEVICES=0,1 names 2 GPUs, but CUDA finds 1 of them"),
    ("0,7,1", 1, "CUDA_VISIBLE_DEVICES=0,7,1 names 3 GPUs, but CUDA finds 1 of them"),
    ("0,0", 1, "CUDA_VISIBLE_DEVICES=0,0 names 2 GPUs, but CUDA finds 1 of them"),
])
def test_cuda_visible_devices_naming_gpus_cuda_does_not_find_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, env: str, count: int,
        message: str) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    monkeypatch.setattr(gpu_pool, "cuda_device_count", lambda: count)
    err = _refused_launch(GpuPoolLauncher(jobs_per_gpu=2), tmp_path, capsys)
    assert err.startswith(f"error: {message}: ") and err.count("\n") == 1


def test_the_uuid_probe_finds_no_device_in_a_uuid_cuda_does_not_know() -> None:
    """gpu_probe asks a child process with the id as CUDA_VISIBLE_DEVICES (on this CPU machine, and on a GPU one)."""
    assert gpu_pool.gpu_probe("GPU-00000000-0000-0000-0000-000000000000") is False


def test_a_gpu_named_twice_is_refused() -> None:
    """gpus=[0,0] would put 2K jobs on GPU 0 (jobs_per_gpu says K), each labelled slot k of K."""
    with pytest.raises(ValueError, match=r"hydra.launcher.gpus=\[0, '0', 1\] names GPU 0 more than once: name each "
                                         "GPU once and set hydra.launcher.jobs_per_gpu"):
        plan_slots(2, gpus=[0, "0", 1])


#: A stand-in pool worker that notes which job its payload holds.
NOTING_WORKER = """import pathlib, sys, time
payload = pathlib.Path(sys.argv[-2]).read_bytes()
time.sleep(0.2)
seen = [o for o in ("a=0", "a=1", "b=0", "b=1") if o.encode() in payload]
pathlib.Path(sys.argv[-1]).with_suffix(".seen").write_text(" ".join(seen))
"""


def test_two_gpu_pool_sweeps_into_one_folder_run_their_own_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Two sweeps into the same folder at once (say seed=0 and seed=1 of the study): their jobs have the same
    numbers, and each worker still runs its own sweep's job."""
    fake_workers(tmp_path, monkeypatch, caplog, NOTING_WORKER)
    launchers = [cpu_pool(tmp_path / "sweep", jobs=1) for _ in range(2)]
    grids = [[["a=0"], ["a=1"]], [["b=0"], ["b=1"]]]
    threads = [threading.Thread(target=lt.launch, args=(grid, 0)) for lt, grid in zip(launchers, grids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    seen = sorted(p.read_text() for p in (tmp_path / "sweep" / ".pool").glob("*.seen"))
    assert seen == ["a=0", "a=1", "b=0", "b=1"]


#: A stand-in pool worker that records when it ran (start and end, wall-clock seconds).
TIMING_WORKER = """import pathlib, sys, time
start = time.time()
time.sleep(0.6)
pathlib.Path(sys.argv[-1]).with_suffix(".span").write_text(f"{start} {time.time()}")
"""


def test_sweeps_sharing_slots_keep_k_jobs_running_in_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Two sweeps at once with one shared_slots folder and 2 slots each run 2 jobs at a time in all, not 4, and
    every job of both runs; the slots' lock files are free again afterwards."""
    fake_workers(tmp_path, monkeypatch, caplog, TIMING_WORKER)
    launchers = []
    for name in ("a", "b"):
        launcher = GpuPoolLauncher(jobs_per_gpu=2, gpus=[], shared_slots=str(tmp_path / "slots"))
        launcher.setup(hydra_context=object(), task_function=print,
                       config=hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / name}"))
        launchers.append(launcher)
    grids = [[[f"{name}={i}"] for i in range(3)] for name in ("a", "b")]
    threads = [threading.Thread(target=lt.launch, args=(grid, 0)) for lt, grid in zip(launchers, grids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    spans = [tuple(map(float, p.read_text().split())) for p in sorted(tmp_path.glob("[ab]/.pool/*.span"))]
    assert len(spans) == 6
    at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert at_once == 2
    assert sorted(p.name for p in (tmp_path / "slots").iterdir()) == ["cpu-1.lock", "cpu-2.lock"]
    assert "2 at a time, shared with the sweeps using" in caplog.text
    locks = gpu_pool.SlotLocks(tmp_path / "slots")
    free = deque(gpu_pool.plan_slots(2, gpus=[]))
    assert [locks.take(free).key, locks.take(free).key] == ["cpu-1", "cpu-2"]  # nothing left held


def test_slot_locks_skip_the_slots_another_sweep_holds(tmp_path: Path) -> None:
    """A slot whose lock another pool holds is passed over for the next free one; given back, it is free again."""
    mine, other = gpu_pool.SlotLocks(tmp_path), gpu_pool.SlotLocks(tmp_path)
    my_free, other_free = (deque(gpu_pool.plan_slots(2, gpus=[0])) for _ in range(2))
    held = other.take(other_free)
    assert held is not None and held.key == "gpu0-1"
    got = mine.take(my_free)
    assert got is not None and got.key == "gpu0-2" and [s.key for s in my_free] == ["gpu0-1"]
    assert mine.take(my_free) is None and [s.key for s in my_free] == ["gpu0-1"]  # held elsewhere: stays free here
    other.give_back(held, other_free)
    again = mine.take(my_free)
    assert again is not None and again.key == "gpu0-1" and not my_free
    unshared = gpu_pool.SlotLocks(None)  # without a folder: every free slot, in order
    free = deque(gpu_pool.plan_slots(2, gpus=[0]))
    assert unshared.take(free).key == "gpu0-1" and unshared.take(free).key == "gpu0-2" and unshared.take(free) is None


def test_shared_slots_of_mig_devices_lock_a_file_of_their_own(tmp_path: Path) -> None:
    """CUDA 11's MIG ids hold slashes (MIG-GPU-<uuid>/<gi>/<ci>): each slot's lock is still one file in the folder."""
    locks = gpu_pool.SlotLocks(tmp_path)
    free = deque(gpu_pool.plan_slots(1, gpus=["MIG-GPU-5a1b/1/0", "MIG-GPU-5a1b/2/0"]))
    taken = [locks.take(free), locks.take(free)]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in taken] == ["MIG-GPU-5a1b/1/0", "MIG-GPU-5a1b/2/0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpuMIG-GPU-5a1b_1_0-1.lock", "gpuMIG-GPU-5a1b_2_0-1.lock"]


def test_a_shared_slots_path_that_is_no_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    launcher = GpuPoolLauncher(jobs_per_gpu=2, gpus=[], shared_slots=str(tmp_path / "file"))
    launcher.setup(hydra_context=object(), task_function=print,
                   config=hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / 'sweep'}"))
    with pytest.raises(SystemExit) as info:
        launcher.launch([["seed=0"]], 0)
    assert info.value.code == 1
    assert capsys.readouterr().err == (f"error: hydra.launcher.shared_slots='{tmp_path / 'file'}': cannot make that "
                                       "folder (File exists)\n")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_gpu_pool_stop_lets_every_running_job_record_interrupted(sig: signal.Signals, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-C (SIGINT) or SIGTERM to a gpu_pool sweep: each running worker gets one SIGINT and records its run as
    interrupted (not killed first), a job not yet started stays so, and the sweep ends with one line, status 130."""
    fake_workers(tmp_path, monkeypatch, caplog, FAKE_WORKER)
    launcher = cpu_pool(tmp_path / "sweep", jobs=2)
    stopped = threading.Event()  # tells hydra/callbacks=analyze not to analyse the stopped sweep
    monkeypatch.setattr(gpu_pool, "STOPPED", stopped)  # after Hydra's plugin scan (cpu_pool) has re-run the module
    pool = tmp_path / "sweep" / ".pool"

    def stop_when_up() -> None:
        end = time.monotonic() + 30
        while len(list(pool.glob("*.up"))) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        os.kill(os.getpid(), sig)

    threading.Thread(target=stop_when_up, daemon=True).start()
    try:
        launcher.launch([["seed=0"], ["seed=1"], ["seed=2"]], initial_job_idx=0)
        caught: BaseException | None = None
    except BaseException as exc:  # noqa: B036 - what the launcher raises is the point
        caught = exc
    assert isinstance(caught, SystemExit) and caught.code == 130, repr(caught)
    assert sorted(p.name.split(".")[0] for p in pool.glob("*.interrupted")) == ["0", "1"]
    assert not list(pool.glob("2.*.up"))
    assert not list(pool.glob("*.pkl"))  # payloads and results removed
    assert "interrupted: gpu_pool stopped 2 running job(s) (#0, #1) and did not start 1" in caplog.text
    assert stopped.is_set()


def _launch_litter(pool: Path, launch_id: str, lock: bool = True) -> list[Path]:
    """What launch `launch_id` keeps in .pool/ while it runs (payloads, a result, a worker's temp result, its lock)."""
    pool.mkdir(parents=True, exist_ok=True)
    files = [pool / f"0.{launch_id}.pkl", pool / f"1.{launch_id}.pkl", pool / f"0.{launch_id}.result.pkl",
             pool / f"1.{launch_id}.result.pkl.tmp"] + ([pool / f"launch.{launch_id}.lock"] if lock else [])
    for path in files:
        path.write_bytes(b"x")
    return files


def test_files_of_a_killed_launch_are_removed_and_a_living_ones_kept(tmp_path: Path) -> None:
    """.pool/ after a launcher was killed with SIGKILL (its lock held by nobody), beside an older launch's files
    without any lock and a living launch (its lock held): the dead two launches' payloads, results and lock go, the
    living one's stay, and so do the workers' logs and pid files."""
    pool = tmp_path / ".pool"
    dead = _launch_litter(pool, "a1b2c3") + _launch_litter(pool, "d4e5f6", lock=False)
    living = _launch_litter(pool, "0badc0")
    kept = [pool / "0.log", pool / "0.pid", pool / "1.log"]
    for path in kept:
        path.write_text("worker output")
    fd = gpu_pool.hold_launch(pool, "0badc0")
    try:
        assert sorted(gpu_pool.remove_stale_launch_files(pool)) == sorted(dead)
    finally:
        os.close(fd)
    assert sorted(pool.iterdir()) == sorted(living + kept)
    assert sorted(gpu_pool.remove_stale_launch_files(pool)) == sorted(living)  # its holder gone: removed too
    assert sorted(pool.iterdir()) == sorted(kept)


#: A stand-in pool worker that notes the files it holds open (the launch's lock among them), then its job ends.
FD_WORKER = """import os, pathlib, sys
fds = pathlib.Path("/proc/self/fd")
held = sorted(os.path.basename(os.readlink(fds / fd)) for fd in os.listdir(fds) if fd.isdigit() and
              os.path.exists(fds / fd))
pathlib.Path(sys.argv[-1]).with_suffix(".held").write_text(" ".join(held))
"""


def test_a_launch_holds_its_lock_through_its_workers_and_leaves_only_logs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Each worker inherits its launch's lock (so a relaunch leaves the files of a launch whose workers outlive a
    killed launcher alone); a launch removes the files a killed launch left, says so, and leaves only the logs."""
    fake_workers(tmp_path, monkeypatch, caplog, FD_WORKER)
    pool = tmp_path / "sweep" / ".pool"
    litter = _launch_litter(pool, "a1b2c3")
    cpu_pool(tmp_path / "sweep", jobs=1).launch([["seed=0"]], 0)
    held = next(pool.glob("0.*.held"))
    launch_id = held.name.split(".")[1]
    assert [f for f in held.read_text().split() if f.startswith("launch.")] == [f"launch.{launch_id}.lock"]
    assert not any(p.exists() for p in litter)
    assert f"removed {len(litter)} file(s) an earlier launch into this sweep left in {pool}" in caplog.text
    assert sorted(p.suffix for p in pool.iterdir()) == [".held", ".log", ".pid"]


def test_a_changed_grid_finds_the_runs_of_the_earlier_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stage2_skip launched with seed=0, then with all three seeds into the same folder: seeds are the inner loop,
    so model.skip=False seed=0 was job #1 and is job #3 now. At sweep start its run dir is renamed to job #3's (to be
    skipped there, not trained again beside the old one); run dirs of no job, or of a custom subdir, stay."""
    sweep = tmp_path / "sweep"
    for name in ("0_model.skip=True,seed=0", "1_model.skip=False,seed=0", "7_model.skip=True,seed=9"):
        (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / "1_model.skip=False,seed=0" / "summary.json").write_text(json.dumps(
        {"status": "completed", "run_dir": str(sweep / "1_model.skip=False,seed=0")}))
    (sweep / "4_model.skip=True,seed=2").mkdir()  # as the study's device kit carries a run: its summary alone
    (sweep / "4_model.skip=True,seed=2" / "summary.json").write_text(json.dumps({"status": "completed"}))
    copy = tmp_path / "stage2_norm" / "0_norm=batchnorm"  # a run of another preset that copied it (reuse_identical)
    copy.mkdir(parents=True)
    (copy / "summary.json").write_text(json.dumps(
        {"status": "completed", "reused_from": os.path.join("..", "..", "sweep", "1_model.skip=False,seed=0")}))
    monkeypatch.setenv(LAUNCH_COMMAND_ENV, "")  # on_multirun_start exports the command line: restored after the test
    SweepReport().on_multirun_start(hydra_cfg("+experiment=stage2_skip", f"hydra.sweep.dir={sweep}"))
    assert sorted(p.name for p in sweep.iterdir()) == [
        "0_model.skip=True,seed=0", "2_model.skip=True,seed=2", "3_model.skip=False,seed=0", "7_model.skip=True,seed=9"]
    moved = json.loads((sweep / "3_model.skip=False,seed=0" / "summary.json").read_text())
    assert moved["run_dir"] == str(sweep / "3_model.skip=False,seed=0")
    link = json.loads((copy / "summary.json").read_text())["reused_from"]
    assert (copy / link).resolve() == (sweep / "3_model.skip=False,seed=0").resolve()
    assert job_dirnames(hydra_cfg("+experiment=stage2_skip", "hydra.sweep.subdir=${hydra.job.override_dirname}")) is None


@pytest.mark.parametrize("grid", [["seed=0,0"], ["optimizer.lr=0.1,1e-1"], ["model=resnet9", "seed=1,0,1"]])
def test_a_sweep_that_launches_one_job_twice_is_refused_before_anything_is_written(
        grid: list[str], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """`seed=0,0` (or `optimizer.lr=0.1,1e-1`: Hydra writes both as 0.1) trained the same run twice, in two run dirs
    the analysis then counts once (status duplicate): one line and exit status 1 instead, before the sweep dir is
    made."""
    monkeypatch.setenv(LAUNCH_COMMAND_ENV, "")  # on_multirun_start exports the command line: restored after the test
    sweep = tmp_path / "sweep"
    cfg = hydra_cfg(f"hydra.sweep.dir={sweep}")
    with open_dict(cfg):
        cfg.hydra.overrides.task = grid
    with pytest.raises(SystemExit) as exited:
        SweepReport().on_multirun_start(cfg)
    assert exited.value.code == 1 and not sweep.exists()
    assert re.fullmatch(r"error: jobs #0 and #[12] of this sweep are the same run \(.*(seed=[01]|lr=0.1)\): a value "
                        r"the sweep lists twice .*; list each value once\n", capsys.readouterr().err)
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["seed=0,1", "optimizer.lr=0.1,0.2"]
    SweepReport().on_multirun_start(cfg)
    assert sweep.is_dir()


@pytest.mark.parametrize("grid", [["seed=range(0)"], ["model=glob(nomatch*)", "seed=0,1"]])
def test_a_sweep_of_no_job_is_refused_before_anything_is_written(grid: list[str], tmp_path: Path) -> None:
    """`seed=range(0)`, or a glob that matches no option, launched nothing, wrote multirun.yaml and ended with
    "sweep: 0 completed, 0 failed, 0 skipped" and exit status 0, as if the sweep had been done."""
    proc = run_train_cli("-m", "logger=none", *grid, f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=120)
    assert proc.returncode == 1 and not (tmp_path / "sweep").exists()
    assert (proc.stdout + proc.stderr).strip() == ("error: this sweep launches no job: one of its values is a sweep "
                                                   "of none (a range(...) that is empty, a glob(...) that matches no "
                                                   "option of its group)")


def test_an_interval_sweep_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """`optimizer.lr=interval(0.01,0.1)` (Optuna's syntax) printed a warning about the run dirs, made the sweep dir
    and stopped with the basic sweeper's traceback."""
    proc = run_train_cli("-m", "logger=none", "optimizer.lr=interval(0.01,0.1)", f"hydra.sweep.dir={tmp_path / 's'}",
                         timeout=120)
    assert proc.returncode == 1 and not (tmp_path / "s").exists()
    assert (proc.stdout + proc.stderr).strip() == (
        "error: BasicSweeper does not support sweep type : INTERVAL_SWEEP: interval(...) is for sweepers that sample "
        "(Optuna's, Ax's); list the values, or use range(...) or choice(...)")


def test_a_glob_sweep_is_expanded_at_sweep_start(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`'model=glob(*)'` printed "warning: cannot match the run dirs of ... with this grid: ConfigLoader is not set"
    at every launch, and its run dirs were never renumbered; its jobs are now expanded as the sweeper expands them."""
    monkeypatch.setenv(LAUNCH_COMMAND_ENV, "")
    sweep = tmp_path / "sweep"
    (sweep / "5_model=resnet18" / ".hydra").mkdir(parents=True)  # job #5 of an earlier grid, #2 of glob(*)
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.sweep.dir={sweep}"], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.overrides.task = ["model=glob(*)"]
        SweepReport().on_multirun_start(cfg)
    assert "warning" not in capsys.readouterr().out
    assert sorted(p.name for p in sweep.iterdir()) == ["2_model=resnet18"]


def test_a_value_listed_twice_on_the_command_line_trains_nothing(tmp_path: Path) -> None:
    proc = run_train_cli("-m", "seed=0,0", "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=120)
    assert proc.returncode == 1 and not (tmp_path / "sweep").exists()
    assert (proc.stdout + proc.stderr).strip().startswith("error: jobs #0 and #1 of this sweep are the same run (")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_run_dir_names_fit_a_folder_name_and_keep_jobs_apart() -> None:
    """`<job>_<overrides>` of a grid with many overrides passed 255 bytes, the longest folder name: the sweep stopped
    with a traceback ('File name too long'). A long one keeps its first whole overrides and a hash of the rest."""
    assert short_dirname("model.skip=True,seed=0") == "model.skip=True,seed=0"
    long = ",".join(f"optimizer.key{i}=value{i}" for i in range(20))
    a, b = short_dirname(f"{long},seed=0"), short_dirname(f"{long},seed=1")
    assert a != b and re.fullmatch(r"(optimizer\.key\d+=value\d+,)+~[0-9a-f]{12}", a), a
    assert len(f"9999999999_{a}".encode()) <= 255 and len(a.encode()) > DIRNAME_MAX_BYTES - 40
    wide = short_dirname("model.name=" + "\u00e9" * 200)  # two bytes each, one override: cut between characters
    assert wide.startswith("model.name=\u00e9") and len(wide.encode()) <= DIRNAME_MAX_BYTES


@pytest.mark.slow
def test_a_sweep_with_many_overrides_runs_into_short_run_dirs(real_resplit_dir: Path, tmp_path: Path) -> None:
    """The same sweep again with its seeds in the other order finds both runs under their new job numbers (the
    renumbering of a changed grid names run dirs as the jobs do) and skips them."""
    sweep = tmp_path / "sweep"
    many = ["optimizer=adamw", "optimizer.lr=0.001", "optimizer.weight_decay=0.0005", "scheduler=onecycle",
            "trainer.label_smoothing=0.1", "model.dropout=0.1", "augment=standard", "activation=gelu",
            "trainer.batch_size=64", *TINY, f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"]
    proc = run_cli("-m", *many, "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir())

    def seeds() -> list[list[str]]:
        return [[o for o in p.name.split(",") if o.startswith("seed=")] for p in sorted(sweep.iterdir()) if p.is_dir()]

    assert seeds() == [["seed=0"], ["seed=1"]] and all(re.search(",~[0-9a-f]{12}$", n) for n in names), names
    assert all(json.loads((sweep / n / "summary.json").read_text())["status"] == "completed" for n in names)
    again = run_cli("-m", *many, "seed=1,0")
    assert again.returncode == 0 and "sweep: 0 completed, 0 failed, 2 skipped" in again.stdout, again.stderr[-3000:]
    assert seeds() == [["seed=1"], ["seed=0"]]


def test_a_run_dir_being_trained_is_not_renumbered(tmp_path: Path) -> None:
    """The same grid change while the earlier launch still trains that run dir: renaming it under the running
    process would split its files between two folders."""
    sweep = tmp_path / "sweep"
    busy = sweep / "1_model.skip=False,seed=0"
    (busy / ".hydra").mkdir(parents=True)
    (tmp_path / "other" / "0_x").mkdir(parents=True)
    (tmp_path / "other" / "0_x" / "summary.json").write_text('"not an object"')  # a damaged run beside it
    with hold_run_dir(busy):
        assert renumber_run_dirs(sweep, ["model.skip=True,seed=0", "x", "y", "model.skip=False,seed=0"]) == []
    assert renumber_run_dirs(sweep, ["model.skip=True,seed=0", "x", "y", "model.skip=False,seed=0"]) == [
        (busy.name, "3_model.skip=False,seed=0")]


def test_a_run_dir_is_renumbered_only_when_its_job_is_unambiguous(tmp_path: Path) -> None:
    """Renaming needs one job for the dirname, one run dir holding it, and the job's own run dir not yet there."""
    sweep = tmp_path / "sweep"
    for name in ("5_a", "0_b", "3_b", "0_c"):  # `a` is two jobs' dirname (keys left out of names), `b` two run dirs'
        (sweep / name / ".hydra").mkdir(parents=True)
    (sweep / "2_c").mkdir()  # job 2's dir exists already (Hydra made it): `0_c` is not moved onto it
    before = sorted(p.name for p in sweep.iterdir())
    assert renumber_run_dirs(sweep, ["a", "b", "c", "a"]) == []
    assert sorted(p.name for p in sweep.iterdir()) == before
    # a sweep with another sweeper numbers its jobs its own way: left alone
    assert job_dirnames(hydra_cfg("+experiment=stage2_skip", "hydra.sweeper._target_=other.Sweeper")) is None


def test_a_renamed_run_keeps_the_folder_its_summary_records(tmp_path: Path) -> None:
    """A run dir brought from another machine (the study's device kit) records that machine's folder: the rename
    changes the run dir's name in it, not the folder."""
    sweep = tmp_path / "sweep"
    (sweep / "1_x" / ".hydra").mkdir(parents=True)
    (sweep / "1_x" / "summary.json").write_text(json.dumps({"status": "completed", "run_dir": "/device/sweep/1_x"}))
    assert renumber_run_dirs(sweep, ["w", "y", "x"]) == [("1_x", "2_x")]
    assert json.loads((sweep / "2_x" / "summary.json").read_text())["run_dir"] == "/device/sweep/2_x"


def test_a_run_dir_renamed_for_a_changed_grid_counts_as_skipped(tmp_path: Path) -> None:
    """seed=0 first, seed=0,1 later: the finished run renamed from job 1 to job 2 was not trained again."""
    now = time.time()
    sweep, renamed = tmp_path / "sweep", tmp_path / "sweep" / "2_model.skip=False,seed=0"
    _fake_run(sweep, "1_model.skip=False,seed=0", "completed", now - 3600)
    summary = sweep / "1_model.skip=False,seed=0" / "summary.json"
    summary.write_text(json.dumps({"status": "completed", "run_dir": str(summary.parent)}))
    os.utime(summary, (now - 3600, now - 3600))
    assert renumber_run_dirs(sweep, ["model.skip=True,seed=0", "model.skip=True,seed=1", "model.skip=False,seed=0"])
    os.utime(renamed / ".hydra" / "overrides.yaml", (now + 5, now + 5))  # Hydra rewrites it when it launches job 2
    assert sweep_outcome(sweep, since=now).line() == f"sweep: 0 completed, 0 failed, 1 skipped ({sweep})"
    assert json.loads((renamed / "summary.json").read_text())["run_dir"] == str(renamed)


# -------------------------------------------------------------------------------------------- the report


def test_sweep_line_counts_the_runs_copied_from_identical_ones(tmp_path: Path) -> None:
    now = time.time()
    sweep = tmp_path / "sweep"
    _fake_run(sweep, "0_a", "completed", now + 5)
    _fake_run(sweep, "1_b", "completed", now + 5)
    _fake_run(sweep, "2_c", "completed", now + 5, written=now - 3600)  # skipped, whatever it holds
    for name in ("1_b", "2_c"):
        summary = sweep / name / "summary.json"
        stat = summary.stat()
        summary.write_text(json.dumps({"status": "completed", "reused_from": "../../other/0_a"}))
        os.utime(summary, (stat.st_atime, stat.st_mtime))
    outcome = sweep_outcome(sweep, since=now)
    assert outcome.line() == f"sweep: 2 completed (1 copied from an identical run), 0 failed, 1 skipped ({sweep})"
    assert [p.name for p in outcome.copied] == ["1_b"]


def _fake_run(sweep: Path, name: str, status: str | None, launched: float, written: float | None = None) -> None:
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    os.utime(run / ".hydra" / "overrides.yaml", (launched, launched))
    if status is not None:
        (run / "summary.json").write_text(json.dumps({"status": status, "error": "Boom: bad" if status == "failed"
                                                      else None}))
        os.utime(run / "summary.json", (written or launched, written or launched))


def test_sweep_outcome_counts_completed_failed_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    now = time.time()
    sweep = tmp_path / "sweep"
    _fake_run(sweep, "0_a", "completed", now + 5)
    _fake_run(sweep, "1_b", "completed", now + 5, written=now - 3600)  # finished by an earlier sweep: skipped
    _fake_run(sweep, "2_c", "failed", now + 5)
    _fake_run(sweep, "3_d", "running", now + 5)  # killed without a word
    _fake_run(sweep, "4_e", None, now + 5)  # died before training started
    _fake_run(sweep, "5_old", "failed", now - 3600)  # an earlier sweep's job into the same folder: not counted
    _fake_run(sweep, ".submitit/7/x", "failed", now + 5)  # launcher bookkeeping: not a run dir
    outcome = sweep_outcome(sweep, since=now)
    assert outcome.line() == f"sweep: 1 completed, 3 failed, 1 skipped ({sweep})"
    assert [p.name for p, _ in outcome.failed] == ["2_c", "3_d", "4_e"]
    assert "Boom: bad" in outcome.failed[0][1] and "killed" in outcome.failed[1][1]

    report = SweepReport()
    report.started = now
    cfg = hydra_cfg(f"hydra.sweep.dir={sweep}")
    with pytest.raises(SystemExit) as exit_info:
        report.on_multirun_end(cfg)
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert out.startswith("sweep: 1 completed, 3 failed, 1 skipped") and "failed: 2_c: Boom: bad" in out


def test_jobs_the_launcher_did_not_start_are_listed_and_fail_the_sweep(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A job the launcher never started (gpu_pool's deadline) fails the sweep (exit status 1) even when every run
    dir holds a completed run; only this sweep's count, not those an earlier sweep of this process reported."""
    monkeypatch.setattr("fmnist.train.callbacks._NOT_STARTED", [])
    monkeypatch.setenv(LAUNCH_COMMAND_ENV, "")  # on_multirun_start exports the command line
    sweep = tmp_path / "sweep"
    cfg = hydra_cfg(f"hydra.sweep.dir={sweep}")
    report_not_started(["seed=7"])  # the earlier sweep's
    report = SweepReport()
    report.on_multirun_start(cfg)
    capsys.readouterr()
    _fake_run(sweep, "0_a", "completed", time.time() + 5)
    report_not_started(["seed=1", "model.skip=false"])
    with pytest.raises(SystemExit) as exit_info:
        report.on_multirun_end(cfg)
    assert exit_info.value.code == 1
    assert capsys.readouterr().out == (f"sweep: 1 completed, 0 failed, 0 skipped, 1 not started ({sweep})\n"
                                       "  not started: seed=1 model.skip=false\n")


def test_a_run_another_process_is_training_is_not_reported_as_killed(tmp_path: Path) -> None:
    """The same sweep launched again while the first launch's jobs still train (a Slurm sweep relaunched after its
    submitting process was killed): the second launch's job leaves the busy run dir alone, and its sweep line says
    that, not that the job was killed or lost."""
    now = time.time()
    sweep = tmp_path / "sweep"
    _fake_run(sweep, "0_a", "running", now + 5)
    _fake_run(sweep, "1_b", "running", now + 5)  # this one was killed: nobody holds it
    with hold_run_dir(sweep / "0_a"):
        failed = dict((p.name, error) for p, error in sweep_outcome(sweep, since=now).failed)
    assert sorted(failed) == ["0_a", "1_b"]
    assert failed["0_a"].startswith("another process is training it right now") and "killed" not in failed["0_a"]
    assert "killed or lost" in failed["1_b"]


def test_failed_jobs_are_listed_in_job_order(tmp_path: Path) -> None:
    now = time.time()
    sweep = tmp_path / "sweep"
    for name in ("10_k", "2_c", "1_b"):
        _fake_run(sweep, name, "failed", now + 5)
    assert [p.name for p, _ in sweep_outcome(sweep, since=now).failed] == ["1_b", "2_c", "10_k"]


def test_a_run_completed_right_after_its_sweep_started_counts_as_completed(tmp_path: Path) -> None:
    """The clock slack only widens what counts as this sweep's: a run completed a moment after the sweep started (a
    copy of an identical run, the first job of a basic-launcher sweep) was completed by it, and so was one written
    within the slack before; only one written before that was skipped."""
    now = time.time()
    sweep = tmp_path / "sweep"
    _fake_run(sweep, "0_copied", "completed", now + 0.5)
    _fake_run(sweep, "1_clock", "completed", now + 0.5, written=now - CLOCK_SLACK_S / 2)
    _fake_run(sweep, "2_earlier", "completed", now + 0.5, written=now - 2 * CLOCK_SLACK_S)
    outcome = sweep_outcome(sweep, since=now)
    assert [p.name for p in outcome.completed] == ["0_copied", "1_clock"]
    assert [p.name for p in outcome.skipped] == ["2_earlier"]


# ------------------------------------------------------------------------------------------- output dirs


@pytest.mark.slow
def test_runs_and_sweeps_started_together_never_share_a_folder(tmp_path: Path) -> None:
    """Two sweeps whose folder names agree up to the unique suffix (as if started in the same second),
    and two single runs with the default folder: all land in their own folders, and all the jobs of a
    sweep (in this process, or in pool worker processes) in their sweep's folder. (trainer.epochs=0 is
    refused before training: nothing trains, but every folder and summary.json is written.)"""
    fixed = "hydra.sweep.dir=multirun/same-second_${name}_${fmnist.unique:}"
    pool = ["hydra/launcher=gpu_pool", "hydra.launcher.gpus=[]", "hydra.launcher.jobs_per_gpu=2"]
    procs = [subprocess.Popen(train_cmd(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
             for args in (["-m", fixed, "seed=0,1", "trainer.epochs=0"],
                          ["-m", *pool, fixed, "seed=0,1", "trainer.epochs=0"],
                          ["trainer.epochs=0"], ["trainer.epochs=0"])]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [1, 1, 1, 1], errors
    sweeps = sorted((tmp_path / "multirun").iterdir())
    assert len(sweeps) == 2 and all(re.fullmatch(r"same-second_run_[0-9a-f]{6}", s.name) for s in sweeps)
    assert all(sorted(p.name.split("_")[0] for p in s.glob("*_seed=*")) == ["0", "1"] for s in sweeps)
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2 and all(re.fullmatch(r"\d\d-\d\d-\d\d_run_[0-9a-f]{6}", r.name) for r in runs)
    for folder in [*(f for s in sweeps for f in s.glob("*_seed=*")), *runs]:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "failed" and "trainer.epochs=0 is invalid" in summary["error"]


# ------------------------------------------------------------------------------------- failure isolation


@pytest.mark.slow
def test_basic_launcher_sweep_survives_a_failed_job(real_resplit_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "hydra/launcher=local", "data.subset=256,99999", *TINY[:1], *TINY[2:],
                   f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"sweep: 1 completed, 1 failed, 0 skipped ({sweep})" in proc.stdout
    assert "Traceback" not in out
    assert "subset size 99999 is larger than" in out  # the failed job's reason, one line
    runs = summaries(sweep)
    assert runs["0"]["status"] == "completed"
    assert runs["1"]["status"] == "failed" and "DataError: subset size 99999" in runs["1"]["error"]
    # every run dir records the exact command line and the git commit
    assert "data.subset=256,99999" in runs["0"]["command"] and "-m" in runs["0"]["command"].split()
    assert "git_commit" in runs["0"] and (sweep / next(iter(sweep.glob("0_*"))).name / ".hydra").is_dir()


@pytest.mark.slow
def test_gpu_pool_runs_k_jobs_at_once_and_survives_a_killed_job(real_resplit_dir: Path, tmp_path: Path) -> None:
    """K=2 CPU workers for 3 jobs; job #0's worker is killed with SIGKILL mid-training: the others complete,
    job #0 is recorded failed, the sweep exits 1. Launched again, job #0 resumes from its checkpoint and
    the two completed jobs are skipped."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=2", "hydra.launcher.gpus=[]",
            "seed=0,1,2", "model.width=8", "data.subset=1024", "data.val_fraction=0.02", "trainer.epochs=3",
            "logger=none", f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(train_cmd(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid_file = sweep / ".pool" / "0.pid"
    deadline = time.monotonic() + 240
    while not list(sweep.glob("0_*/checkpoints/last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "job #0 never wrote a checkpoint"
        time.sleep(0.02)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out
    assert f"sweep: 2 completed, 1 failed, 0 skipped ({sweep})" in out
    assert "Traceback" not in out
    # K=2: the first two jobs start together, before any job ends, each in its own CPU slot
    lines = [ln for ln in out.splitlines() if "gpu_pool: #" in ln]
    first_end = next(i for i, ln in enumerate(lines) if "finished" in ln or "failed" in ln)
    started = [ln for ln in lines[:first_end] if "started" in ln]
    assert len(started) == 2 and "cpu (slot 1/2)" in started[0] and "cpu (slot 2/2)" in started[1]
    runs = summaries(sweep)
    assert runs["0"]["status"] == "failed" and "SIGKILL" in runs["0"]["error"]
    assert runs["1"]["status"] == runs["2"]["status"] == "completed"

    again = run_cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"sweep: 1 completed, 0 failed, 2 skipped ({sweep})" in again.stdout
    # the completed two are recorded by the launcher itself: only job #0 gets a worker
    assert "gpu_pool: 2 job(s) already completed, skipped without a worker (#1, #2)" in again.stdout
    assert [ln.split(" started")[0][-2:] for ln in again.stdout.splitlines() if "gpu_pool: #" in ln and
            " started on " in ln] == ["#0"]
    rerun = summaries(sweep)["0"]
    assert rerun["status"] == "completed" and rerun["resumed_from_epoch"] >= 1
    # launched once more with another neutral key: all skipped, and each run keeps its own .hydra/ record
    records = {p: p.read_text() for p in sweep.glob("*/.hydra/overrides.yaml")}
    once_more = run_cli(*args, "trainer.checkpoint_every=2")
    assert f"sweep: 0 completed, 0 failed, 3 skipped ({sweep})" in once_more.stdout, once_more.stdout[-2000:]
    assert len(records) == 3 and {p: p.read_text() for p in records} == records


@pytest.mark.slow
def test_a_gpu_pool_sweep_killed_with_sigkill_is_cleaned_up_by_its_rerun(real_resplit_dir: Path, tmp_path: Path,
                                                                         analyze_config) -> None:
    """The launcher of a gpu_pool sweep killed with SIGKILL mid-training leaves its job payloads in .pool/; the same
    command again resumes the sweep, removes them (and says so), leaves the workers' logs, and the analysis of the
    sweep reads its three completed runs and nothing else."""
    from fmnist.analysis.pipeline import analyze
    from fmnist.train.run_dir import is_busy

    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=gpu_pool", "hydra.launcher.jobs_per_gpu=2", "hydra.launcher.gpus=[]",
            "seed=0,1,2", "model.width=4", "data.subset=512", "data.val_fraction=0.02", "trainer.epochs=4",
            "logger=none", f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(train_cmd(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(sweep.glob("*/checkpoints/last.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "no job wrote a checkpoint"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    while any(is_busy(run) for run in sweep.glob("*_*")):  # its workers record `interrupted` and end
        assert time.monotonic() < deadline, "the workers of the killed launcher still run"
        time.sleep(0.1)
    left = sorted(p.name for p in (sweep / ".pool").glob("*.pkl"))
    assert len(left) == 3, left  # the defect: nobody removes them

    again = run_cli(*args)
    assert again.returncode == 0 and "sweep: 3 completed" in again.stdout, (again.stdout + again.stderr)[-3000:]
    assert f"gpu_pool: removed 4 file(s) an earlier launch into this sweep left in {sweep / '.pool'}" in again.stdout
    assert sorted({p.suffix for p in (sweep / ".pool").iterdir()}) == [".log", ".pid"]
    result = analyze(analyze_config(f"sweep_dir={sweep}", f"out_dir={tmp_path / 'analysis'}", "figures=false",
                                    "dead_neurons=false"))
    runs = result.collection.runs
    assert sorted(runs["status"]) == ["completed"] * 3 and result.collection.problems().empty


@pytest.mark.slow
def test_a_skipped_run_keeps_its_own_hydra_record(real_resplit_dir: Path, tmp_path: Path) -> None:
    """Hydra writes .hydra/ for every job it launches; a job that skips its completed run (here launched with
    another neutral key) puts the run's own record back: overrides.yaml is what the analysis reads."""
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0", "model.width=4", "data.subset=256", "trainer.epochs=1", "logger=none",
            f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"]
    assert run_cli(*args).returncode == 0
    record = {p: p.read_text() for p in sweep.glob("*/.hydra/*.yaml") if p.name != "hydra.yaml"}
    again = run_cli(*args, "trainer.checkpoint_every=2")
    assert again.returncode == 0 and f"sweep: 0 completed, 0 failed, 1 skipped ({sweep})" in again.stdout
    assert len(record) == 2 and {p: p.read_text() for p in record} == record


@pytest.mark.slow
def test_gpu_pool_starts_no_job_after_its_deadline(real_resplit_dir: Path, tmp_path: Path) -> None:
    """A machine held for a fixed time: past `hydra.launcher.deadline` no job starts, no run dir is made for
    the jobs left, and the sweep says so and exits 1 (the same command later runs them)."""
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "hydra/launcher=gpu_pool", "hydra.launcher.gpus=[]",
                   f"hydra.launcher.deadline={time.time():.0f}",
                   "seed=0,1", "trainer.epochs=1", f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"sweep: 0 completed, 0 failed, 0 skipped, 2 not started ({sweep})" in proc.stdout
    assert "not started: seed=0" in proc.stdout and "deadline reached; 2 job(s) not started" in proc.stdout
    assert not list(sweep.glob("*/summary.json"))


def test_start_refusal_follows_the_deadline_then_the_longest_job_before_the_end() -> None:
    """Before any job has trained, the deadline decides; after, a job starts while the longest one (+15 %) still
    fits before the end, the deadline notwithstanding; at the end nothing starts."""
    refusal = gpu_pool.start_refusal
    assert refusal(100, None, None, 0) is None and refusal(100, 100, None, 0) == "deadline reached"
    assert refusal(99, 100, 200, 0) is None and refusal(100, 100, 200, 0) == "deadline reached"  # nothing trained
    assert refusal(150, 100, 200, 40) is None  # past the deadline: 150 + 46 <= 200
    assert refusal(160, 100, 200, 40) == ("40s left before hydra.launcher.end, less than the longest job so far "
                                          "(40s) + 15%")
    assert refusal(50, 100, 200, 150) is not None  # before the deadline, but the longest job would not fit
    assert refusal(200, None, 200, 0) == "hydra.launcher.end reached"


#: A stand-in pool worker that trains for 5 s: its job completes, with a summary.json in runs/<job number>/.
COMPLETING_WORKER = """import json, pathlib, pickle, sys, time
from hydra.core.utils import JobReturn, JobStatus
payload, result = map(pathlib.Path, sys.argv[-2:])
time.sleep(5)
run = payload.parents[2] / "runs" / payload.name.split(".")[0]
run.mkdir(parents=True)
(run / "summary.json").write_text(json.dumps({"status": "completed"}))
ret = JobReturn()
ret.status = JobStatus.COMPLETED
ret.return_value = None
result.write_bytes(pickle.dumps(ret))
"""


@pytest.mark.slow
def test_jobs_start_past_the_deadline_while_the_longest_one_fits_before_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """One slot, three 5-6 s jobs, the deadline now, the end 15.7 s away: the first starts (nothing trained yet,
    before the deadline), the second too (the first's length +15 % fits), the third does not."""
    config = hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / 'sweep'}")  # (Hydra's first
    # plugin scan re-executes the launcher modules: patch them after it)
    fake_workers(tmp_path, monkeypatch, caplog, COMPLETING_WORKER)
    monkeypatch.setattr(gpu_pool, "job_run_dir", lambda ctx, cfg, overrides, num: tmp_path / "runs" / str(num))
    monkeypatch.setattr("fmnist.train.callbacks.report_not_started", lambda overrides: None)
    now = time.time()
    launcher = GpuPoolLauncher(jobs_per_gpu=1, gpus=[], deadline=now + 1, end=now + 15.7)
    launcher.setup(hydra_context=object(), task_function=print, config=config)
    launcher.launch([["seed=0"], ["seed=1"], ["seed=2"]], 0)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["0", "1"]  # the third never ran
    assert 5 <= launcher.longest < 7.3
    assert "less than the longest job so far" in caplog.text and "1 job(s) not started (#2)" in caplog.text


def test_pool_line_of_a_job_whose_run_was_already_complete_says_skipped(tmp_path: Path) -> None:
    """The pool's end-of-job line agrees with the sweep line: a run dir completed before the job started is skipped."""
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert gpu_pool._summary_status(tmp_path, since=time.time() + 60) == "skipped: already completed"
    assert gpu_pool._summary_status(tmp_path, since=time.time() - 60) == "completed"


def test_only_a_run_the_job_trained_itself_sets_the_longest_job(tmp_path: Path) -> None:
    """start_refusal measures the time left against the longest training: a run copied from an identical one
    (reused_from, seconds), one completed before the job began, or a failed one is no training's length."""
    def outcome(summary: dict, since: float) -> tuple[str, bool]:
        (tmp_path / "summary.json").write_text(json.dumps(summary))
        return gpu_pool._run_outcome(tmp_path, since)

    before, after = time.time() - 60, time.time() + 60
    assert outcome({"status": "completed"}, before) == ("completed", True)
    assert outcome({"status": "completed", "reused_from": "../../other/0_x"}, before) == ("completed", False)
    assert outcome({"status": "completed"}, after) == ("skipped: already completed", False)
    assert outcome({"status": "failed", "error": "E: x"}, before) == ("failed: E: x", False)
    assert gpu_pool._run_outcome(tmp_path / "absent") == ("no summary.json", False)


#: A stand-in pool worker whose job ends as its number says: #0 records its own failure (a divergence) and exits 1,
#: #1's task raised (a FAILED JobReturn), #2 is killed while its run says running, #3 copies an identical run's results.
ENDING_WORKER = """import json, os, pathlib, pickle, signal, sys
payload, result = map(pathlib.Path, sys.argv[-2:])
num = int(payload.name.split(".")[0])
run = payload.parents[2] / "runs" / str(num)
run.mkdir(parents=True)
summary = {0: {"status": "failed", "error": "TrainingDiverged: NaN in epoch 2"}, 1: {"status": "running"},
           2: {"status": "running"}, 3: {"status": "completed", "reused_from": "../../other/0_x"}}[num]
(run / "summary.json").write_text(json.dumps(summary))
if num == 0:
    sys.exit(1)
if num == 2:
    os.kill(os.getpid(), signal.SIGKILL)
from hydra.core.utils import JobReturn, JobStatus
ret = JobReturn()
ret.status, ret.return_value = (JobStatus.FAILED, RuntimeError("boom")) if num == 1 else (JobStatus.COMPLETED, None)
result.write_bytes(pickle.dumps(ret))
"""


def test_failed_jobs_are_recorded_with_their_own_error_and_copied_ones_are_no_training_length(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Every job returns a COMPLETED JobReturn (a FAILED one would make Hydra's sweeper stop before the sweep's
    report); a run that recorded its own failure keeps its error (a diverged run stays finished); a run whose job
    raised or was killed is marked failed with why; and a job that copied its results sets no longest job."""
    launcher = cpu_pool(tmp_path / "sweep", jobs=4)  # (patch after Hydra's first plugin scan)
    fake_workers(tmp_path, monkeypatch, caplog, ENDING_WORKER)
    monkeypatch.setattr(gpu_pool, "job_run_dir", lambda ctx, cfg, overrides, num: tmp_path / "runs" / str(num))
    returns = launcher.launch([[f"seed={i}"] for i in range(4)], 0)
    assert [(r.status, r.return_value) for r in returns] == [(JobStatus.COMPLETED, None)] * 4
    summaries = [json.loads((tmp_path / "runs" / str(i) / "summary.json").read_text()) for i in range(4)]
    assert [(s["status"], s.get("error")) for s in summaries] == [
        ("failed", "TrainingDiverged: NaN in epoch 2"), ("failed", "RuntimeError: boom"),
        ("failed", "worker process killed by SIGKILL (killed from outside, or out of host memory)"),
        ("completed", None)]
    assert launcher.longest == 0


def test_a_shorter_training_leaves_the_longest_job_as_it_was(tmp_path: Path) -> None:
    """The longest job is the maximum over the jobs trained so far, not the latest one's length."""
    import pickle
    from types import SimpleNamespace

    from hydra.core.utils import JobReturn

    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"status": "completed"}))
    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, None
    ret.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run)}}})
    (tmp_path / "0.result.pkl").write_bytes(pickle.dumps(ret))
    launcher = GpuPoolLauncher()
    for longest, expected in ((100.0, (100.0, 100.0)), (1.0, (5.0, 60.0))):
        launcher.longest = longest
        job = gpu_pool._Job(0, ["seed=0"], tmp_path / "0.pkl", tmp_path / "0.result.pkl", tmp_path / "0.log",
                            proc=SimpleNamespace(returncode=0), started=time.monotonic() - 5,
                            started_at=time.time() - 60)  # trained for 5 s, after the job began
        assert launcher._finish(job).status == JobStatus.COMPLETED
        assert expected[0] <= launcher.longest <= expected[1]


def test_jobs_past_the_deadline_are_reported_not_started_and_a_workers_threads_follow_the_users_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its deadline the pool returns each pending job without a worker and names it to the sweep's report
    (report_not_started); a worker gets OMP_NUM_THREADS from the pool only where the user set none."""
    from types import SimpleNamespace

    import fmnist.train.callbacks as callbacks

    named: list[list[str]] = []
    monkeypatch.setattr(callbacks, "report_not_started", named.append)
    launcher = GpuPoolLauncher(deadline=0.0)
    jobs = [gpu_pool._Job(n, [f"seed={n}"], tmp_path / f"{n}.pkl", tmp_path / f"{n}.r", tmp_path / f"{n}.log")
            for n in (3, 4)]
    returns: dict = {}
    launcher._run(deque(jobs), [], deque(plan_slots(1, gpus=[])), gpu_pool.SlotLocks(None), 1, returns)
    assert named == [["seed=3"], ["seed=4"]] and sorted(returns) == [3, 4]
    assert all(r.status == JobStatus.COMPLETED and r.return_value is None for r in returns.values())

    envs: list[dict] = []
    monkeypatch.setattr(gpu_pool.subprocess, "Popen", lambda *a, env, **k: envs.append(env) or SimpleNamespace(pid=1))
    for user in (None, "7"):
        if user is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", user)
        launcher._start(jobs[0], plan_slots(1, gpus=[])[0], 3)
    assert [e["OMP_NUM_THREADS"] for e in envs] == ["3", "7"] and envs[0]["CUDA_VISIBLE_DEVICES"] == ""


def test_a_job_whose_run_is_complete_is_recorded_without_a_worker(tmp_path: Path) -> None:
    """A relaunched sweep's job whose run dir holds a completed run of its configuration: the launcher returns that
    run's result and rewrites the job's .hydra/ as Hydra would (the sweep line counts it skipped), touching nothing
    else; a run being trained, a forced job, another configuration or a missing run is left to the worker."""
    sweep = tmp_path / "sweep"
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        master = compose("train", overrides=[f"hydra.sweep.dir={sweep}", "trainer.epochs=1"], return_hydra_config=True)
        context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=Callbacks())

        def check(*overrides: str, ctx=context):
            return record_if_completed(ctx, compose_job(ctx, master, list(overrides), 0, "pool_1_0"))

        assert config_run_dir(job_config(context, master, ["seed=3"], 7)) == sweep / "7_seed=3"  # the job's number
        cfg = job_config(context, master, ["seed=3"], 0, "pool_1_0")
        run = config_run_dir(cfg)
        assert run == sweep / "0_seed=3" and cfg.hydra.job.id == "pool_1_0"
        task = to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
        run.mkdir(parents=True)
        summary = {"status": "completed", "config": task, "best_val_acc": 0.9, "test_acc": 0.89}
        (run / "summary.json").write_text(json.dumps(summary))
        os.utime(run / "summary.json", (time.time() - 3600,) * 2)  # completed by an earlier launch
        before = (run / "summary.json").read_bytes()
        started = time.time()

        ret = check("seed=3")
        assert ret is not None and ret.status == JobStatus.COMPLETED and ret.return_value == 0.9
        assert (run / "summary.json").read_bytes() == before
        assert (run / ".hydra" / "overrides.yaml").read_text() == "- seed=3\n"
        outcome = sweep_outcome(sweep, since=started)
        assert outcome.skipped == [run] and not outcome.completed and not outcome.failed

        with hold_run_dir(run):  # being trained by another process right now
            assert check("seed=3") is None
        assert check("seed=3", "trainer.force=true") is None
        assert check("seed=4") is None  # no run there
        (run / "summary.json").write_text(json.dumps(summary | {"config": task | {"seed": 5}}))
        assert check("seed=3") is None
        assert check("seed=3", ctx=object()) is None  # cannot be composed here: the worker will say why

        # the claim a job with trainer.reuse_identical takes on its computation is the one its worker takes
        job = compose_job(context, master, ["seed=3", "trainer.reuse_identical=true"], 0, "pool_1_0")
        assert claim_path(job) == claim_file(run, to_container(job.task_cfg), "data/FashionMNIST-Resplit")
        assert claim_path(compose_job(context, master, ["seed=3"], 0, "pool_1_0")) is None


def test_a_job_whose_identical_run_is_being_trained_waits_in_the_queue_not_in_a_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """One slot, two jobs; another process trains job #0's computation (holds its claim) for a second: job #1
    starts first, and #0 once the claim is released (then its worker copies the results)."""
    config = hydra_cfg("hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / 'sweep'}")  # (patch after Hydra's
    fake_workers(tmp_path, monkeypatch, caplog, TIMING_WORKER)                             # first plugin scan)
    caplog.set_level(logging.INFO, logger=gpu_pool.log.name)
    claim = tmp_path / "claims" / "c.lock"
    monkeypatch.setattr(gpu_pool, "compose_job", lambda ctx, cfg, overrides, num, job_id: num)
    monkeypatch.setattr(gpu_pool, "record_if_completed", lambda ctx, job: None)
    monkeypatch.setattr(gpu_pool, "claim_path", lambda num: claim if num == 0 else None)
    holding, released = threading.Event(), []

    def other_trainer() -> None:
        with flock_held(claim, "pid 1 in another sweep", lambda holder: None):
            holding.set()
            time.sleep(1.5)
            released.append(time.time())

    trainer = threading.Thread(target=other_trainer)
    trainer.start()
    assert holding.wait(10)
    launcher = GpuPoolLauncher(jobs_per_gpu=1, gpus=[])
    launcher.setup(hydra_context=object(), task_function=print, config=config)
    launcher.launch([["seed=0"], ["seed=1"]], 0)
    trainer.join()
    spans = {int(p.name.split(".")[0]): tuple(map(float, p.read_text().split()))
             for p in (tmp_path / "sweep" / ".pool").glob("*.span")}
    assert sorted(spans) == [0, 1] and spans[1][0] < spans[0][0]
    assert spans[0][0] >= released[0] - 0.05
    assert "#0 waits for the identical run being trained elsewhere" in caplog.text


def test_a_worker_that_recorded_its_interruption_is_not_called_failed(tmp_path: Path) -> None:
    """A worker stopped by a signal (kill <pid>) records its run `interrupted` and exits 130: the launcher keeps
    that (the run resumes; the analysis counts it unfinished, not failed). An `interrupted` summary from before
    the job started is an earlier attempt's: this job died without a word, and is recorded failed."""
    run = tmp_path / "run"
    run.mkdir()

    def recorded(since: float | None) -> dict:
        (run / "summary.json").write_text(json.dumps({"status": "interrupted", "error": "interrupted (SIGTERM)"}))
        record_job_failure(run, "worker process exited with status 130", since=since)
        return json.loads((run / "summary.json").read_text())

    assert recorded(time.time() - 60)["status"] == "interrupted"  # written by this job, launched a minute ago
    later = recorded(time.time() + 60 + CLOCK_SLACK_S)  # a job launched after that summary was written
    assert later["status"] == "failed" and later["error"] == "worker process exited with status 130"
    assert recorded(None)["status"] == "failed"  # no launch time known (Slurm): as before
