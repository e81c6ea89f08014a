"""The trainer and the run-directory contract, end to end on real data (CPU, tiny nets)."""

from __future__ import annotations

import csv
import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from runs import compose_train, interrupted_at_epoch, run_train_cli, train_cmd

from fmnist.errors import ConfigError, DataError, FmnistError
from fmnist.train.callbacks import sweep_outcome
from fmnist.train.checkpoint import BEST, LAST, RESUME_KEYS, checkpoint_path, save_checkpoint, set_aside_stale_best
from fmnist.train.run import TrainingDiverged, _write_predictions, completed_run, train
from fmnist.train.logging import to_container
from fmnist.train import run_dir as run_dir_mod
from fmnist.train.run_dir import METRIC_COLUMNS, TIMING_COLUMNS, RunDirBusy, hold_run_dir

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=8", "data.subset=1024", "trainer.batch_size=128", "logger=none"]
SYNTHETIC = ["model.width=4", "data.subset=64", "trainer.batch_size=32", "logger=none"]  # on make_resplit's folder


def compose_cfg(data_dir: Path, *overrides: str):
    return compose_train(data_dir, *TINY, *overrides)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


run_cli = run_train_cli


@pytest.mark.slow
def test_cli_run_writes_the_whole_contract(real_resplit_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # The acceptance command: a CPU run well under a minute reaching val_acc >= 0.70.
    proc = run_cli("trainer.epochs=2", "data.subset=4096", "model.width=16", f"data.dir={real_resplit_dir}",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "metrics.csv", "summary.json",
                 "checkpoints/last.pt", "checkpoints/best.pt", "predictions_test.csv", "train.log",
                 "dead_units.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    dead = json.loads((run_dir / "dead_units.json").read_text())  # best weights, whole validation split
    assert dead["n_images"] == 6000 and len(dead["per_layer"]) == 8 and 0.2 < dead["zero_fraction"] < 0.9

    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert tuple(rows[0].keys()) == METRIC_COLUMNS
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["error"] is None
    assert summary["best_val_acc"] == max(float(r["val_acc"]) for r in rows)
    assert summary["best_val_acc"] >= 0.70  # chance is 0.1
    assert 0.65 < summary["test_acc"] <= 1.0 and summary["test_loss"] > 0
    assert summary["n_train"] == 4096 and summary["n_val"] == 6000 and summary["n_test"] == 1000
    assert summary["params"] > 0 and summary["flops"] > 0
    assert summary["choices"]["model"] == "resnet9"
    assert summary["config"]["trainer"]["epochs"] == 2
    for key in ("device_name", "torch_version", "git_commit", "seed", "train_time_s", "images_per_s", "command"):
        assert key in summary, key
    if Path("/proc/self/stat").exists():  # a process of its own: its start-up includes importing torch
        assert summary["startup_s"] > 0.1

    with open(run_dir / "predictions_test.csv") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 1000  # real_resplit_dir's test split
    assert list(preds[0].keys()) == ["id", "label", "pred"] + [f"p{c}" for c in range(10)]
    acc = sum(p["label"] == p["pred"] for p in preds) / len(preds)
    assert acc == pytest.approx(summary["test_acc"])
    assert sum(float(preds[0][f"p{c}"]) for c in range(10)) == pytest.approx(1.0, abs=1e-4)
    log = (run_dir / "train.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log


def test_predictions_are_fixed_point_probabilities(tmp_path: Path) -> None:
    probs = torch.tensor([[1 - 2.5e-7, 1e-7, 1.5e-7], [0.2, 0.3, 0.5]], dtype=torch.float64)
    _write_predictions(tmp_path / "p.csv", np.array([7, 9]), torch.tensor([0, 1]), probs)
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines == ["id,label,pred,p0,p1,p2", "7,0,0,1.000000,0.000000,0.000000", "9,1,2,0.200000,0.300000,0.500000"]


@pytest.mark.slow
def test_multirun_sweep_makes_one_dir_per_job(real_resplit_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "model.skip=true,false", "trainer.epochs=1", "data.subset=512", "model.width=8",
                   "logger=none", f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert [r.name.split("_", 1)[0] for r in runs] == ["0", "1"]  # <job number>_<overrides>
    assert "model.skip=True" in runs[0].name and "model.skip=False" in runs[1].name
    assert "data.dir" not in runs[0].name  # paths are kept out of directory names
    configs = [json.loads((r / "summary.json").read_text())["config"]["model"]["skip"] for r in runs]
    assert configs == [True, False]
    assert all(json.loads((r / "summary.json").read_text())["status"] == "completed" for r in runs)


@pytest.mark.slow
def test_same_seed_same_metrics(real_resplit_dir: Path, tmp_path: Path) -> None:
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=2", "augment=strong")
    a, b = train(cfg, tmp_path / "a"), train(cfg, tmp_path / "b")
    assert without_timing(read_metrics(tmp_path / "a")) == without_timing(read_metrics(tmp_path / "b"))
    assert a["test_acc"] == b["test_acc"]
    other = train(compose_cfg(real_resplit_dir, "trainer.epochs=2", "augment=strong", "seed=7"), tmp_path / "c")
    assert without_timing(read_metrics(tmp_path / "c")) != without_timing(read_metrics(tmp_path / "a"))
    assert other["status"] == "completed"


@pytest.mark.slow
def test_interrupted_run_resumes_to_identical_metrics(real_resplit_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # alternating flips: the flip salt and the epoch parity must come back on resume too
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=3", "scheduler=warmup_cosine", "augment.flip=alternating")
    train(cfg, tmp_path / "whole")

    interrupted_at_epoch(cfg, tmp_path / "cut", monkeypatch)
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "interrupted"
    resumed = train(cfg, tmp_path / "cut")
    assert resumed["resumed_from_epoch"] == 1
    assert without_timing(read_metrics(tmp_path / "cut")) == without_timing(read_metrics(tmp_path / "whole"))


@pytest.mark.slow
def test_completed_run_is_skipped_unless_forced(real_resplit_dir: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=1")
    first = train(cfg, tmp_path / "r")
    again = train(cfg, tmp_path / "r")
    assert again["started_at"] == first["started_at"]  # nothing reran
    with caplog.at_level("WARNING", logger="fmnist"):
        forced = train(compose_cfg(real_resplit_dir, "trainer.epochs=1", "trainer.force=true"), tmp_path / "r")
    assert forced["status"] == "completed" and "resumed_from_epoch" not in forced
    assert "no checkpoint" not in caplog.text  # a forced rerun starts again as asked: no warning that it does
    # the same run dir asked for another computation (a preset changed since): refused, nothing overwritten
    before = (tmp_path / "r" / "summary.json").read_bytes()
    with pytest.raises(ConfigError, match=r"another configuration \(optimizer.lr 0.1 -> 0.05\)"):
        train(compose_cfg(real_resplit_dir, "trainer.epochs=1", "optimizer.lr=0.05"), tmp_path / "r")
    assert (tmp_path / "r" / "summary.json").read_bytes() == before
    # ... but not for a key added to conf/ since the run was made, nor for a neutral one
    recorded = json.loads(before)
    del recorded["config"]["trainer"]["label_smoothing"]
    (tmp_path / "r" / "summary.json").write_text(json.dumps(recorded))
    again = train(compose_cfg(real_resplit_dir, "trainer.epochs=1", "trainer.checkpoint_every=5"), tmp_path / "r")
    assert again["started_at"] == forced["started_at"]


def _finished_run_dir(run_dir: Path, cfg, hydra_overrides: list[str]) -> dict:
    """A run dir as a completed run leaves it (summary.json with its config and overrides, .hydra/)."""
    summary = {"status": "completed", "config": to_container(cfg), "overrides": hydra_overrides, "test_acc": 0.5}
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in hydra_overrides))
    return summary


def test_refused_or_invalid_rerun_leaves_the_finished_run_as_it_was(tmp_path: Path) -> None:
    run = tmp_path / "r"
    recorded = _finished_run_dir(run, compose_cfg(tmp_path / "data", "trainer.epochs=1"), ["trainer.epochs=1"])
    before = (run / "summary.json").read_bytes()
    os.utime(run / "summary.json", (time.time() - 3600,) * 2)  # finished by an earlier sweep
    for overrides, error in ((["trainer.epochs=1", "optimizer.lr=0.05"], ConfigError),  # another config: refused
                             (["trainer.epochs=0", "trainer.force=true"], ConfigError),   # forced, but invalid
                             (["trainer.epochs=1", "trainer.force=true"], DataError)):    # forced, no data folder
        sweep_started = time.time()
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))  # what Hydra does
        with pytest.raises(error) as refused:
            train(compose_cfg(tmp_path / "data", *overrides), run, overrides=overrides)
        assert (run / "summary.json").read_bytes() == before
        assert yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) == recorded["overrides"]
        assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text()) == recorded["config"]
        # the sweep's report counts the refused job as failed (not as a completed run it skipped)
        outcome = sweep_outcome(tmp_path, since=sweep_started)
        assert outcome.failed == [(run, f"{type(refused.value).__name__}: {refused.value}")] and not outcome.skipped


def test_a_finished_run_dir_is_skipped_and_a_diverged_one_refused_without_reading_data(tmp_path: Path) -> None:
    """In-process, no data: the same command again returns the completed run's summary untouched, and refuses to
    train a run that diverged (its recorded failure stands) unless forced."""
    cfg = compose_cfg(tmp_path / "no-data", "trainer.epochs=1")
    run = tmp_path / "r"
    recorded = _finished_run_dir(run, cfg, ["trainer.epochs=1"])
    assert train(cfg, run, overrides=["trainer.epochs=1"]) == recorded
    diverged = recorded | {"status": "failed", "error": "TrainingDiverged: training loss became NaN/inf in epoch 1"}
    (run / "summary.json").write_text(json.dumps(diverged))
    before = (run / "summary.json").read_bytes()
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, run, overrides=["trainer.epochs=1"])
    assert str(info.value) == (f"{run} diverged before (TrainingDiverged: training loss became NaN/inf in epoch 1); "
                               "not trained again — set trainer.force=true to rerun")
    assert (run / "summary.json").read_bytes() == before


def test_completed_run_is_the_run_train_would_return_without_training(tmp_path: Path) -> None:
    """completed_run (what a launcher checks before starting a worker) finds a run exactly when train() would skip
    it: completed, of the same configuration up to neutral keys, not forced."""
    cfg = compose_cfg(tmp_path / "no-data", "trainer.epochs=1")
    run = tmp_path / "r"
    assert completed_run(cfg, run) is None  # no run dir yet
    recorded = _finished_run_dir(run, cfg, ["trainer.epochs=1"])
    assert completed_run(cfg, run) == recorded == train(cfg, run, overrides=["trainer.epochs=1"])
    assert completed_run(compose_cfg(tmp_path / "elsewhere", "trainer.epochs=1", "trainer.checkpoint_every=3"),
                         run) == recorded  # neutral keys: data.dir, checkpoint_every
    assert completed_run(compose_cfg(tmp_path / "no-data", "trainer.epochs=1", "optimizer.lr=0.05"), run) is None
    assert completed_run(compose_cfg(tmp_path / "no-data", "trainer.epochs=1", "trainer.force=true"), run) is None
    for status in ("running", "interrupted", "failed"):
        (run / "summary.json").write_text(json.dumps(recorded | {"status": status}))
        assert completed_run(cfg, run) is None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_is_one_line_and_the_run_resumes(real_resplit_dir: Path, tmp_path: Path, sig: signal.Signals) -> None:
    """Ctrl-C, or `kill` (SIGTERM) of a run started in a terminal: one line, status interrupted, exit 130."""
    run = tmp_path / "r"
    args = train_cmd(f"data.dir={real_resplit_dir}", "model.width=4", "data.subset=256", "trainer.epochs=30",
                     "logger=none", f"hydra.run.dir={run}")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.csv").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted: " in out + err and "Traceback" not in out + err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "launch the same command again" in summary["error"]
    assert summary["overrides"] == args[2:-1]  # the task overrides: hydra.run.dir is not one


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nohup") is None, reason="needs nohup")
def test_a_run_started_with_nohup_trains_on_through_a_hangup(real_resplit_dir: Path, tmp_path: Path) -> None:
    """`nohup python train.py ... &` on a server, then logging out (SIGHUP): the run trains on to the end."""
    run, epochs = tmp_path / "r", 6
    args = train_cmd(f"data.dir={real_resplit_dir}", "model.width=4", "data.subset=256", f"trainer.epochs={epochs}",
                     "logger=none", f"hydra.run.dir={run}")
    proc = subprocess.Popen(["nohup", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.csv").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    done_at_hangup = len((run / "metrics.csv").read_text().splitlines()) - 1
    assert proc.poll() is None and done_at_hangup < epochs  # the hangup comes while it trains
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out + err)[-2000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_checkpoint_of_another_config_is_refused(real_resplit_dir: Path, tmp_path: Path) -> None:
    train(compose_cfg(real_resplit_dir, "trainer.epochs=1"), tmp_path / "r")
    (tmp_path / "r" / "summary.json").unlink()  # as if it had been interrupted
    with pytest.raises(ConfigError, match=r"different configuration \(optimizer.lr 0.1 -> 0.05\)"):
        train(compose_cfg(real_resplit_dir, "trainer.epochs=1", "optimizer.lr=0.05"), tmp_path / "r")
    # a checkpoint made before a key was added to conf/ still resumes
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["resume_key"]["trainer"]["label_smoothing"]
    torch.save(state, last)
    resumed = train(compose_cfg(real_resplit_dir, "trainer.epochs=1"), tmp_path / "r")
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 1


@pytest.mark.slow
def test_divergence_fails_with_a_clear_reason(real_resplit_dir: Path, tmp_path: Path) -> None:
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=2", "optimizer.lr=1e30", "norm=none")
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        train(cfg, tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and "NaN/inf" in summary["error"]
    # the same run again (a resumed study): not trained again, the recorded failure stands
    with pytest.raises(TrainingDiverged, match="diverged before .*trainer.force=true to rerun"):
        train(cfg, tmp_path / "r")
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == summary
    (tmp_path / "r" / "summary.json").write_text(json.dumps(summary | {"marker": "the recorded failure"}))
    forced = compose_cfg(real_resplit_dir, "trainer.epochs=2", "optimizer.lr=1e30", "norm=none", "trainer.force=true")
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        train(forced, tmp_path / "r")
    assert "marker" not in json.loads((tmp_path / "r" / "summary.json").read_text())  # trained and recorded anew


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.epochs=0", "trainer.epochs"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("data.val_fraction=1.0", "data.val_fraction"),
        ("trainer.precision=fp8", "trainer.precision"),
        ("model._target_=os.system", "not allowed"),
        # a model a user adds that does not give Fashion-MNIST's 10 logits, or does not fit 28x28 images
        ("model.num_classes=1000", r"^model: ResNet9 maps a batch of 2 images to \[2, 1000\], not \[2, 10\] logits"),
        ("model=vgg11 model.layers=[64,M,64,M,64,M,64,M,64,M,64,M]",
         r"^model: VGG fails on a batch of \[1, 28, 28\] images: RuntimeError: Given input size"),
    ],
)
def test_bad_config_is_refused_before_training(tmp_path: Path, override: str, message: str) -> None:
    cfg = compose_cfg(tmp_path / "no-data-needed", *override.split(" "))
    with pytest.raises(ConfigError, match=message):
        train(cfg, tmp_path / "r")


def test_track_dead_on_a_model_without_activation_modules_is_refused_before_training(tmp_path: Path) -> None:
    """activation=torch.nn.Identity (a linear-net ablation a user adds) has nothing trainer.track_dead can measure:
    one ConfigError before the data is read, not a ValueError traceback after the first epoch has trained."""
    cfg = compose_cfg(tmp_path / "no-data-needed", "activation._target_=torch.nn.Identity", "trainer.track_dead=true")
    with pytest.raises(ConfigError, match=r"^trainer.track_dead=true: ResNet9 has no activation module to measure "
                                          r"\(activation=torch.nn.Identity\); set trainer.track_dead=false$"):
        train(cfg, tmp_path / "r")


def test_cli_error_is_one_clear_line(tmp_path: Path) -> None:
    proc = run_cli("trainer.epochs=0", f"hydra.run.dir={tmp_path / 'r'}", "logger=none")
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "trainer.epochs=0 is invalid" in out
    assert "Traceback" not in out


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    proc = run_cli("trainer.epoch=3", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 1 and not (tmp_path / "r").exists()
    assert proc.stderr.startswith("Could not override 'trainer.epoch'.\nTo append to your config use +trainer.epoch=3")
    assert "Traceback" not in proc.stderr


def test_missing_device_is_refused(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = compose_cfg(tmp_path / "nodata", "device=cuda:3")
    with pytest.raises(ConfigError, match=r"device='cuda:3' requested but CUDA is not available on this machine"):
        train(cfg, tmp_path / "r")


@pytest.mark.slow
def test_hidden_test_labels_give_predictions_only(make_resplit, tmp_path: Path) -> None:
    data = make_resplit(n_train=300, n_test=40, hide_test_labels=True)
    summary = train(compose_cfg(data.path, "trainer.epochs=1", "data.subset=null", "trainer.batch_size=64"),
                    tmp_path / "r")
    assert summary["status"] == "completed"
    assert summary["test_acc"] is None and summary["test_loss"] is None
    with open(tmp_path / "r" / "predictions_test.csv") as f:
        preds = list(csv.DictReader(f))
    assert [int(p["id"]) for p in preds] == data.test_ids.tolist()
    assert "label" not in preds[0] and {"pred", "p0", "p9"} <= set(preds[0])


@pytest.mark.slow
def test_missing_data_dir_is_built_or_explained(real_raw_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.errors import DataError

    missing = tmp_path / "not-there"
    with pytest.raises(DataError, match="fmnist.data.prepare"):
        train(compose_cfg(missing, "trainer.epochs=1", "data.auto_prepare=false"), tmp_path / "r0")
    with pytest.raises(DataError, match="not-there does not exist; data.dir names your FashionMNIST-Resplit folder "
                                       "\\(a typo\\?\\)"):  # auto builds only the default folder
        train(compose_cfg(missing, "trainer.epochs=1"), tmp_path / "r0")
    monkeypatch.setenv("FASHION_MNIST_RAW", str(real_raw_dir))
    summary = train(compose_cfg(missing, "trainer.epochs=1", "data.subset=256", "data.auto_prepare=true"),
                    tmp_path / "r1")
    assert summary["status"] == "completed" and (missing / "data.parquet").is_file()
    assert not list(tmp_path.glob(".*.lock"))  # the builders' lock file goes with the build


@pytest.mark.slow
def test_wandb_logger_works_offline(real_resplit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")  # no login: offline must not need one
    summary = train(compose_cfg(real_resplit_dir, "trainer.epochs=1", "data.subset=256", "logger=wandb"),
                    tmp_path / "r")
    assert summary["status"] == "completed"
    assert list((tmp_path / "r" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert list((tmp_path / "r" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_track_dead_adds_measured_columns(real_resplit_dir: Path, tmp_path: Path) -> None:
    from fmnist.analysis.dead_neurons import dead_unit_stats
    from fmnist.data.loader import eval_batches, load_splits
    from fmnist.models.factory import build_model

    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=2", "trainer.track_dead=true",
                      "trainer.track_dead_images=200", "trainer.test_on=last")
    train(cfg, tmp_path / "r")
    rows = read_metrics(tmp_path / "r")
    assert list(rows[0])[-2:] == ["dead_fraction", "zero_fraction"]
    for row in rows:
        assert 0.0 <= float(row["dead_fraction"]) <= 1.0 and 0.0 < float(row["zero_fraction"]) < 1.0
    # the last row is exactly what the final weights give on the first 200 validation images
    model = build_model(cfg)
    model.load_state_dict(torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["model"])
    splits = load_splits(real_resplit_dir, torch.device("cpu"), 0.1, 1024, 0)
    probe = next(eval_batches(splits.val, 200))[0]
    stats = dead_unit_stats(model, probe)
    assert float(rows[-1]["dead_fraction"]) == pytest.approx(stats.dead_fraction)
    assert float(rows[-1]["zero_fraction"]) == pytest.approx(stats.zero_fraction)


@pytest.mark.slow
def test_ema_weights_are_validated_tested_and_resumed(real_resplit_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=2", "trainer.ema_decay=0.9")
    whole = train(cfg, tmp_path / "whole")
    plain = train(compose_cfg(real_resplit_dir, "trainer.epochs=2"), tmp_path / "plain")
    assert whole["best_val_acc"] != plain["best_val_acc"]  # the averaged weights are what is validated
    state = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "whole" / "checkpoints" / "best.pt", weights_only=True)
    assert state["ema"]["updates"] == 2 * (1024 // 128)

    interrupted_at_epoch(cfg, tmp_path / "cut", monkeypatch)
    after_epoch_1 = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=True)
    assert after_epoch_1["epoch"] == 1
    # best.pt holds the averaged weights of the best epoch (the same first epoch in both runs: training is
    # deterministic on CPU)
    shadow = (state if whole["best_epoch"] == 2 else after_epoch_1)["ema"]["shadow"]
    assert all(torch.equal(best["model"][k], shadow[k]) for k in best["model"])
    resumed = train(cfg, tmp_path / "cut")
    assert without_timing(read_metrics(tmp_path / "cut")) == without_timing(read_metrics(tmp_path / "whole"))
    assert resumed["test_acc"] == whole["test_acc"]


@pytest.mark.slow
def test_checkpoint_every_n_epochs_resumes_from_the_last_one_written(real_resplit_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=3", "trainer.checkpoint_every=2", "data.subset=512")
    train(cfg, tmp_path / "whole")
    assert torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3  # the end
    interrupted_at_epoch(cfg, tmp_path / "cut", monkeypatch, epoch=3)
    resumed = train(cfg, tmp_path / "cut")
    assert resumed["resumed_from_epoch"] == 2  # epoch 1 was not checkpointed, epoch 2 was
    assert without_timing(read_metrics(tmp_path / "cut")) == without_timing(read_metrics(tmp_path / "whole"))


@pytest.mark.slow
def test_best_weights_are_written_with_last_pt_so_a_resume_never_meets_newer_ones(
        real_resplit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint_every=3, stopped in epoch 3: epochs 1-2 improved val_acc but nothing was checkpointed, so no
    best.pt of those epochs may be left for the resumed run to test under another epoch's name."""
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=3", "trainer.checkpoint_every=3", "data.subset=256",
                      "model.width=8")
    interrupted_at_epoch(cfg, tmp_path / "r", monkeypatch, epoch=3)
    assert not list((tmp_path / "r" / "checkpoints").glob("*.pt"))
    summary = train(cfg, tmp_path / "r")
    best = torch.load(tmp_path / "r" / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == summary["best_epoch"] and summary["tested_checkpoint"] == f"best (epoch {best['epoch']})"


def test_a_run_dir_another_process_is_training_is_left_alone(tmp_path: Path) -> None:
    """Two identical sweeps started into one folder: the second launch of a job finds its run dir locked."""
    run_dir = tmp_path / "r"
    with hold_run_dir(run_dir):
        with pytest.raises(RunDirBusy, match=f"being trained by another process right now \\(pid {os.getpid()}\\)"):
            train(compose_cfg(tmp_path / "no-data", "trainer.epochs=1"), run_dir)
        assert [p.name for p in run_dir.iterdir()] == [".lock"]  # nothing written, no failed summary
        # the running process's summary: Hydra's record of the refused job (another config) is put back from it
        (run_dir / "summary.json").write_text(json.dumps({"status": "running", "overrides": ["seed=1"],
                                                          "config": {"seed": 1}}))
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=2\n")
        with pytest.raises(RunDirBusy):
            train(compose_cfg(tmp_path / "no-data", "trainer.epochs=1", "seed=2"), run_dir)
        assert yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) == ["seed=1"]
    with hold_run_dir(run_dir):  # released: the next holder gets it, and the lock names it alone
        assert (run_dir / ".lock").read_text() == f"{os.getpid()}\n"


def _strict_json(path: Path):
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_run_dir_files_are_strict_json_csv_with_empty_cells_and_readable_by_all(tmp_path: Path) -> None:
    run_dir_mod.write_json(tmp_path / "s.json", {"a": float("inf"), "b": [float("nan"), (1.5, float("-inf"))], 1: 2})
    assert _strict_json(tmp_path / "s.json") == {"a": None, "b": [None, [1.5, None]], "1": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "s.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    row = {"epoch": 1, "lr": 0.1, "val_loss": None, "val_acc": None, "dead_fraction": 0.5, "zero_fraction": 0.25}
    run_dir_mod.write_metrics(tmp_path, [row])
    got = read_metrics(tmp_path)
    assert tuple(got[0]) == METRIC_COLUMNS + run_dir_mod.DEAD_COLUMNS  # trainer.track_dead's columns kept
    assert got[0]["val_acc"] == "" and got[0]["dead_fraction"] == "0.5"  # no validation split: empty, not "None"
    # a summary that recorded overrides but no config rewrites only overrides.yaml
    assert run_dir_mod.restore_hydra_record(tmp_path, {"overrides": ["seed=1"]}) == ["overrides.yaml"]
    assert not (tmp_path / ".hydra" / "config.yaml").exists()


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "summary.json").write_text("old")

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_dir_mod.os, "replace", no_space)
    with pytest.raises(FmnistError, match="cannot write .*summary.json: No space left on device"):
        run_dir_mod.write_summary(tmp_path, {"status": "completed"})
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"] and (tmp_path / "summary.json").read_text() == "old"


def test_a_refusal_counts_from_the_moment_it_was_noted(tmp_path: Path) -> None:
    assert run_dir_mod.refusal_since(tmp_path, 0.0) is None  # none noted
    run_dir_mod.note_refusal(tmp_path, "ConfigError: another configuration")
    noted = (tmp_path / run_dir_mod.REFUSED_FILE).stat().st_mtime
    assert run_dir_mod.refusal_since(tmp_path, noted) == "ConfigError: another configuration"
    assert run_dir_mod.refusal_since(tmp_path, noted + 1) is None  # an older sweep's refusal

def test_a_best_pt_of_other_epochs_is_set_aside_on_resume(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, BEST)
    path.parent.mkdir()
    save_checkpoint(path, {"model": {}, "epoch": 2, "val_acc": 0.5})
    set_aside_stale_best(tmp_path, 2)  # the resumed run's best: kept
    assert path.exists()
    set_aside_stale_best(tmp_path, 1)  # epoch 2 is being trained again: set aside, not deleted
    assert not path.exists() and torch.load(path.with_name("best.pt.stale"), weights_only=True)["epoch"] == 2
    set_aside_stale_best(tmp_path, None)  # nothing to set aside: no error


@pytest.mark.parametrize("recorded", [None, {}], ids=["no_resume_key", "empty_resume_key"])
def test_a_checkpoint_that_records_no_configuration_is_not_resumed(make_resplit, tmp_path: Path,
                                                                   recorded: dict | None) -> None:
    """A last.pt that does not say which configuration it was trained with (an older fmnist's, or one made by hand)
    cannot be matched with this run: refused like another configuration's checkpoint, and left in place."""
    last = checkpoint_path(tmp_path / "r", LAST)
    last.parent.mkdir(parents=True)
    state = {key: {} for key in RESUME_KEYS} | {"epoch": 1}
    if recorded is not None:
        state["resume_key"] = recorded
    save_checkpoint(last, state)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=2")
    with pytest.raises(ConfigError, match=r"last.pt belongs to a different configuration \(none recorded\)"):
        train(cfg, tmp_path / "r")
    assert torch.load(last, weights_only=True) == state


def test_a_resumed_run_keeps_the_best_epoch_it_had_before_the_interruption(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation accuracies scripted (0.9 in epoch 1, lower after): interrupted in epoch 2 and resumed, the run still
    knows that epoch 1 was its best, so its summary and the weights it tests are epoch 1's, not those of the first
    epoch trained after the resume."""
    from fmnist.train import run as run_mod
    from fmnist.train.loop import EvalResult

    real_evaluate = run_mod.evaluate
    val_accs = iter([0.9, 0.8, 0.5, 0.4])  # epoch 1, epoch 2 (lost to the interruption), then epochs 2 and 3

    def evaluate(model, split, *args, **kwargs):
        if split.name != "test":
            return EvalResult(0.1, next(val_accs), torch.zeros(len(split), 10))
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=3")
    interrupted_at_epoch(cfg, tmp_path / "r", monkeypatch)
    summary = train(cfg, tmp_path / "r")
    assert summary["resumed_from_epoch"] == 1
    assert [float(r["val_acc"]) for r in read_metrics(tmp_path / "r")] == [0.9, 0.5, 0.4]
    assert (summary["best_epoch"], summary["best_val_acc"], summary["tested_checkpoint"]) == (1, 0.9, "best (epoch 1)")
    assert torch.load(checkpoint_path(tmp_path / "r", BEST), weights_only=True)["epoch"] == 1


@pytest.mark.parametrize(("cause", "named"), [("SIGTERM", "SIGTERM"), (None, "Ctrl-C")])
def test_an_interrupted_run_names_what_stopped_it(cause, named, make_resplit, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill` (SIGTERM: a scheduler's preemption, a closed terminal's SIGHUP) was recorded as "interrupted (Ctrl-C)"."""
    from fmnist.train import run as run_mod

    def stop(run_dir, rows):
        raise KeyboardInterrupt(*([cause] if cause else []))

    monkeypatch.setattr(run_mod, "write_metrics", stop)
    with pytest.raises(KeyboardInterrupt):
        train(compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=1"), tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["status"], summary["error"]) == (
        "interrupted", f"interrupted ({named}); launch the same command again to resume from the last checkpoint")


def test_summary_says_where_the_wall_time_went(make_resplit, tmp_path: Path) -> None:
    """setup_s, epochs_s and finish_s cover the train() call (all but its lock and last summary write); epochs_s holds
    the epochs' own time and their checkpoints; a second run of the process counts its startup_s from the first's
    return, not from the process start."""
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=1")
    tic = time.perf_counter()
    first = train(cfg, tmp_path / "a")
    wall, returned = time.perf_counter() - tic, time.perf_counter()
    phases = [first[k] for k in ("setup_s", "epochs_s", "finish_s")]
    assert min(phases) > 0 and 0 <= wall - sum(phases) < 0.5
    assert first["train_time_s"] <= first["epochs_s"] + 0.001
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["epochs_s"] == first["epochs_s"]
    time.sleep(0.2)
    gap = time.perf_counter() - returned
    second = train(cfg, tmp_path / "b")
    assert gap - 0.001 <= second["startup_s"] < gap + 0.1


@pytest.mark.slow
def test_early_stop_after_patience_epochs_without_improvement(real_resplit_dir: Path, tmp_path: Path) -> None:
    # lr 0 and no normalisation: the weights never change, so validation accuracy never improves after epoch 1
    cfg = compose_cfg(real_resplit_dir, "trainer.epochs=6", "trainer.early_stop_patience=2", "optimizer.lr=0.0",
                      "norm=none", "data.subset=256")
    summary = train(cfg, tmp_path / "r")
    assert [int(r["epoch"]) for r in read_metrics(tmp_path / "r")] == [1, 2, 3]
    assert summary["status"] == "completed" and summary["best_epoch"] == 1 and summary["epochs_completed"] == 3
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3


@pytest.mark.slow
def test_compiled_training_step_matches_eager(real_resplit_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.compile=default (inductor, ~30 s to compile on 2 CPU cores) trains the same model: the
    checkpoint keeps plain parameter names and the accuracy matches eager execution."""
    tiny = ("trainer.epochs=1", "data.subset=256", "model.width=4", "data.val_fraction=0.02")
    eager = train(compose_cfg(real_resplit_dir, *tiny), tmp_path / "eager")
    real_compile, modes = torch.compile, []

    def spy(model, mode=None, **kwargs):
        modes.append(mode)
        return real_compile(model, mode=mode, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    compiled = train(compose_cfg(real_resplit_dir, *tiny, "trainer.compile=default"), tmp_path / "compiled")
    assert modes == [None] and compiled["status"] == "completed"
    state = torch.load(tmp_path / "compiled" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not any(k.startswith("_orig_mod") for k in state)
    assert compiled["best_val_acc"] == pytest.approx(eager["best_val_acc"], abs=0.02)
    assert compiled["test_acc"] == pytest.approx(eager["test_acc"], abs=0.02)


@pytest.mark.parametrize("mark", [False, True])
def test_cudagraph_steps_are_marked_once_per_iteration_when_asked(monkeypatch: pytest.MonkeyPatch, mark: bool) -> None:
    """torch.compile's CUDA-graph modes need each iteration's start marked; eager runs never pay the import."""
    import contextlib

    from fmnist.train.loop import train_one_epoch

    calls = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: calls.append(1))
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)), torch.randint(0, 3, (8,))) for _ in range(5)]
    stats = train_one_epoch(model, batches, optimizer, scheduler, contextlib.nullcontext, mark_cudagraph_steps=mark)
    assert stats.n == 40 and len(calls) == (5 if mark else 0)


def test_training_accuracy_of_mixed_images_is_the_weight_of_the_predicted_class() -> None:
    """Under mixup / cutmix an image's label is a mix: a prediction earns the weight its class has in it (a net that
    always names the dominant class of a 0.7/0.3 mix scores 0.7, not 1 or 0 by the base image's label alone);
    hard labels count as before."""
    import contextlib

    from fmnist.train.loop import train_one_epoch

    class Fixed(torch.nn.Module):  # predicts class 0 for every image, and trains (lr 0) nothing
        def __init__(self) -> None:
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 3)

    def accuracy(targets: torch.Tensor, labels: torch.Tensor) -> float:
        model = Fixed()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        return train_one_epoch(model, [(torch.zeros(4, 1), targets, labels)], optimizer, scheduler,
                               contextlib.nullcontext).acc

    labels = torch.tensor([0, 0, 1, 2])  # each image's own class
    mixed = torch.tensor([[0.7, 0.3, 0.0], [0.3, 0.0, 0.7], [0.3, 0.7, 0.0], [0.0, 0.0, 1.0]])
    assert accuracy(mixed, labels) == pytest.approx((0.7 + 0.3 + 0.3 + 0.0) / 4)
    assert accuracy(labels, labels) == 0.5  # hard labels: two of four are class 0


@pytest.mark.parametrize("scaled", [False, True])
def test_grad_clip_bounds_the_step_also_under_a_grad_scaler(scaled: bool) -> None:
    """trainer.grad_clip: plain SGD (lr 1) moves the weights by exactly the clipped gradient norm; with a GradScaler
    the gradients are unscaled before clipping (else the step would be 2^16 times too small)."""
    import contextlib

    from fmnist.train.loop import train_one_epoch

    def step_norm(grad_clip: float | None) -> float:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        scaler = torch.amp.GradScaler("cpu") if scaled else None
        batch = [(torch.randn(8, 4) * 100, torch.arange(8) % 3, torch.arange(8) % 3)]
        train_one_epoch(model, batch, optimizer, scheduler, contextlib.nullcontext, scaler=scaler, grad_clip=grad_clip)
        return float((torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm())

    assert step_norm(None) > 1.0  # the unclipped gradient is large
    assert step_norm(0.01) == pytest.approx(0.01, rel=1e-4)


def test_flip_tta_averages_the_logits_of_each_image_and_its_mirror() -> None:
    import contextlib

    import numpy as np

    from fmnist.data.loader import DeviceSplit, eval_batches
    from fmnist.train.loop import evaluate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))  # not mirror-symmetric
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    split = DeviceSplit("test", np.arange(6), images, torch.arange(6) % 10)
    [(x, _)] = list(eval_batches(split, 64))
    with torch.no_grad():
        plain, mirrored = model(x), model(torch.flip(x, dims=[3]))
    got = evaluate(model, split, 4, contextlib.nullcontext, tta_flip=True)  # two batches
    torch.testing.assert_close(got.probs, ((plain + mirrored) / 2).softmax(1))
    assert got.acc == int(((plain + mirrored).argmax(1) == split.labels).sum()) / 6
    torch.testing.assert_close(evaluate(model, split, 4, contextlib.nullcontext).probs, plain.softmax(1))


def test_label_smoothing_enters_the_training_loss() -> None:
    """trainer.label_smoothing: the loss is (1 - eps) * CE(true class) + eps * mean over classes of -log p."""
    import contextlib

    from fmnist.train.loop import train_one_epoch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    with torch.no_grad():
        logp = model(x).log_softmax(1)
    nll, uniform = -logp[torch.arange(8), y].mean(), -logp.mean()
    for eps in (0.0, 0.3):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        stats = train_one_epoch(model, [(x, y, y)], optimizer, scheduler, contextlib.nullcontext, label_smoothing=eps)
        assert stats.loss == pytest.approx(float((1 - eps) * nll + eps * uniform), rel=1e-5)


def test_every_iteration_steps_on_its_own_gradient_then_the_scheduler_and_after_step() -> None:
    """Plain SGD: each step moves the weights by lr x the gradient of that batch's loss alone (gradients zeroed
    between steps), at the learning rate the scheduler set for that step; the scheduler and `after_step` (the EMA
    update) run once per iteration, after the optimizer step."""
    import contextlib

    import torch.nn.functional as F

    from fmnist.train.loop import train_one_epoch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    batches = [(torch.randn(8, 4), torch.arange(8) % 3, torch.arange(8) % 3) for _ in range(3)]
    weights = [p.detach().clone() for p in model.parameters()]
    expected = []
    for step, (x, targets, _) in enumerate(batches):
        w, b = weights
        gw, gb = torch.autograd.grad(F.cross_entropy(x @ w.requires_grad_().T + b.requires_grad_(), targets), (w, b))
        lr = 0.5 * 0.1**step
        weights = [(w - lr * gw).detach(), (b - lr * gb).detach()]
        expected.append(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.1**step)
    seen = []
    train_one_epoch(model, batches, optimizer, scheduler, contextlib.nullcontext,
                    after_step=lambda: seen.append([p.detach().clone() for p in model.parameters()]))
    assert len(seen) == 3 and scheduler.last_epoch == 3
    for got, want in zip(seen, expected):
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


def test_training_runs_in_train_mode_also_after_an_evaluation() -> None:
    """evaluate() leaves the model in eval mode; the next epoch must train with batch statistics and update the
    running ones (momentum 0.1 from 0: running mean = 0.1 x the batch mean)."""
    import contextlib

    from fmnist.data.loader import DeviceSplit
    from fmnist.train.loop import evaluate, train_one_epoch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10), torch.nn.BatchNorm1d(10))
    split = DeviceSplit("val", np.arange(4), torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8),
                        torch.arange(4))
    evaluate(model, split, 4, contextlib.nullcontext)
    assert not model.training
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        batch_mean = model[1](model[0](x)).mean(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    train_one_epoch(model, [(x, torch.arange(8), torch.arange(8))], optimizer, scheduler, contextlib.nullcontext)
    assert model.training
    torch.testing.assert_close(model[2].running_mean, 0.1 * batch_mean)


def test_evaluation_loss_is_the_mean_over_images_also_with_a_short_last_batch() -> None:
    import contextlib

    import torch.nn.functional as F

    from fmnist.data.loader import DeviceSplit, eval_batches
    from fmnist.train.loop import evaluate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    split = DeviceSplit("val", np.arange(6), torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8),
                        torch.tensor([0, 1, 2, 3, 4, 5]))
    [(x, y)] = list(eval_batches(split, 64))
    with torch.no_grad():
        logits = model(x)
    got = evaluate(model, split, 4, contextlib.nullcontext)  # batches of 4 and 2
    assert got.loss == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert got.acc == int((logits.argmax(1) == y).sum()) / 6


def test_an_epoch_whose_loss_is_not_finite_says_so() -> None:
    """The trainer stops a diverged run on EpochStats.finite (TrainingDiverged)."""
    import contextlib

    from fmnist.train.loop import train_one_epoch

    def epoch(scale: float) -> bool:
        model = torch.nn.Linear(4, 3)
        with torch.no_grad():
            model.weight.mul_(scale)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        batches = [(torch.ones(2, 4), torch.tensor([0, 1]), torch.tensor([0, 1]))] * 2
        return train_one_epoch(model, batches, optimizer, scheduler, contextlib.nullcontext).finite

    assert epoch(1.0) and not epoch(float("inf"))


def test_evaluation_runs_in_eval_mode_and_leaves_the_norm_statistics_alone() -> None:
    """evaluate() in train mode would normalise with each batch's own statistics (accuracy depending on the batch
    size) and overwrite BatchNorm's running statistics with the validation/test images'."""
    import contextlib

    from fmnist.data.loader import DeviceSplit
    from fmnist.train.loop import evaluate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(10))
    model(torch.randn(2, 1, 28, 28))  # materialise the lazy layer
    with torch.no_grad():
        model[1].running_mean.fill_(0.3)
        model[1].running_var.fill_(2.0)
    model.train()
    split = DeviceSplit("val", np.arange(6), torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8),
                        torch.arange(6) % 10)
    before = {k: v.clone() for k, v in model[1].state_dict().items()}
    one_by_one = evaluate(model, split, 1, contextlib.nullcontext).probs
    assert all(torch.equal(before[k], v) for k, v in model[1].state_dict().items())
    torch.testing.assert_close(evaluate(model, split, 6, contextlib.nullcontext).probs, one_by_one)


def test_a_run_trains_with_its_settings_validates_on_val_and_tests_the_best_weights_once(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer's wiring, spied on (a width-4 ResNet9, 3 epochs of 2 steps on a synthetic folder): every epoch
    trains with trainer.label_smoothing and validates on the validation split, never on the test set; the test set
    is evaluated exactly once, after training, with trainer.tta_flip and (test_on=best) the best epoch's weights.
    Validation accuracies are scripted (best in epoch 2 of 3) so that the best and the last weights differ."""
    import inspect

    from fmnist.train import run as run_mod
    from fmnist.train.loop import EvalResult

    real_evaluate, real_epoch = run_mod.evaluate, run_mod.train_one_epoch
    calls: list[tuple[str, bool, dict[str, torch.Tensor]]] = []
    smoothing: list[float] = []
    val_accs = iter([0.5, 0.9, 0.4])

    def evaluate(*args, **kwargs):
        bound = inspect.signature(real_evaluate).bind(*args, **kwargs)
        bound.apply_defaults()
        model, split = bound.arguments["model"], bound.arguments["split"]
        calls.append((split.name, bound.arguments["tta_flip"],
                      {k: v.detach().clone() for k, v in model.state_dict().items()}))
        if split.name != "test":
            return EvalResult(0.1, next(val_accs), torch.zeros(len(split), 10))
        return real_evaluate(*args, **kwargs)

    def train_one_epoch(*args, **kwargs):
        bound = inspect.signature(real_epoch).bind(*args, **kwargs)
        smoothing.append(bound.arguments["label_smoothing"])
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    monkeypatch.setattr(run_mod, "train_one_epoch", train_one_epoch)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=3", "trainer.label_smoothing=0.2",
                        "trainer.tta_flip=true", "trainer.test_on=best")
    summary = train(cfg, tmp_path / "r")
    assert smoothing == [0.2, 0.2, 0.2]
    assert [(name, tta) for name, tta, _ in calls] == [("val", False)] * 3 + [("test", True)]
    assert summary["best_epoch"] == 2 and summary["tested_checkpoint"] == "best (epoch 2)"
    tested, best_epoch, last_epoch = calls[3][2], calls[1][2], calls[2][2]
    assert any(not torch.equal(best_epoch[k], last_epoch[k]) for k in best_epoch)  # training moved the weights
    assert all(torch.equal(tested[k], best_epoch[k]) for k in tested)


def test_early_stop_keeps_the_first_best_epoch_and_checkpoints_where_it_stops(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.early_stop_patience=1: validation accuracies 0.5, 0.9, 0.9 (scripted) stop the run after epoch 3 of
    4, since a tie is no improvement (epoch 2 stays the best); last.pt is written there although checkpoint_every
    is larger; the summary's totals are over the epochs run (final_val_acc the last one's, train_time_s their sum,
    images_per_s their mean)."""
    from fmnist.train import run as run_mod
    from fmnist.train.loop import EvalResult

    real_evaluate = run_mod.evaluate
    val_accs = iter([0.5, 0.9, 0.9, 0.1])

    def evaluate(model, split, *args, **kwargs):
        if split.name != "test":
            return EvalResult(0.1, next(val_accs), torch.zeros(len(split), 10))
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=4", "trainer.early_stop_patience=1",
                        "trainer.checkpoint_every=10", "trainer.test_on=last")
    summary = train(cfg, tmp_path / "r")
    assert (summary["epochs_completed"], summary["best_epoch"], summary["best_val_acc"]) == (3, 2, 0.9)
    assert summary["final_val_acc"] == 0.9 and summary["tested_checkpoint"] == "last"
    assert torch.load(checkpoint_path(tmp_path / "r", LAST), weights_only=True)["epoch"] == 3
    rows = read_metrics(tmp_path / "r")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert summary["train_time_s"] == pytest.approx(sum(float(r["epoch_time_s"]) for r in rows), rel=1e-3)
    assert summary["images_per_s"] == pytest.approx(sum(float(r["images_per_s"]) for r in rows) / 3, rel=1e-3)


def test_epoch_line_shows_the_validation_metrics_whenever_there_are_some() -> None:
    """A validation accuracy of 0 is still shown; a run without a validation split has none to show."""
    from fmnist.train.logging import format_epoch, progress_enabled

    row = {"epoch": 3, "lr": 0.05, "train_loss": 2.5, "train_acc": 0.125, "val_loss": 2.75, "val_acc": 0.0,
           "epoch_time_s": 1.5, "images_per_s": 1000.4}
    assert format_epoch(row, 10) == ("epoch 3/10 | lr 0.05 | train_loss 2.5000 | train_acc 0.1250 | val_loss 2.7500 | "
                                     "val_acc 0.0000 | 1.50s | 1000 img/s")
    no_val = dict(row, val_loss=None, val_acc=None)
    assert format_epoch(no_val, 10) == ("epoch 3/10 | lr 0.05 | train_loss 2.5000 | train_acc 0.1250 | 1.50s | "
                                        "1000 img/s")
    assert progress_enabled(True) and not progress_enabled(False)


def test_diverged_runs_are_recognised_by_their_error_class() -> None:
    from fmnist.train.run_dir import DIVERGED, is_finished

    assert TrainingDiverged.__name__ == DIVERGED
    assert is_finished({"status": "completed"}) and is_finished({"status": "failed", "error": f"{DIVERGED}: nan"})
    assert not is_finished({"status": "failed", "error": "OutOfMemory: ..."}) and not is_finished(None)
    assert not is_finished({"status": "running"})


def test_a_preset_with_a_grid_run_without_multirun_is_named_in_a_warning() -> None:
    """`python train.py +experiment=stage2_skip` (no -m) trains one run of the defaults, not the preset's grid."""
    from hydra import compose, initialize_config_dir
    from hydra.types import RunMode
    from runs import ROOT

    from fmnist.train.entry import grid_ignored

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        preset = compose("train", overrides=["+experiment=stage2_skip"], return_hydra_config=True).hydra
        plain = compose("train", overrides=["+experiment=study_protocol"], return_hydra_config=True).hydra
    assert grid_ignored(preset) == ("stage2_skip sweeps model.skip, seed (hydra.sweeper.params), but without -m "
                                    "this is one run of its defaults: add -m to run the grid")
    assert grid_ignored(plain) is None
    preset.mode = RunMode.MULTIRUN
    assert grid_ignored(preset) is None


def test_provenance_names_the_commit_whether_tracked_files_changed_and_the_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.train.provenance import git_commit, provenance

    repo = tmp_path / "repo"
    assert git_commit(repo) == {"git_commit": None, "git_dirty": None}  # not a git checkout
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (repo / "notes.txt").write_text("untracked\n")  # e.g. a virtual environment or outputs: not a code change
    assert git_commit(repo) == {"git_commit": head, "git_dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    assert git_commit(repo) == {"git_commit": head, "git_dirty": True}
    subprocess.run([*git, "add", "a.py"], check=True)  # staged but not committed: still not HEAD's code
    assert git_commit(repo) == {"git_commit": head, "git_dirty": True}

    monkeypatch.setattr("sys.argv", ["train.py", "-m", "name=a b"])
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    info = provenance()
    assert info["command"].endswith(" train.py -m 'name=a b'")  # shell-quoted, so it can be pasted back
    assert info["slurm_job_id"] == "4242" and info["git_commit"] and isinstance(info["git_dirty"], bool)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4240")  # a sweep's job: task 2 of array 4240 (its own id is 4242)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert provenance()["slurm_job_id"] == "4240_2"


def test_the_best_weights_held_until_the_next_checkpoint_are_a_copy_not_the_live_weights(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint_every=3, best in epoch 2 of 3 (scripted): best.pt, written with last.pt after epoch 3, holds the
    weights validated in epoch 2, not those trained on in epoch 3 (on a CPU, .cpu() of a tensor is that tensor)."""
    from fmnist.train import run as run_mod
    from fmnist.train.loop import EvalResult

    real_evaluate = run_mod.evaluate
    validated: list[dict[str, torch.Tensor]] = []
    val_accs = iter([0.5, 0.9, 0.4])

    def evaluate(model, split, *args, **kwargs):
        if split.name != "test":
            validated.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            return EvalResult(0.1, next(val_accs), torch.zeros(len(split), 10))
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=3", "trainer.checkpoint_every=3",
                        "trainer.test_on=best")
    summary = train(cfg, tmp_path / "r")
    assert summary["tested_checkpoint"] == "best (epoch 2)"
    best = torch.load(checkpoint_path(tmp_path / "r", BEST), weights_only=True)
    assert best["epoch"] == 2
    assert any(not torch.equal(validated[1][k], validated[2][k]) for k in validated[1])  # epoch 3 moved them
    assert all(torch.equal(best["model"][k], validated[1][k]) for k in validated[1])


def test_a_run_stopped_early_and_interrupted_before_its_test_resumes_to_its_test_without_training_on(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """early_stop_patience=1, val_acc 0.5, 0.9, 0.9 (scripted): the run stops after epoch 3 of 4 and checkpoints
    there. Interrupted while testing, then launched again, it tests epoch 3's state, as the uninterrupted run
    would have, instead of training an epoch 4 the early stop had ruled out."""
    from fmnist.train import run as run_mod
    from fmnist.train.loop import EvalResult

    real_evaluate = run_mod.evaluate
    val_accs = iter([0.5, 0.9, 0.9, 0.95])
    interrupt = [True]

    def evaluate(model, split, *args, **kwargs):
        if split.name != "test":
            return EvalResult(0.1, next(val_accs), torch.zeros(len(split), 10))
        if interrupt.pop() if interrupt else False:
            raise KeyboardInterrupt("simulated preemption during the test")
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    cfg = compose_train(make_resplit().path, *SYNTHETIC, "trainer.epochs=4", "trainer.early_stop_patience=1")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "r")
    summary = train(cfg, tmp_path / "r")
    assert summary["resumed_from_epoch"] == 3
    assert (summary["epochs_completed"], summary["best_epoch"], summary["best_val_acc"]) == (3, 2, 0.9)
    assert [int(r["epoch"]) for r in read_metrics(tmp_path / "r")] == [1, 2, 3]


def test_a_forced_rerun_without_dead_unit_statistics_leaves_none_of_the_run_it_replaced(
        make_resplit, tmp_path: Path) -> None:
    """trainer.force=true over a completed run, now without a validation split: the dead_units.json of the run it
    replaced (measured on a validation split this run does not have) is not left for the analysis to read as its."""
    from fmnist.analysis.dead_neurons import DEAD_UNITS_FILE

    data = make_resplit().path
    train(compose_train(data, *SYNTHETIC, "trainer.epochs=1"), tmp_path / "r")
    assert (tmp_path / "r" / DEAD_UNITS_FILE).is_file()
    summary = train(compose_train(data, *SYNTHETIC, "trainer.epochs=1", "data.val_fraction=0", "trainer.force=true"),
                    tmp_path / "r")
    assert summary["status"] == "completed" and summary["n_val"] == 0
    assert not (tmp_path / "r" / DEAD_UNITS_FILE).exists()


def test_an_atomic_write_that_fails_before_writing_closes_its_temp_file(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure setting the temp file's permissions (before any byte is written) leaves no open descriptor."""
    def refused(path, mode):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(run_dir_mod.os, "chmod", refused)
    fds = set(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    if fds is None:
        pytest.skip("needs /proc/self/fd")
    with pytest.raises(FmnistError, match="cannot write .*summary.json: Operation not permitted"):
        run_dir_mod.write_summary(tmp_path, {"status": "completed"})
    assert set(os.listdir("/proc/self/fd")) <= fds and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_reader_that_stops_early_leaves_no_traceback(real_resplit_dir: Path, tmp_path: Path) -> None:
    """`python train.py ... | head -1`: the reader of stdout is gone before the first log line. The run completes
    and stderr stays empty; before, every later log line printed a 'Logging error' traceback (BrokenPipeError)."""
    proc = subprocess.Popen(train_cmd("trainer.epochs=1", "data.subset=256", "model.width=4", "logger=none",
                                      f"data.dir={real_resplit_dir}", f"hydra.run.dir={tmp_path / 'r'}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Logging error" not in err, err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "completed"


def test_closed_standard_streams_are_not_taken_by_the_run_files(tmp_path: Path) -> None:
    """Started with stdout and stderr closed (`>&- 2>&-`), the CLIs' first files took fds 1 and 2 (a run's train.log
    and .lock), so what C code or a child wrote to 'stderr' went into them; now fds 1 and 2 are /dev/null."""
    script = ("from fmnist.errors import guard_standard_streams; guard_standard_streams(); import os; "
              "fds = [os.open(name, os.O_CREAT | os.O_WRONLY) for name in ('log', 'lock')]; "
              "os.write(2, b'c-level warning'); open('fd.txt', 'w').write(str(min(fds)))")
    proc = subprocess.run(["bash", "-c", f'"$0" -c "{script}" >&- 2>&-', sys.executable], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0
    assert int((tmp_path / "fd.txt").read_text()) > 2 and (tmp_path / "lock").read_text() == ""


@pytest.mark.parametrize("script", ["train.py", "analyze.py"])
def test_ctrl_c_while_the_cli_starts_is_one_line(script: str, tmp_path: Path) -> None:
    """Ctrl-C while torch and Hydra are imported (the first seconds of every command) printed a KeyboardInterrupt
    traceback from deep inside an import; now one line, and the exit status of a Ctrl-C. `-X importtime` writes a
    line as each import ends: the first hydra one comes after the hook is set and well before torch is imported."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-X", "importtime", str(root / script), f"hydra.run.dir={tmp_path}"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.rstrip().endswith("hydra"):
            proc.send_signal(signal.SIGINT)
            break
    err = [line for line in proc.stderr if not line.startswith("import time:")]
    assert proc.wait(timeout=60) == -signal.SIGINT, "".join(lines[-3:] + err)
    assert err == ["interrupted (Ctrl-C) while starting or ending; run the same command again\n"], err
    assert not any(p.name == "summary.json" for p in tmp_path.rglob("*"))


def test_a_console_that_cannot_encode_a_character_gets_an_escape(tmp_path: Path) -> None:
    """An ASCII or Latin-1 console (LC_ALL=C with PYTHONUTF8=0, an ISO-8859-1 locale): a log line with a '—' (the
    skip of a completed run) printed a 'Logging error' traceback instead of the line; now it shows as \\u2014."""
    script = ("from fmnist.errors import guard_standard_streams; guard_standard_streams(); import logging, sys; "
              "logging.basicConfig(stream=sys.stdout); logging.warning('skipping \\u2014 set trainer.force=true')")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONIOENCODING": "latin-1",
                               "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert proc.stdout == b"WARNING:root:skipping \\u2014 set trainer.force=true\n"


@pytest.mark.slow
def test_train_log_is_utf8_in_an_ascii_locale(real_resplit_dir: Path, tmp_path: Path) -> None:
    """LC_ALL=C with PYTHONUTF8=0 (an ASCII locale; an ISO-8859-1 one alike): the line that skips a completed run
    (it has a '—') was left out of train.log with a 'Logging error' traceback; train.log is written in UTF-8 now."""
    args = ["trainer.epochs=1", "data.subset=256", "model.width=4", "logger=none", f"data.dir={real_resplit_dir}",
            f"hydra.run.dir={tmp_path / 'r'}"]
    assert run_cli(*args).returncode == 0
    proc = subprocess.run(train_cmd(*args), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"})
    assert proc.returncode == 0 and "Logging error" not in proc.stderr, proc.stderr
    assert "skipping \u2014 set trainer.force=true" in (tmp_path / "r" / "train.log").read_text(encoding="utf-8")
