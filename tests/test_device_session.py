"""scripts/device_session.sh at CPU size (TINY=1): the prepared command for a lent GPU machine must not
waste that machine's minutes on a typo, so every plan runs here end to end and its outputs are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

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
    assert read["concurrency"]["concurrency"][0]["completed"] == 2
    assert read["compile"]["throughput"][0]["model"] == "resnet18"


@pytest.mark.slow
def test_study_plan_returns_the_run_dirs_without_checkpoints(real_resplit_dir: Path, tmp_path: Path) -> None:
    proc = session("study", tmp_path / "out", real_resplit_dir, STUDY_ROOT=str(tmp_path / "device"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parts = sorted((tmp_path / "out").glob("study.tar.gz.part-*"))
    assert parts
    archive = tmp_path / "study.tar.gz"
    archive.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "repo", filter="data")
    assert not [n for n in names if "checkpoints" in n or ".pool" in n]
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "repo").glob("multirun/study/stage2_skip/*/summary.json")]
    assert len(summaries) == 2 and all(s["status"] == "completed" and s["seed"] == 0 for s in summaries)
    names = [p.name for p in (tmp_path / "repo" / "multirun" / "study" / "stage2_skip").iterdir() if p.is_dir()]
    assert len(names) == 2 and not [n for n in names if "checkpoint_every" in n], names  # kept out of run-dir names
    for run in (tmp_path / "repo" / "multirun" / "study" / "stage2_skip").glob("*_seed=0"):
        for name in ("metrics.csv", "predictions_test.csv", "train.log", "dead_units.json", ".hydra/config.yaml"):
            assert (run / name).is_file(), (run, name)


def test_unknown_plan_is_refused(tmp_path: Path) -> None:
    proc = session("everything", tmp_path / "out", tmp_path)
    assert proc.returncode == 2 and "unknown plan 'everything': choose check, bench or study" in proc.stderr


def test_study_aside_parks_the_other_seeds_and_brings_them_back(tmp_path: Path) -> None:
    runs = ["stage2_skip/0_model.skip=True,seed=0", "stage2_skip/1_model.skip=True,seed=1",
            "stage2_lr/0_optimizer.lr=0.1,seed=1,trainer.x=2", "stage2_lr/1_optimizer.lr=0.1,seed=10"]
    for run in runs:
        (tmp_path / "multirun" / "study" / run).mkdir(parents=True)
        (tmp_path / "multirun" / "study" / run / "summary.json").write_text("{}")

    def make(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), *args],
                              capture_output=True, text=True, timeout=60)

    def present(root: Path) -> set[str]:
        return {str(p.parent.relative_to(root)) for p in root.glob("multirun/study/*/*/summary.json")}

    assert make("study-aside").returncode == 2
    parked = make("study-aside", "SEED=1")
    assert parked.returncode == 0 and "parked 2 run dirs" in parked.stdout
    assert present(tmp_path) == {f"multirun/study/{r}" for r in runs[1:3]}
    assert present(tmp_path / ".aside") == {f"multirun/study/{r}" for r in (runs[0], runs[3])}
    assert make("study-back").returncode == 0
    assert present(tmp_path) == {f"multirun/study/{r}" for r in runs} and not (tmp_path / ".aside").exists()
