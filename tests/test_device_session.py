"""scripts/device_session.sh at CPU size (TINY=1): the prepared command for a lent GPU machine must not
waste that machine's minutes on a typo, so every plan runs here end to end and its outputs are checked."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fmnist.study_transfer import pack, unpack

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device_session.sh"


def session(plan: str, out: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "TINY": "1", "OUT": str(out), "PYTHON": sys.executable, "DATA": str(data_dir), **env}
    return subprocess.run(["bash", str(SCRIPT), plan, "600"], env=environ, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_bench_plan_writes_every_result(real_resplit_dir: Path, tmp_path: Path) -> None:
    proc = session("bench", tmp_path / "out", real_resplit_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== done in" in log and "skipped (" not in log
    assert log.count(": exit 0 after") == 5, log[-3000:]  # gpu tests (all skipped here) and four bench steps
    read = {name: json.loads((tmp_path / "out" / f"bench_{name}.json").read_text())
            for name in ("throughput", "tta", "concurrency", "compile")}
    [row] = read["throughput"]["throughput"]
    assert row["naive_s_per_epoch"] > 0 and row["modes"]["eager"]["s_per_epoch"] > 0
    assert [r["preset"] for r in read["tta"]["time_to_accuracy"]] == ["fast", "fast95"]
    assert all(r["status"] == "completed" for r in read["tta"]["time_to_accuracy"])
    [conc] = read["concurrency"]["concurrency"]  # K = 2 jobs per device (CPU jobs here), 2 runs
    assert conc["jobs_per_gpu"] == 2 and conc["completed"] == conc["jobs"] == 2 and conc["returncode"] == 0
    assert conc["runs_per_min"] > 0 and conc["speedup_vs_first"] == pytest.approx(1.0)
    phases = conc["median_phases_s"]  # where the runs' time went, read from their summaries
    assert phases["startup_s"] > 0 and phases["setup_s"] > 0 and phases["epochs_s"] >= phases["train_time_s"] > 0
    assert "  median run: start-up " in log
    assert read["compile"]["throughput"][0]["model"] == "resnet18"
    tables = (tmp_path / "out" / "bench.md").read_text()  # the README's tables, rendered from those files
    assert "| resnet9 | 64 |" in tables and "| `fast` |" in tables and "| `fast95` |" in tables
    assert "| 2 | " in tables  # the jobs-per-GPU table


@pytest.mark.slow
def test_bench_plan_runs_only_the_chosen_steps(real_resplit_dir: Path, tmp_path: Path) -> None:
    """A later session measures what is still missing: BENCH_STEPS picks the steps, TTA_PRESETS, TTA_OVERRIDES and
    TTA_EPOCHS the time-to-accuracy runs (here `fast` alone, with an override, for 1 and for 2 epochs). MPS=1 where
    MPS cannot start: said, and the session goes on without it."""
    proc = session("bench", tmp_path / "out", real_resplit_dir, BENCH_STEPS="tta", TTA_PRESETS="fast",
                   TTA_OVERRIDES="trainer.label_smoothing=0.0", TTA_EPOCHS="1 2", MPS="1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "out").glob("bench_*.json")) == ["bench_tta.json"]
    runs = json.loads((tmp_path / "out" / "bench_tta.json").read_text())["time_to_accuracy"]
    assert [(r["preset"], r["status"], r["epochs"]) for r in runs] == [("fast", "completed", 1), ("fast", "completed", 2)]
    assert all("trainer.label_smoothing=0.0" in r["overrides"] for r in runs)
    log = (tmp_path / "out" / "session.log").read_text()
    assert "throughput" not in log and "compile modes" not in log and "jobs per GPU" not in log
    assert "gpu tests" not in log  # "tests" is a step too: a study in the same call checks the graphs itself
    assert "== MPS: not started (no nvidia-cuda-mps-control here)" in log  # MPS=1 without a GPU: goes on
    assert json.loads((tmp_path / "out" / "bench_tta.json").read_text())["mps"] is False


@pytest.mark.slow
def test_study_plan_skips_the_kit_and_returns_only_its_own_runs(real_resplit_dir: Path, tmp_path: Path) -> None:
    """Two sessions as the README describes them: the first runs seed 0; here its archive is unpacked and the
    study packed again; the second session (SEEDS=all, the default: the preset's whole grid, in which
    model.skip=False seed=0 is job 3, not 1) renumbers that run dir of the kit, records both seed-0 runs as complete
    without starting a worker, and trains seeds 1 and 2; unpacked, the renamed run is renamed here too, not added."""
    repo = tmp_path / "repo"
    repo.mkdir()
    first = session("study", tmp_path / "out1", real_resplit_dir, STUDY_ROOT=str(tmp_path / "device1"), SEEDS="0")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    parts = sorted((tmp_path / "out1").glob("study.tar.gz.part-*"))
    assert parts and unpack(repo, parts) == (2, 0)
    skip = repo / "multirun" / "study" / "stage2_skip"
    names = sorted(p.name for p in skip.iterdir() if p.is_dir())
    assert len(names) == 2 and all("seed=0" in n.split(",") and "checkpoint_every" not in n for n in names), names
    for run in skip.iterdir():
        if run.is_dir():
            assert json.loads((run / "summary.json").read_text())["status"] == "completed"
            for name in ("metrics.csv", "predictions_test.csv", "train.log", "dead_units.json", ".hydra/config.yaml"):
                assert (run / name).is_file(), (run, name)
            assert not (run / "checkpoints").exists()

    assert pack(repo) == 2  # the next session carries .devstudy/: two summaries
    kit = repo / ".devstudy"
    second = session("study", tmp_path / "out2", real_resplit_dir, STUDY_ROOT=str(tmp_path / "device2"),
                     STUDY_KIT=str(kit))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = (tmp_path / "out2" / "session.log").read_text()
    assert "study: 2 run dirs known before this session" in log and "== study, all seeds" in log
    assert "2 job(s) already completed, skipped without a worker (#0, #3)" in log and "2 skipped" in log, log[-3000:]
    assert "== CUDA-graph checks: exit 0" in log and "trains eagerly" not in log  # checked first (skipped on CPU)
    slots = tmp_path / "device2" / "multirun" / "study" / ".slots"  # the presets at once share one set of slots
    assert f"shared with the sweeps using {slots}" in log and sorted(p.name for p in slots.iterdir()) == [
        "cpu-1.lock", "cpu-2.lock"]
    parts = sorted((tmp_path / "out2").glob("study.tar.gz.part-*"))
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        returned = {Path(n).parts[3] for n in tar.getnames() if len(Path(n).parts) > 3}
    renamed = "3_data.subset=256,data.val_fraction=0.02,model.skip=False,model.width=4,seed=0,trainer.epochs=1"
    assert f"renamed {renamed}" in log
    assert returned - {renamed} and all({"seed=1", "seed=2"} & set(n.split(",")) for n in returned - {renamed})
    assert len(returned - {renamed}) == 4, returned
    assert unpack(repo, parts) == (4, 1)  # the renamed run: kept as it is here, under its new name
    runs = sorted(p.name for p in skip.iterdir() if p.is_dir())
    assert len(runs) == 6 and renamed in runs and not any(n.startswith("1_") and "skip=False" in n for n in runs)
    assert (skip / renamed / "metrics.csv").is_file()  # the full run, not the kit's bare summary


def test_unknown_plan_is_refused(tmp_path: Path) -> None:
    proc = session("everything", tmp_path / "out", tmp_path)
    assert proc.returncode == 2 and "unknown plan 'everything': choose check, bench or study" in proc.stderr


def test_budget_and_packages_are_checked_before_anything_runs(tmp_path: Path) -> None:
    """A budget with a leading zero is decimal (bash would read 08 as a bad octal number); an absurd one is
    refused; a Python without the carried packages stops with one line naming the fix, before the data is built."""
    script = tmp_path / "repo" / "scripts" / SCRIPT.name  # a checkout without .whl/
    script.parent.mkdir(parents=True)
    script.write_text(SCRIPT.read_text())

    def run(budget: str, python: str) -> subprocess.CompletedProcess:
        environ = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": python, "DATA": str(tmp_path / "data")}
        return subprocess.run(["bash", str(script), "check", budget], env=environ, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    big = run("1234567", sys.executable)
    assert big.returncode == 2 and "BUDGET_S must be whole seconds (at most 6 digits), got '1234567'" in big.stderr
    bare = tmp_path / "bare-python"  # a Python that cannot import hydra (the GPU image without .whl/)
    bare.write_text("#!/bin/sh\nexec " + sys.executable + " -I -S \"$@\"\n")
    bare.chmod(0o755)
    lacking = run("08", str(bare))
    assert lacking.returncode == 1, lacking.stdout + lacking.stderr
    assert "lacks hydra-core, omegaconf or submitit: carry .whl/ (make device-kit)" in lacking.stdout + lacking.stderr
    assert "value too great for base" not in lacking.stdout + lacking.stderr and not (tmp_path / "data").exists()


def test_a_capped_step_is_stopped_at_its_cap() -> None:
    """`CAP=N step ...` (the GPU checks before the bench and the study): a hung check is stopped after N s instead
    of taking what is left of the session; the script's own left() and step(), run alone."""
    text = SCRIPT.read_text()
    start = text.index("\nleft() {")
    functions = text[start:text.index("\n}\n", text.index("\nstep() {")) + 3]
    proc = subprocess.run(["bash", "-c", "set -u\nBUDGET=300\nSTART=$(date +%s)\n" + functions +
                           'CAP=1 step "hung check" 10 sleep 30\necho "rc=$LAST_RC"\nstep "next" 10 true\n'
                           'echo "rc=$LAST_RC"'], capture_output=True, text=True, timeout=60)
    assert re.search(r"== hung check \(\d+ s left, limit 1 s\): sleep 30\n== hung check: exit 124 after", proc.stdout)
    assert re.search(r"== next \(\d+ s left, limit \d{3} s\): true\n== next: exit 0 after", proc.stdout), proc.stdout


@pytest.mark.parametrize(("plan", "mps", "message"), [
    ("study", "2", "MPS must be 0, 1 or auto, got '2'"),
    ("bench", "auto", "MPS=auto is for the study plan"),
])
def test_a_wrong_mps_value_stops_before_anything_runs(tmp_path: Path, plan: str, mps: str, message: str) -> None:
    proc = session(plan, tmp_path / "out", tmp_path / "no-data", MPS=mps)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing installed, built or written


@pytest.mark.slow
def test_study_plan_with_mps_auto_measures_both_ways_then_studies(real_resplit_dir: Path, tmp_path: Path) -> None:
    """MPS=auto: jobs per GPU without MPS, then MPS started (a stand-in nvidia-cuda-mps-control here) and the same
    measured with it; MPS stays on for the study only if it was faster, and is quit by the end either way."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    control = fake_bin / "nvidia-cuda-mps-control"
    control.write_text('#!/usr/bin/env bash\n'
                       'if [ "${1:-}" = -d ]; then echo start >>"$FAKE_MPS_LOG"; touch "$CUDA_MPS_PIPE_DIRECTORY/control"'
                       '; exit 0; fi\n'
                       'read -r cmd; echo "$cmd" >>"$FAKE_MPS_LOG"\n'
                       '[ "$cmd" = quit ] && rm -f "$CUDA_MPS_PIPE_DIRECTORY/control"; exit 0\n')
    control.chmod(0o755)
    calls = tmp_path / "mps.log"
    proc = session("study", tmp_path / "out", real_resplit_dir, MPS="auto", MPS_CHECK="true", SEEDS="0",
                   STUDY_ROOT=str(tmp_path / "device"), FAKE_MPS_LOG=str(calls),
                   PATH=f"{fake_bin}:{os.environ['PATH']}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== MPS: on" in log and "== MPS probe: " in log and "runs/min without MPS" in log, log[-3000:]
    assert log.count("== MPS: off") == 1 and log.index("== MPS: off") > log.index("== MPS probe: ")
    quit_before_study = log.index("== MPS: off") < log.index("== study, seed 0")
    assert quit_before_study != ("== MPS: kept for the study" in log)  # quit after the probe, or at exit
    assert calls.read_text().split() == ["start", "quit"]
    off, on = (json.loads((tmp_path / "out" / f"bench_mps_{k}.json").read_text()) for k in ("off", "on"))
    assert off["mps"] is False and on["mps"] is True
    assert all(r["completed"] == r["jobs"] for r in off["concurrency"] + on["concurrency"])
    assert "== study, seed 0" in log and sorted((tmp_path / "out").glob("study.tar.gz.part-*"))


def test_a_study_whose_archive_cannot_be_written_fails_the_session(tmp_path: Path) -> None:
    """The archive is what a study session returns: when it cannot be written, the session's exit status says so
    (here the study itself is skipped for lack of budget, and $OUT/study.tar.gz is a folder)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.parquet").write_text("")  # never read: the study is skipped
    (tmp_path / "out" / "study.tar.gz").mkdir(parents=True)
    environ = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "DATA": str(data),
               "STUDY_ROOT": str(tmp_path / "device"), "STUDY_KIT": str(tmp_path / "no-kit"), "CHECK_GRAPHS": "0"}
    proc = subprocess.run(["bash", str(SCRIPT), "study", "30"], env=environ, capture_output=True, text=True,
                          timeout=300)
    log = (tmp_path / "out" / "session.log").read_text()
    assert "== study, all seeds: skipped" in log and "error: " in log, log[-3000:]
    assert proc.returncode == 1, log[-3000:]
