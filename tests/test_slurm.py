"""Sweeps on a real single-node Slurm cluster (tests/slurm_cluster.py): `hydra/launcher=slurm` runs every
job to completion, and a job requeued mid-training (`scontrol requeue`, as preemption does) resumes from
its checkpoint in the same run dir and ends with the same metrics as its uninterrupted twin.

Needs root (apt-get install, daemons). Elsewhere the tests are skipped with the reason; under CI
(CI=true) a cluster that cannot be started fails them instead."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fmnist.train.run_dir import TIMING_COLUMNS
from slurm_cluster import ClusterUnavailable, SlurmCluster, start_cluster

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# CPU jobs: no GPU, one core each (two run at once on a 2-core node), no memory request
CPU_JOB = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=15"]
TINY = ["model.width=8", "data.subset=1024", "data.val_fraction=0.02", "logger=none"]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the Slurm tests, but the cluster is unavailable: {reason}", pytrace=False)
    pytest.skip(f"Slurm cluster unavailable: {reason}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        _unavailable("needs root (apt-get install and the daemons)")
    started = time.monotonic()
    try:
        c = start_cluster()
    except ClusterUnavailable as exc:
        _unavailable(str(exc))
    print(f"\nSlurm cluster up in {time.monotonic() - started:.1f}s ({c.root})")
    try:
        yield c
    finally:
        c.stop(purge=True)


def sweep_cmd(cluster: SlurmCluster, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "-m", *CPU_JOB, f"hydra.launcher.partition={cluster.partition}",
            *args]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name.split("_", 1)[0]: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}


def test_slurm_sweep_runs_every_job(cluster: SlurmCluster, real_resplit_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = subprocess.run(sweep_cmd(cluster, "seed=0,1", "trainer.epochs=1", *TINY, f"data.dir={real_resplit_dir}",
                                    f"hydra.sweep.dir={sweep}"),
                          cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out + cluster.logs_tail()
    assert f"sweep: 2 completed, 0 failed, 0 skipped ({sweep})" in proc.stdout
    runs = summaries(sweep)
    assert sorted(runs) == ["0", "1"] and all(s["status"] == "completed" for s in runs.values())
    assert all(s["slurm_job_id"] for s in runs.values())  # they really ran as Slurm jobs
    submitted = re.search(r"submitted 2 job\(s\): (\S+), (\S+)$", proc.stdout + proc.stderr, re.M)
    assert submitted and sorted(s["slurm_job_id"] for s in runs.values()) == sorted(submitted.groups())
    cluster.run("scontrol", "show", "job", runs["0"]["slurm_job_id"])  # an id Slurm's commands take
    assert all("seed=0,1" in s["command"] for s in runs.values())  # the command typed, not submitit's
    job_ids = {s["slurm_job_id"] for s in runs.values()}

    def accounted() -> bool:  # slurmdbd records the jobs (sacct is what submitit polls)
        lines = cluster.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", check=False).stdout.split()
        return job_ids <= {ln.split("|")[0] for ln in lines if ln.endswith("|COMPLETED")}

    _wait("sacct to show both jobs completed", accounted, timeout=60, every=0.5)

    # the same sweep again: both runs are complete, so the launcher records them and submits nothing
    before = {p: p.read_bytes() for p in sweep.glob("*/summary.json")}
    again = subprocess.run(sweep_cmd(cluster, "seed=0,1", "trainer.epochs=1", *TINY, f"data.dir={real_resplit_dir}",
                                     f"hydra.sweep.dir={sweep}"),
                           cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"sweep: 0 completed, 0 failed, 2 skipped ({sweep})" in again.stdout
    assert "2 job(s) already completed, not submitted (#0, #1)" in again.stdout + again.stderr
    assert "submitted" not in (again.stdout + again.stderr).replace("not submitted", "")
    assert {p: p.read_bytes() for p in sweep.glob("*/summary.json")} == before


def test_a_sweep_slurm_refuses_is_one_line(cluster: SlurmCluster, real_resplit_dir: Path, tmp_path: Path) -> None:
    """sbatch refuses the array (here: a partition the cluster lacks): one line quoting it, exit status 1, no
    traceback."""
    proc = subprocess.run(sweep_cmd(cluster, "seed=0", "trainer.epochs=1", *TINY, f"data.dir={real_resplit_dir}",
                                    "hydra.launcher.partition=nosuchpartition",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}"),
                          cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: slurm refused to queue the sweep's 1 job(s): sbatch: error: ") and \
        "partition" in last.lower(), last


def test_the_refusal_quotes_the_schedulers_fatal_line_else_its_last_error() -> None:
    """No cluster needed: which line of sbatch's output (as submitit quotes it) the one-line error shows."""
    from hydra_plugins.fmnist_launchers.slurm import refused_submission

    errors = ("Command '['sbatch', 'x.sh']' returned non-zero exit status 1.\nsbatch: error: first problem\n"
              "sbatch: error: Invalid partition name specified\ndone")
    assert refused_submission("slurm", 3, OSError(errors)) == (
        "slurm refused to queue the sweep's 3 job(s): sbatch: error: Invalid partition name specified")
    fatal = "sbatch: fatal: Unable to contact slurm controller\n" + errors
    assert refused_submission("slurm", 1, OSError(fatal)).endswith(": sbatch: fatal: Unable to contact slurm "
                                                                   "controller")
    assert refused_submission("local", 2, OSError("just this\nand this\n\n")) == (
        "local refused to queue the sweep's 2 job(s): and this")
    assert refused_submission("slurm", 2, OSError()).endswith("2 job(s): OSError")


def _wait(what: str, cond, timeout: float = 300, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def _act_on_first_job(cluster: SlurmCluster, cmd: list[str], sweep: Path,
                      act: Callable[[subprocess.Popen, str], None]) -> tuple[int, str, Path, str]:
    """Start the sweep `cmd`; once its job #0 has checkpointed an epoch, call `act(submitter, job #0's Slurm id)` (a
    signal to the submitting process, an scancel) and wait for the submitter to end. Returns its exit status and
    output, job #0's run dir and its Slurm id (the one summary.json records)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        last = _wait("job #0's first checkpoint", lambda: next(iter(sweep.glob("0_*/checkpoints/last.pt")), None))
        run0 = last.parents[1]
        job_id = _wait("job #0's Slurm id", lambda: json.loads((run0 / "summary.json").read_text())["slurm_job_id"])
        act(proc, job_id)
        out = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, run0, job_id


def test_requeued_job_resumes_to_the_same_metrics_as_its_twin(cluster: SlurmCluster, real_resplit_dir: Path,
                                                             tmp_path: Path) -> None:
    """Two jobs that train the same run (trainer.deterministic=true,false: the same on a CPU; seed=0,0 is refused);
    job #0 is requeued after its first epoch (submitit ignores the SIGTERM; Slurm kills the job KillWait=1 s later,
    mid-training). The sweep folder is the
    default kind (a unique suffix resolved by the submitting process): the requeued job must find it."""
    base = tmp_path / "multirun"
    proc = subprocess.Popen(
        sweep_cmd(cluster, "trainer.deterministic=true,false", "trainer.epochs=5", *TINY, f"data.dir={real_resplit_dir}",
                  f"hydra.sweep.dir={base}/" + "${now:%H-%M-%S}_${name}_${fmnist.unique:}"),
        cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        last = _wait("job #0's first checkpoint", lambda: next(iter(base.glob("*/0_*/checkpoints/last.pt")), None))
        run0 = last.parents[1]
        job_id = _wait("job #0's Slurm id", lambda: json.loads((run0 / "summary.json").read_text())["slurm_job_id"])
        epochs_before = len(metrics(run0))
        cluster.run("scontrol", "requeue", job_id)
        # A requeued job is held for a while (BeginTime); a preempted job would wait for resources anyway.
        _wait("the requeued job to be pending", lambda: "PENDING" in cluster.run(
            "squeue", "-h", "-j", job_id, "-o", "%T", check=False).stdout, timeout=120, every=0.5)
        cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
        out = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + cluster.logs_tail()
    assert "sweep: 2 completed, 0 failed, 0 skipped" in out
    sweeps = list(base.iterdir())
    assert len(sweeps) == 1, sweeps  # the requeued job went back to the same sweep folder ...
    runs = summaries(sweeps[0])
    assert sorted(runs) == ["0", "1"]  # ... and into the same run dir
    restarts = cluster.run("scontrol", "show", "job", job_id, check=False).stdout
    assert "Restarts=1" in restarts, restarts
    resumed, twin = runs["0"], runs["1"]
    assert resumed["status"] == twin["status"] == "completed"
    assert resumed["slurm_job_id"] == job_id
    assert epochs_before <= resumed["resumed_from_epoch"] < 5  # killed mid-training, resumed from a checkpoint
    assert "resuming" in (run0 / "train.log").read_text()
    assert "resumed_from_epoch" not in twin
    run1 = next(sweeps[0].glob("1_*"))
    assert metrics(run0) == metrics(run1)
    for key in ("best_val_acc", "best_epoch", "test_acc", "test_loss"):
        assert resumed[key] == twin[key], key


def test_no_slurm_commands_on_path_is_one_line(real_resplit_dir: Path, tmp_path: Path) -> None:
    """No cluster needed: a machine without srun/sbatch on PATH (not a Slurm login node, or its module not
    loaded) gets one line and exit status 1, not submitit's traceback, and no sweep folder."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *CPU_JOB, "seed=0", "trainer.epochs=1", *TINY,
                           f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"],
                          cwd=ROOT, env=dict(os.environ, PATH=str(empty_bin)), capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1] == ('error: cannot submit to slurm: Could not detect "srun", are you indeed '
                                            'on a slurm cluster?'), out
    assert not list(sweep.glob("*_*"))  # no run dir, no job started


@pytest.mark.parametrize("override, message", [
    ("hydra.launcher.array_parallelism=0", "hydra.launcher.array_parallelism=0 must be at least 1"),
    ("hydra.launcher.signal_delay_s=900", "hydra.launcher.signal_delay_s=900 must be between 0 and timeout_min in "
                                          "seconds (900)"),
])
def test_launcher_values_sbatch_takes_without_a_word_are_one_line(override: str, message: str, tmp_path: Path) -> None:
    """No cluster needed: a parallelism of 0 (sbatch's `%0`: no limit at all), or a signal due before the job's time
    limit even begins (each attempt requeued at once, without progress), is refused before anything is submitted."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *CPU_JOB, override, "seed=0",
                           f"hydra.sweep.dir={sweep}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1].startswith(f"error: {message}"), out
    assert not list(sweep.glob("*_*"))  # no run dir, no job submitted


def test_a_cancelled_job_is_one_line_naming_its_state(cluster: SlurmCluster, real_resplit_dir: Path,
                                                      tmp_path: Path) -> None:
    """`scancel` of one running job of a sweep: the other job finishes, and the sweep's line for the cancelled one
    says it was cancelled (Slurm's state, which submitit puts on the second line of its error) and where its log
    is, as its summary.json does."""
    sweep = tmp_path / "sweep"
    cmd = sweep_cmd(cluster, "trainer.epochs=30,1", *TINY, f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}")
    # the id summary.json records (12_0: scancel refuses 12_0's own id, 13)
    returncode, out, run0, job_id = _act_on_first_job(cluster, cmd, sweep, lambda _, job: cluster.run("scancel", job))
    assert returncode == 1, out + cluster.logs_tail()
    assert f"sweep: 1 completed, 1 failed, 0 skipped ({sweep})" in out, out
    failed = [line for line in out.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 1 and failed[0].startswith(f"  failed: {run0.name}: slurm job "), out
    assert "ended without a result (UncompletedJobError: state CANCELLED" in failed[0], failed[0]
    assert Path(failed[0].rsplit("; its log: ", 1)[1].rstrip(")")).is_file(), failed[0]
    summary = json.loads((run0 / "summary.json").read_text())
    assert summary["status"] == "failed" and "state CANCELLED" in summary["error"]


def test_stopping_the_submitter_cancels_the_sweeps_jobs(cluster: SlurmCluster, real_resplit_dir: Path,
                                                        tmp_path: Path) -> None:
    """SIGTERM (as Ctrl-C) to the process that submitted a sweep: one line and exit status 130, no traceback, the
    sweep's job is cancelled rather than left running unwatched, and the same command resumes its run."""
    sweep = tmp_path / "sweep"
    cmd = sweep_cmd(cluster, "seed=0", "trainer.epochs=20", *TINY, f"data.dir={real_resplit_dir}",
                    f"hydra.sweep.dir={sweep}")
    returncode, out, run0, job_id = _act_on_first_job(cluster, cmd, sweep, lambda proc, _: proc.terminate())
    assert returncode == 130 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1].endswith(
        f"interrupted: cancelled the sweep's 1 slurm job(s) not ended yet ({job_id}); launch the same command again to "
        "resume them"), out
    _wait("the job to leave the queue", lambda: not cluster.run("squeue", "-h", "-j", job_id,
                                                                check=False).stdout.strip(), timeout=60, every=0.5)
    assert json.loads((run0 / "summary.json").read_text())["status"] != "completed"

    again = subprocess.run(cmd, cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr + cluster.logs_tail()
    assert f"sweep: 1 completed, 0 failed, 0 skipped ({sweep})" in again.stdout
    summary = json.loads((run0 / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] >= 1


def test_a_closed_terminal_leaves_the_sweeps_jobs_training(cluster: SlurmCluster, real_resplit_dir: Path,
                                                            tmp_path: Path) -> None:
    """SIGHUP to the submitting process (the terminal closed, an SSH connection lost) is not a request to stop: one
    line and exit status 130, and the sweep's job trains on to completion instead of being cancelled."""
    sweep = tmp_path / "sweep"
    cmd = sweep_cmd(cluster, "seed=0", "trainer.epochs=3", *TINY, f"data.dir={real_resplit_dir}",
                    f"hydra.sweep.dir={sweep}")
    returncode, out, run0, job_id = _act_on_first_job(cluster, cmd, sweep,
                                                      lambda proc, _: proc.send_signal(signal.SIGHUP))
    assert returncode == 130 and "Traceback" not in out, out
    assert out.strip().splitlines()[-1].endswith(
        f"interrupted by SIGHUP (the terminal closed): the sweep's 1 slurm job(s) not ended yet ({job_id}) train on; "
        "launch the same command again once they have ended to collect the sweep"), out
    _wait("the job to complete", lambda: json.loads((run0 / "summary.json").read_text())["status"] == "completed",
          timeout=300, every=0.5)


def test_a_job_cancelled_while_queued_counts_in_the_sweep_line(cluster: SlurmCluster, real_resplit_dir: Path,
                                                               tmp_path: Path) -> None:
    """`scancel` of the whole array while one job runs and one waits (array_parallelism=1): both count as failed in
    the sweep's line, and the job that never started gets the Hydra record of its run dir (.hydra/, as its worker
    would have written it), so that the analysis puts its failure in its cell, not in an 'unnamed' preset."""
    sweep = tmp_path / "sweep"
    cmd = sweep_cmd(cluster, "seed=0,1", "trainer.epochs=30", "hydra.launcher.array_parallelism=1", *TINY,
                    f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}")
    returncode, out, _, _ = _act_on_first_job(cluster, cmd, sweep,
                                              lambda _, job: cluster.run("scancel", job.split("_")[0]))  # the array
    assert returncode == 1, out + cluster.logs_tail()
    assert f"sweep: 0 completed, 2 failed, 0 skipped ({sweep})" in out, out
    failed = [line for line in out.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 2 and all("state CANCELLED" in line for line in failed), out
    run1 = next(sweep.glob("1_*"))
    assert "- seed=1" in (run1 / ".hydra" / "overrides.yaml").read_text().splitlines()
    assert "name: run" in (run1 / ".hydra" / "config.yaml").read_text()
    assert json.loads((run1 / "summary.json").read_text())["status"] == "failed"
    assert not (run1 / "metrics.csv").exists()  # it never trained
