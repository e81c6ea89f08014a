"""Faults: kill -9 mid-epoch, damaged checkpoints, a full disk, a read-only run dir, out of memory.
Resumed runs must end with the same metrics as uninterrupted ones (bit-identical on CPU)."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runs import compose_train, interrupted_at_epoch

from fmnist.errors import FmnistError
from fmnist.train import checkpoint as ckpt
from fmnist.train import run as run_mod
from fmnist.train.checkpoint import CheckpointError
from fmnist.train.run import OutOfMemory, train
from fmnist.train.run_dir import TIMING_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["model.width=8", "data.subset=1024", "trainer.epochs=3", "logger=none", "data.val_fraction=0.02"]


def compose_cfg(data_dir: Path, *overrides: str):
    return compose_train(data_dir, *SMALL, *overrides)


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def results(run_dir: Path) -> tuple:
    s = summary(run_dir)
    return s["best_val_acc"], s["best_epoch"], s["test_acc"], s["test_loss"]


# ----------------------------------------------------------------------------------------------- kill -9


@pytest.mark.slow
def test_kill_9_mid_epoch_then_same_command_resumes_bit_identically(real_resplit_dir: Path, tmp_path: Path) -> None:
    def command(run_dir: Path) -> list[str]:
        return [sys.executable, str(ROOT / "train.py"), *SMALL, f"data.dir={real_resplit_dir}",
                f"hydra.run.dir={run_dir}"]

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    twin = subprocess.Popen(command(whole), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = subprocess.Popen(command(cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (cut / "checkpoints" / "last.pt").exists():  # epoch 1 done: epoch 2 is under way
        assert victim.poll() is None and time.monotonic() < deadline, "the run never wrote a checkpoint"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert len(metrics(cut)) == 1  # killed inside epoch 2
    assert summary(cut)["status"] == "running"  # nobody recorded anything: a hard kill

    rerun = subprocess.run(command(cut), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming" in (cut / "train.log").read_text()
    assert twin.wait(timeout=600) == 0, (whole / "train.log").read_text()[-2000:]
    assert summary(cut)["resumed_from_epoch"] == 1 and summary(cut)["status"] == "completed"
    assert metrics(cut) == metrics(whole)
    assert results(cut) == results(whole)
    assert (cut / "predictions_test.csv").read_bytes() == (whole / "predictions_test.csv").read_bytes()


# -------------------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.slow
def test_corrupt_last_checkpoint_falls_back_to_the_previous_one(real_resplit_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg(real_resplit_dir)
    train(cfg, tmp_path / "whole")
    names = sorted(p.name for p in (tmp_path / "whole" / "checkpoints").iterdir())
    assert names == [ckpt.BEST, ckpt.LAST]  # previous.pt, the fall-back for a resume, goes once the run completes
    cut = tmp_path / "cut"
    interrupted_at_epoch(cfg, cut, monkeypatch, epoch=3)
    last = ckpt.checkpoint_path(cut, ckpt.LAST)
    assert ckpt.load_checkpoint(last)["epoch"] == 2
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(cut, ckpt.PREVIOUS))["epoch"] == 1
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a copy cut short

    with caplog.at_level("WARNING"):
        resumed = train(cfg, cut)
    assert "corrupt" in caplog.text and "previous good checkpoint" in caplog.text
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 1
    assert metrics(cut) == metrics(tmp_path / "whole") and results(cut) == results(tmp_path / "whole")
    assert last.with_name("last.pt.corrupt").exists()  # kept for inspection, out of the rotation
    assert not ckpt.checkpoint_path(cut, ckpt.PREVIOUS).exists()


@pytest.mark.slow
def test_corrupt_checkpoint_without_a_good_one_is_a_clear_error(real_resplit_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_cfg(real_resplit_dir)
    run = tmp_path / "r"
    interrupted_at_epoch(cfg, run, monkeypatch, epoch=2)
    last = ckpt.checkpoint_path(run, ckpt.LAST)
    assert not ckpt.checkpoint_path(run, ckpt.PREVIOUS).exists()  # only epoch 1 was checkpointed
    last.write_bytes(b"\x00garbage" * 100)
    before = {p.name: p.read_bytes() for p in (run / "metrics.csv", last)}

    with pytest.raises(CheckpointError, match=r"corrupt.*No good checkpoint is left.*trainer.force=true"):
        train(cfg, run)
    # never a silent restart: nothing was overwritten, and the failure is recorded
    assert {p.name: p.read_bytes() for p in (run / "metrics.csv", last)} == before
    s = summary(run)
    assert s["status"] == "failed" and "CheckpointError" in s["error"]


def test_a_checkpoint_that_is_not_a_resume_state_is_skipped_like_a_damaged_one(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    """In-process, no training: last.pt holding no dict, or a dict without the resume keys, is not resumed from."""
    assert ckpt.load_resume_state(tmp_path) is None  # no checkpoint: a fresh start
    last, previous = ckpt.checkpoint_path(tmp_path, ckpt.LAST), ckpt.checkpoint_path(tmp_path, ckpt.PREVIOUS)
    last.parent.mkdir()
    good = {key: {} for key in ckpt.RESUME_KEYS} | {"epoch": 1}
    torch.save([1, 2], last)
    torch.save(good, previous)
    with caplog.at_level("WARNING"):
        state = ckpt.load_resume_state(tmp_path)
    assert state["epoch"] == 1 and state["path"] == str(previous)
    assert f"checkpoint {last} does not hold a checkpoint (got list)" in caplog.text
    assert last.with_name("last.pt.corrupt").exists() and not last.exists()

    torch.save({"model": {}, "epoch": 2}, last)
    previous.unlink()
    with pytest.raises(CheckpointError) as info:
        ckpt.load_resume_state(tmp_path)
    assert str(info.value) == (f"cannot resume {tmp_path}: checkpoint {last} lacks optimizer, scheduler, rng, metrics, "
                               "best. No good checkpoint is left: restore one, or set trainer.force=true to discard "
                               "them and train from scratch")
    assert last.exists()  # nothing set aside or deleted when nothing can be resumed


class _NotWeights:
    """An arbitrary pickled object: what a checkpoint loaded with weights_only=True must refuse."""


def test_last_pt_rotation_keeps_one_previous_and_force_discards_all_three(tmp_path: Path) -> None:
    last, previous, best = (ckpt.checkpoint_path(tmp_path, name) for name in (ckpt.LAST, ckpt.PREVIOUS, ckpt.BEST))
    last.parent.mkdir()
    ckpt.save_checkpoint(last, {"epoch": 1}, keep_previous=True)
    assert not previous.exists()  # nothing replaced yet
    ckpt.save_checkpoint(last, {"epoch": 2}, keep_previous=True)
    assert ckpt.load_checkpoint(last)["epoch"] == 2 and ckpt.load_checkpoint(previous)["epoch"] == 1
    ckpt.save_checkpoint(best, {"epoch": 7})
    ckpt.save_checkpoint(best, {"epoch": 8})  # without keep_previous: previous.pt stays last.pt's predecessor
    assert ckpt.load_checkpoint(previous)["epoch"] == 1 and ckpt.load_checkpoint(best)["epoch"] == 8
    ckpt.discard_resume_state(tmp_path)
    assert not list(last.parent.glob("*.pt"))
    ckpt.discard_resume_state(tmp_path)  # nothing left to remove: no error


def test_previous_pt_is_a_copy_where_the_file_system_has_no_hard_links(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    last, previous = ckpt.checkpoint_path(tmp_path, ckpt.LAST), ckpt.checkpoint_path(tmp_path, ckpt.PREVIOUS)
    last.parent.mkdir()

    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(ckpt.os, "link", no_links)
    ckpt.save_checkpoint(last, {"epoch": 1}, keep_previous=True)
    ckpt.save_checkpoint(last, {"epoch": 2}, keep_previous=True)
    assert ckpt.load_checkpoint(previous)["epoch"] == 1 and ckpt.load_checkpoint(last)["epoch"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == [ckpt.LAST, ckpt.PREVIOUS]  # no temp file left


def test_a_checkpoint_is_loaded_as_weights_only_and_an_unreadable_best_pt_is_set_aside(tmp_path: Path) -> None:
    best = ckpt.checkpoint_path(tmp_path, ckpt.BEST)
    best.parent.mkdir()
    torch.save({"epoch": 1, "model": _NotWeights()}, best)  # arbitrary code could run on loading it
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        ckpt.load_checkpoint(best)
    ckpt.set_aside_stale_best(tmp_path, 1)  # it cannot be told to hold epoch 1: not tested under that name
    assert not best.exists() and best.with_name("best.pt.stale").exists()


# ------------------------------------------------------------------------------- full disk, read-only dir


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 16 MiB tmpfs (root only): fills up for real, and can be remounted read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.mark.slow
def test_full_disk_while_checkpointing_then_read_only_run_dir(real_resplit_dir: Path, small_disk: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_cfg(real_resplit_dir)
    run = small_disk / "run"
    real_save = ckpt.save_checkpoint

    def save(path, state, keep_previous=False):
        if Path(path).name == ckpt.LAST and state["epoch"] == 2:
            _fill(small_disk)  # the disk fills up just as epoch 2 is checkpointed
        real_save(path, state, keep_previous)

    monkeypatch.setattr(ckpt, "save_checkpoint", save)
    with pytest.raises(FmnistError, match=r"cannot write .*last\.pt: No space left on device"):
        train(cfg, run)
    monkeypatch.undo()
    # earlier files intact: the epoch-1 checkpoint loads, metrics.csv is whole, no temp file is left
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(run, ckpt.LAST))["epoch"] == 1
    assert [r["epoch"] for r in metrics(run)] == ["1", "2"]
    assert not [p for p in run.rglob("*.tmp")]
    assert summary(run)["status"] in ("running", "failed")  # the failure record itself may not fit

    (small_disk / "filler").unlink()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    # the first write fails, or setting aside best.pt of epoch 2 (written just before the failed last.pt: stale)
    with pytest.raises(FmnistError, match=r"cannot (write|set aside) .*: Read-only file system"):
        train(cfg, run)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    resumed = train(cfg, run)  # space again: the same run resumes and completes
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 1


# ----------------------------------------------------------------------------------------- out of memory


@pytest.mark.slow
def test_out_of_memory_fails_the_run_with_a_clear_reason(real_resplit_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")

    monkeypatch.setattr(run_mod, "train_one_epoch", oom)
    with pytest.raises(OutOfMemory, match=r"out of memory on cpu .*lower trainer.batch_size"):
        train(compose_cfg(real_resplit_dir), tmp_path / "r")
    s = summary(tmp_path / "r")
    assert s["status"] == "failed" and s["error"].startswith("OutOfMemory: out of memory")


# ------------------------------------------------------------------------------------- stopped at the end

SYNTHETIC = ["model.width=4", "data.subset=64", "trainer.batch_size=32", "logger=none", "trainer.epochs=1"]


def test_a_stop_after_the_completed_summary_is_written_leaves_the_run_completed(make_resplit, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (or Ctrl-C) landing after summary.json said completed, while the loggers were closing, rewrote it as
    `interrupted`: a finished run looked stopped, and the same command tested it again."""
    cfg = compose_train(make_resplit().path, *SYNTHETIC)
    run = tmp_path / "r"

    def stop(self, results):
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(run_mod.MetricSinks, "log_final", stop)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run)
    monkeypatch.undo()
    done = (run / "summary.json").read_bytes()
    assert json.loads(done)["status"] == "completed"
    assert train(cfg, run)["status"] == "completed" and (run / "summary.json").read_bytes() == done  # skipped


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_second_sigint_while_the_run_records_how_it_ended_does_not_leave_it_running(
        stop, make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gpu_pool worker whose launcher is killed with SIGKILL gets die_with_parent's SIGINT once per launcher thread
    that exits after the one that started it (the kernel sends it at every reparenting; torch gives the launcher
    several threads): the second one landed while summary.json was being written as interrupted (or failed), cut that
    write short, and the run stayed `running` while its train.log said interrupted."""
    cfg = compose_train(make_resplit().path, *SYNTHETIC)
    real_write = run_mod.write_summary

    def stop_in_epoch(run_dir, rows):
        raise stop("stopped")

    def write(run_dir, record):
        if record["status"] != "running":  # the second SIGINT, as the ending is recorded
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        real_write(run_dir, record)

    monkeypatch.setattr(run_mod, "write_metrics", stop_in_epoch)
    monkeypatch.setattr(run_mod, "write_summary", write)
    with pytest.raises((stop, KeyboardInterrupt)) as raised:
        train(cfg, tmp_path / "r")
    assert raised.type is stop  # the second SIGINT changes nothing
    recorded = summary(tmp_path / "r")
    assert recorded["status"] == ("interrupted" if stop is KeyboardInterrupt else "failed")
    assert stop is KeyboardInterrupt or "stop_in_epoch" in recorded["traceback"]


def test_a_write_killed_part_way_leaves_no_temp_file_once_the_run_dir_is_trained_again(tmp_path: Path) -> None:
    """kill -9 inside an atomic write (temp file written, not yet renamed) left `.last.pt.k2j3h4g5.tmp`, a whole
    checkpoint, hidden in checkpoints/ for good: one more at every such kill. The next process to hold the run dir
    removes them; files of other names stay."""
    from fmnist.train.run_dir import hold_run_dir

    run = tmp_path / "r"
    litter = [run / ".summary.json.abcd1234.tmp", run / ".hydra" / ".config.yaml.x7y8z9w0.tmp",
              run / "checkpoints" / ".last.pt.k2j3h4g5.tmp", run / "checkpoints" / ".previous.pt.4242.tmp"]
    kept = [run / "notes.tmp", run / "checkpoints" / "last.pt", run / ".hydra" / "config.yaml"]
    for path in litter + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    with hold_run_dir(run):
        assert [p for p in litter if p.exists()] == []
    assert all(p.exists() for p in kept)
