"""The benchmark's CPU smoke run: it measures both pipelines and a time-to-accuracy run, and writes JSON.
No time is asserted (timings are reported, never tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.bench.__main__ import main
from fmnist.bench.markdown import main as markdown_main


@pytest.mark.slow
def test_bench_tiny_smoke(real_resplit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    # --concurrency without values: none here (test_device_session's bench plan measures it at CPU size)
    assert main(["--tiny", "--data-dir", str(real_resplit_dir), "--concurrency", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["torch_version"] and results["device"] == "cpu"
    assert results["cudnn"] == {"deterministic": False, "benchmark": True}  # the default --cudnn benchmark
    [row] = results["throughput"]
    assert row["model"] == "resnet9" and row["batch_size"] == 64 and row["steps"] == 3
    for key in ("ours_s_per_epoch", "naive_s_per_epoch", "ours_images_per_s", "naive_images_per_s"):
        assert row[key] > 0, key
    assert row["speedup"] == pytest.approx(row["naive_s_per_epoch"] / row["ours_s_per_epoch"])
    assert row["ours_mode"] == "eager" and list(row["modes"]) == ["eager"]  # graphs need CUDA
    assert row["modes"]["eager"]["s_per_epoch"] == row["ours_s_per_epoch"] and row["modes"]["eager"]["setup_s"] > 0
    [tta] = results["time_to_accuracy"]
    assert tta["status"] == "completed" and 0.0 <= tta["test_acc"] <= 1.0 and tta["train_time_s"] > 0
    assert tta["overrides"][0] == f"data.dir={real_resplit_dir}"  # the same data as the throughput rows
    assert results["concurrency"] == []
    assert "resnet9" in capsys.readouterr().out
    # the README's tables from the same file
    assert markdown_main([str(out)]) == 0
    tables = capsys.readouterr().out
    times = f"{row['naive_s_per_epoch']:.2f} | {row['ours_s_per_epoch']:.2f} | {row['speedup']:.1f}x faster"
    assert f"| resnet9 | 64 | {times}" in tables
    acc_time = f"{100 * tta['test_acc']:.2f} % | {tta['train_time_s']:.1f}"
    assert f"| `quick` | resnet9, width 8 | 1 | {acc_time} | - |" in tables
    assert f"{results['device_name']}, torch {results['torch_version']}" in tables
    assert "; cuDNN benchmark mode); the targets are for one H100, so this cpu run is not judged:" in tables
    assert "timed over 3 steps after 1 warm-up steps" in tables


def test_markdown_sets_each_row_against_its_target(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    result = {"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3", "torch_version": "2.11.0",
              "date": "2026-12-01T10:00:00+00:00", "precision": "bf16", "settings": {},
              "throughput": [{"model": "resnet18", "batch_size": 512, "naive_s_per_epoch": 8.0, "speedup": 12.0,
                              "ours_mode": "graphs", "ours_s_per_epoch": 0.6667,
                              "modes": {"eager": {"s_per_epoch": 1.4, "setup_s": 0.1},
                                        "graphs": {"s_per_epoch": 0.6667, "setup_s": 2.5}}},
                             {"model": "resnet9", "batch_size": 512, "naive_s_per_epoch": None, "speedup": None,
                              "ours_mode": "eager", "ours_s_per_epoch": 0.5,
                              "modes": {"eager": {"s_per_epoch": 0.5, "setup_s": 0.1}}}],
              "time_to_accuracy": [{"preset": "fast", "epochs": 24, "test_acc": 0.9412, "train_time_s": 11.3}],
              "concurrency": []}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(result))
    assert markdown_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H100 80GB HBM3, torch 2.11.0, 2026-12-01, precision bf16" in out
    assert "| resnet18 | 512 | 8.00 | 1.40 | 0.67 | 12.0x faster | ≤ 0.7 (met) | 2.5 |" in out
    assert "| resnet9 | 512 | - | 0.50 | - | - | ≤ 0.4 (missed) | 0.1 |" in out
    assert "| `fast` | - | 24 | 94.12 % | 11.3 | ≥ 94.0 % in ≤ 10 s | missed |" in out  # accurate, 1.3 s too slow
    assert "Jobs per GPU" not in out
    result |= {"throughput": [], "time_to_accuracy": [], "settings": {"concurrency_overrides": ["trainer.epochs=1"]},
               "concurrency": [{"jobs_per_gpu": 1, "jobs": 8, "runs_per_min": 2.0, "speedup_vs_first": 1.0,
                                "completed": 8},
                               {"jobs_per_gpu": 4, "jobs": 8, "runs_per_min": 6.5, "speedup_vs_first": 3.25,
                                "completed": 7, "median_phases_s": {"startup_s": 3.14, "setup_s": 2.0, "epochs_s": 9.9,
                                                                    "train_time_s": 9.5, "finish_s": None}}]}
    path.write_text(json.dumps(result))
    assert markdown_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "Jobs per GPU (gpu_pool, 8 runs of `trainer.epochs=1`, process start and data load included" in out
    assert "| 1 | 2.00 | 1.00x | 8/8 | - / - / - / - |\n| 4 | 6.50 | 3.25x | 7/8 | 3.1 / 2.0 / 9.5 / - |" in out
    assert "Time to accuracy" not in out
    assert "MPS" not in out
    path.write_text(json.dumps(result | {"mps": True}))  # measured with CUDA MPS on: said in the caption
    assert markdown_main([str(path)]) == 0
    assert "precision bf16; under CUDA MPS):" in capsys.readouterr().out
    assert markdown_main([str(tmp_path / "missing.json")]) == 1
    assert "cannot read benchmark results" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ({}, "holds no benchmark results"), ([], "holds no benchmark results"),
    ({"throughput": [{"model": "x"}]}, "bench.json: a benchmark result lacks a field or has a wrong value "
                                       "(KeyError: 'batch_size')"),
    ({"throughput": [1]}, "bench.json: a benchmark result lacks a field or has a wrong value (AttributeError: "),
    ({"concurrency": [{"jobs_per_gpu": 1, "jobs": 8, "runs_per_min": 1.0}], "settings": 5},
     "bench.json: a benchmark result lacks a field or has a wrong value (AttributeError: "),
    ({"throughput": [{"model": "resnet18", "batch_size": 512, "naive_s_per_epoch": "slow"}]},
     "bench.json: a benchmark result lacks a field or has a wrong value (ValueError: "),
])
def test_markdown_refuses_what_is_not_a_result(tmp_path: Path, capsys: pytest.CaptureFixture, content: object,
                                               message: str) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(content))
    assert markdown_main([str(path)]) == 1
    assert message in capsys.readouterr().err


def test_a_target_met_at_its_bound_and_failures_are_shown_as_such(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """A time equal to its target meets it, as does an accuracy equal to its aim; an accurate-enough run that is too
    slow misses, as does a fast run that is not accurate enough; a failed run says so, a preset without an aim is
    not judged; a failed mode reads "failed"; a whole-epoch timing with deterministic kernels says so."""
    from fmnist.bench.results import tta_rows

    result = {"device": "cuda", "torch_version": "2.11.0", "date": "2026-12-01", "precision": "bf16",
              "cudnn": {"deterministic": True},
              "settings": {"steps": 0, "concurrency_overrides": ["trainer.epochs=1", "trainer.batch_size=256"]},
              "throughput": [{"model": "resnet18", "batch_size": 512, "naive_s_per_epoch": 7.0, "speedup": 10.0,
                              "ours_mode": "eager", "ours_s_per_epoch": 0.7,
                              "modes": {"eager": {"s_per_epoch": 0.7, "setup_s": 0.0}, "graphs": {"error": "OOM"}}}],
              "time_to_accuracy": [
                  {"preset": "fast", "epochs": 24, "test_acc": 0.94, "train_time_s": 10.0, "model": "resnet9",
                   "batch_size": 512, "n_train": 60000},
                  {"preset": "fast", "epochs": 8, "test_acc": 0.93, "train_time_s": 5.0, "model": "resnet9",
                   "width": 32},
                  {"preset": "fast", "epochs": 0, "status": "failed", "test_acc": None, "train_time_s": None},
                  {"preset": "quick", "epochs": 1, "test_acc": 0.5, "train_time_s": 2.0}],
              "concurrency": [{"jobs_per_gpu": 2, "jobs": 4, "runs_per_min": 3.0, "speedup_vs_first": 1.0,
                               "completed": 4, "median_phases_s": {"startup_s": 1.0, "setup_s": 0.0,
                                                                   "train_time_s": 5.0, "finish_s": 0.5}}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(result))
    assert markdown_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert ("(one whole epoch timed; cuda, torch 2.11.0, 2026-12-01, precision bf16; deterministic cuDNN kernels):"
            in out)
    assert "| model | batch | naive s/epoch | eager s/epoch | graphs s/epoch |" in out
    assert "\n|---|---|---|---|---|---|---|---|\n" in out  # one separator cell per column (8)
    assert "| resnet18 | 512 | 7.00 | 0.70 | failed | 10.0x faster | ≤ 0.7 (met) | 0.0 |" in out
    assert "| `fast` | resnet9 | 24 | 94.00 % | 10.0 | ≥ 94.0 % in ≤ 10 s | met |" in out  # no width recorded
    assert "| `fast` | resnet9, width 32 | 8 | 93.00 % | 5.0 | ≥ 94.0 % in ≤ 10 s | missed |" in out
    assert "| `fast` | - | 0 | - | - | ≥ 94.0 % in ≤ 10 s | failed |" in out
    assert "| `quick` | - | 1 | 50.00 % | 2.0 | - |  |" in out
    assert "Jobs per GPU (gpu_pool, 4 runs of `trainer.epochs=1 trainer.batch_size=256`, process start" in out
    assert "| 2 | 3.00 | 1.00x | 4/4 | 1.0 / 0.0 / 5.0 / 0.5 |" in out
    assert out.index("Seconds per training epoch") < out.index("Time to accuracy") < out.index("Jobs per GPU")
    row = tta_rows(result)[0]
    assert (row["model"], row["batch_size"], row["n_train"], row["aim"]) == ("resnet9", 512, 60000, (0.94, 10.0))
    result["settings"] = {"steps": 5}  # no warm-up recorded: none was run
    path.write_text(json.dumps(result))
    assert markdown_main([str(path)]) == 0
    assert "(timed over 5 steps after 0 warm-up steps;" in capsys.readouterr().out

def test_tiny_runs_the_quick_preset_unless_told_otherwise() -> None:
    from fmnist.bench.__main__ import parse_args

    assert parse_args(["--tiny"]).tta == ["quick"] and parse_args(["--tiny", "--tta"]).tta == []  # as --concurrency
    assert parse_args([]).tta == [] and parse_args(["--tiny", "--tta", "fast"]).tta == ["fast"]


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "resnet19"], "argument --models: invalid choice: 'resnet19'"),
    (["--tta", "fastest"], "argument --tta: invalid choice: 'fastest'"),
    (["--batch-sizes", "0"], "argument --batch-sizes: must be >= 2, got 0"),
    (["--steps", "-1"], "argument --steps: must be >= 0, got -1"),
    (["--width", "abc"], "argument --width: 'abc' is not a whole number"),
    (["--concurrency", "0"], "argument --concurrency: must be >= 1, got 0"),
])
def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_an_unwritable_out_is_refused_before_measuring(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "no-such-folder" / "bench.json"
    assert main(["--models", "--data-dir", str(tmp_path / "never-read"), "--out", str(out)]) == 1
    assert f"the folder {out.parent} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "never-read").exists() and not out.parent.exists()


def test_an_out_that_cannot_be_created_and_bad_tta_overrides_are_refused_before_measuring(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--out is opened before anything is measured (a name too long for the file system: one line, no
    traceback); --tta-overrides are composed first (Hydra would raise after the throughput rows)."""
    long = tmp_path / ("a" * 300 + ".json")
    assert main(["--models", "--data-dir", str(tmp_path / "never-read"), "--out", str(long)]) == 1
    assert f"error: --out {long} cannot be written: File name too long" in capsys.readouterr().err
    for overrides, message in ((["nosuch.key=1"], "error: --tta quick with nosuch.key=1: Could not override "
                                                  "'nosuch.key'."),
                               (["garbage"], "error: --tta quick with garbage: Error parsing override 'garbage'"),
                               (["trainer.epochs=0"], "error: trainer.epochs=0 is invalid: must be an integer >= 1")):
        assert main(["--models", "--tta", "quick", "--data-dir", str(tmp_path / "never-read"),
                     "--tta-overrides", *overrides]) == 1
        assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "never-read").exists()
    existing = tmp_path / "kept.json"
    existing.write_text("earlier results")
    from fmnist.bench.__main__ import check_out

    check_out(str(existing))  # writable: opened for appending, left as it was
    assert existing.read_text() == "earlier results"


def test_a_failed_concurrency_sweep_says_why(tmp_path: Path) -> None:
    from fmnist.bench.concurrency import sweep_throughput

    res = sweep_throughput(1, 1, [f"data.dir={tmp_path / 'never-read'}", "trainer.epochs=abc"])
    assert res["completed"] == 0 and res["runs_per_min"] == 0.0 and res["sweep_dir"] is None
    assert "trainer.epochs='abc' is invalid" in res["error"]


def test_a_concurrency_sweep_counts_its_completed_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """K jobs per GPU (and K CPU jobs) over one seed per job; the phases are medians over the completed runs only,
    and a job that did not complete keeps the end of the sweep's output even when the sweep exits 0."""
    import subprocess
    from types import SimpleNamespace

    from fmnist.bench import concurrency

    calls = []

    def sweeps(cmd, **kwargs):
        calls.append(cmd)
        sweep = Path(cmd[-1].removeprefix("hydra.sweep.dir="))
        for i, (status, startup) in enumerate([("completed", 2.0), ("completed", 4.0), ("failed", 100.0)]):
            (sweep / str(i)).mkdir(parents=True)
            (sweep / str(i) / "summary.json").write_text(json.dumps({"status": status, "startup_s": startup}))
        return subprocess.CompletedProcess(cmd, 0, stdout="a\nb\nc\nd\n", stderr="e\nf\ng")

    monkeypatch.setattr(concurrency.subprocess, "run", sweeps)
    monkeypatch.setattr(concurrency, "time", SimpleNamespace(perf_counter=iter([10.0, 70.0]).__next__))
    res = concurrency.sweep_throughput(3, 3, ["trainer.epochs=1"], root=tmp_path)
    assert (res["wall_s"], res["runs_per_min"]) == (60.0, 2.0)  # 2 runs completed in a minute
    assert {"hydra.launcher.jobs_per_gpu=3", "hydra.launcher.cpu_jobs=3", "seed=0,1,2", "trainer.epochs=1",
            f"hydra.sweep.dir={tmp_path / 'k3'}"} <= set(calls[0])
    assert (res["completed"], res["jobs"], res["sweep_dir"]) == (2, 3, str(tmp_path / "k3"))
    assert res["median_phases_s"]["startup_s"] == 3.0 and res["error"] == "c\nd\ne\nf\ng"

def test_concurrency_reports_the_median_run_phases() -> None:
    """Medians over the runs that recorded a phase (runs of older versions lack them); None where none did."""
    from fmnist.bench.concurrency import median_phases

    runs = [{"startup_s": 3.0, "setup_s": 1.0, "train_time_s": 2.0, "epochs_s": 2.5, "finish_s": 0.4},
            {"startup_s": 5.0, "setup_s": 2.0, "train_time_s": 4.0, "epochs_s": 4.5, "finish_s": None},
            {"startup_s": 4.0, "setup_s": 9.0, "train_time_s": 3.0, "epochs_s": 3.5},
            {"train_time_s": 1.0}]
    assert median_phases(runs) == {"startup_s": 4.0, "setup_s": 2.0, "train_time_s": 2.5, "epochs_s": 3.5,
                                   "finish_s": 0.4}
    assert median_phases([{"train_time_s": 1.0}])["setup_s"] is None


def test_bench_reports_a_missing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing --data-dir other than the default is a typo, not a request to build Fashion-MNIST there; the
    default folder is built, and without raw files that is one line too."""
    monkeypatch.setenv("FASHION_MNIST_RAW", str(tmp_path / "no-raw"))
    rc = main(["--tiny", "--data-dir", str(tmp_path / "none"), "--skip-naive"])
    assert rc == 1 and not (tmp_path / "none").exists()
    err = capsys.readouterr().err
    assert err == (f"error: dataset folder {tmp_path / 'none'} does not exist; --data-dir names your "
                   f"FashionMNIST-Resplit folder (a typo?). To build the official split there instead: "
                   f"python -m fmnist.data.prepare --out {tmp_path / 'none'}\n")
    monkeypatch.chdir(tmp_path)  # the default folder, data/FashionMNIST-Resplit, is missing here
    assert main(["--tiny", "--skip-naive"]) == 1 and not (tmp_path / "data" / "FashionMNIST-Resplit").exists()
    err = capsys.readouterr().err
    assert err.startswith(f"error: $FASHION_MNIST_RAW={tmp_path / 'no-raw'}: {tmp_path / 'no-raw'} lacks train-images")
    assert err.count("\n") == 1


def test_bench_refuses_graphs_without_cuda(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Refused before the data folder is read (or, as data/ would be, built from the raw files)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only refusal")
    rc = main(["--tiny", "--data-dir", str(tmp_path / "data"), "--skip-naive", "--modes", "graphs"])
    assert rc == 1 and capsys.readouterr().err == "error: --modes graphs needs a CUDA device; this is cpu\n"
    assert not (tmp_path / "data").exists()


def test_step_model_modes() -> None:
    import torch

    from fmnist.bench.pipelines import step_model

    net = torch.nn.Linear(2, 2)
    assert step_model(net, "eager", 8, "fp32", False) is net
    compiled = step_model(net, "compile-default", 8, "fp32", False)  # lazy: compiles on its first call
    assert compiled is not net and compiled._orig_mod is net
    with pytest.raises(ValueError, match="unknown mode 'compile-fast'"):
        step_model(net, "compile-fast", 8, "fp32", False)


def test_torch_compile_modes_are_passed_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from fmnist.bench.pipelines import step_model

    monkeypatch.setattr(torch, "compile", lambda model, mode: mode)
    net = torch.nn.Linear(2, 2)
    assert [step_model(net, f"compile-{m}", 8, "fp32", False) for m in ("default", "reduce-overhead", "max-autotune")
            ] == [None, "reduce-overhead", "max-autotune"]


def test_the_pipelines_time_only_the_steps_after_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock that ticks once per training step: warm-up steps are setup, not timed; exactly `steps` are timed,
    across epochs of the batch stream; the naive pipeline normalizes its images with the data's mean and std."""
    import io
    from types import SimpleNamespace

    import numpy as np
    import torch
    from PIL import Image

    from fmnist.bench import pipelines
    from fmnist.data.loader import MEAN, STD

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(pipelines, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    paddings = []

    def batches(split, batch_size, augment, *args):  # an epoch of 3 batches
        paddings.append(augment.crop_padding)
        yield from range(3)

    def one_epoch(runner, stream, *args, **kwargs):
        for _ in stream:
            clock.now += 1.0

    monkeypatch.setattr(pipelines, "train_batches", batches)
    monkeypatch.setattr(pipelines, "train_one_epoch", one_epoch)
    cpu = torch.device("cpu")
    timing = pipelines.time_ours(torch.nn.Linear(2, 2), list(range(300)), 10, 5, 2, cpu, "fp32", False)
    assert (timing.steps, timing.seconds, timing.setup_s, timing.epoch_images) == (5, 5.0, 2.0, 300)
    assert timing.s_per_epoch == pytest.approx(30.0) and paddings == [4, 4, 4]  # 300 images at 10 per second

    inputs = []

    class Ticking(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(28 * 28, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            clock.now += 1.0
            inputs.append(x)
            return self.linear(x.flatten(1))

    black = io.BytesIO()
    Image.new("L", (28, 28)).save(black, format="PNG")
    clock.now = 0.0
    timing = pipelines.time_naive(Ticking(), [black.getvalue()] * 4, np.zeros(4, dtype=np.int64), 2, 3, 2, 0, cpu)
    assert (timing.steps, timing.seconds, timing.epoch_images, len(inputs)) == (3, 3.0, 4, 5)
    assert torch.allclose(torch.cat(inputs), torch.tensor(-MEAN / STD))  # black, padded with black

@pytest.mark.parametrize(("preset", "model", "width", "epochs", "erasing", "ema"), [
    ("fast", "ResNet9", 32, 16, 0.0, None), ("fast95", "ResNet", 64, 40, 0.5, None),
    ("best", "ResNet", 64, 120, 0.5, 0.999),
])
def test_speed_presets_compose_to_their_recipe(tmp_path: Path, preset: str, model: str, width: int, epochs: int,
                                               erasing: float, ema: float | None) -> None:
    """fast trains a narrower ResNet9; fast95 and best, which build on it, keep ResNet18's own width."""
    from runs import compose_train

    cfg = compose_train(tmp_path, f"+experiment={preset}")
    assert cfg.model._target_.endswith(model) and cfg.trainer.epochs == epochs and cfg.trainer.ema_decay == ema
    assert cfg.model.width == width
    assert (cfg.trainer.batch_size, cfg.data.val_fraction, cfg.trainer.tta_flip) == (512, 0.0, True)
    assert cfg.augment.flip == "alternating" and cfg.augment.erasing == erasing and cfg.optimizer.nesterov


@pytest.mark.slow  # three training runs
@pytest.mark.parametrize("preset", ["fast", "fast95", "best"])
def test_speed_presets_train(real_resplit_dir: Path, tmp_path: Path, preset: str) -> None:
    """The time-to-accuracy presets train end to end at CPU size."""
    from fmnist.bench.tta import time_to_accuracy

    result = time_to_accuracy(preset, [f"data.dir={real_resplit_dir}", "trainer.epochs=1", "data.subset=1024",
                                       "model.width=4"], run_root=tmp_path)
    assert result["status"] == "completed" and 0.0 <= result["test_acc"] <= 1.0 and result["epochs"] == 1
    assert (result["model"], result["batch_size"], result["n_train"]) == (
        "resnet18" if preset != "fast" else "resnet9", 512, 1024)  # what the preset trains, for the report


def test_finished_measurements_are_kept_when_a_later_one_stops(real_resplit_dir: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The device script stops a bench step at its time limit: the rows measured before must be on disk."""
    import fmnist.bench.__main__ as bench
    from fmnist.errors import FmnistError

    def stopped(*args, **kwargs):
        raise FmnistError("stopped at the time limit")

    monkeypatch.setattr(bench, "time_to_accuracy", stopped)
    out = tmp_path / "bench.json"
    assert main(["--tiny", "--data-dir", str(real_resplit_dir), "--skip-naive", "--out", str(out)]) == 1
    saved = json.loads(out.read_text())
    assert [r["model"] for r in saved["throughput"]] == ["resnet9"] and saved["time_to_accuracy"] == []


def test_time_to_accuracy_counts_the_graph_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA-graph capture happens before epoch 1, outside the run's epoch times: the time to accuracy adds it
    (torch.compile's compilation is already inside epoch 1), and says how the run ran."""
    from fmnist.bench import tta

    summary = {"status": "completed", "test_acc": 0.94, "train_time_s": 9.25, "epochs_completed": 24,
               "cuda_graphs": "captured", "graph_capture_s": 1.5, "device_name": "GPU"}
    monkeypatch.setattr(tta, "train", lambda cfg, run_dir: dict(summary))
    result = tta.time_to_accuracy("fast", ["data.dir=unused"])
    assert result["train_time_s"] == pytest.approx(10.75)
    assert (result["graph_capture_s"], result["cuda_graphs"]) == (1.5, "captured")
    del summary["graph_capture_s"], summary["cuda_graphs"]  # eager (CPU, or a capture that fell back)
    assert tta.time_to_accuracy("fast", ["data.dir=unused"])["train_time_s"] == pytest.approx(9.25)


def test_time_to_accuracy_names_what_the_preset_trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The result carries the run's own numbers and what the preset trains (fast: ResNet9 at width 32, batch 512);
    the run dir is kept and named only under a run root; no logger runs while timed; a failure keeps the first line
    of its message."""
    from fmnist.bench import tta
    from fmnist.errors import FmnistError

    seen = []

    def trains(cfg, run_dir):
        seen.append((run_dir, cfg.logger.tensorboard))
        return {"status": "completed", "test_acc": 0.95, "best_val_acc": 0.97, "train_time_s": 8.0,
                "epochs_completed": 24, "device_name": "GPU", "n_train": 60000}

    monkeypatch.setattr(tta, "train", trains)
    result = tta.time_to_accuracy("fast", ["data.dir=unused"], run_root=tmp_path)
    assert seen == [(tmp_path / "fast", False)] and result["run_dir"] == str(tmp_path / "fast")
    assert (result["model"], result["batch_size"], result["n_train"], result["epochs"]) == ("resnet9", 512, 60000, 24)
    assert result["width"] == 32 and tta.time_to_accuracy("fast", ["data.dir=unused", "model.width=48"])["width"] == 48
    assert (result["test_acc"], result["best_val_acc"], result["device_name"]) == (0.95, 0.97, "GPU")
    assert result["train_time_s"] == pytest.approx(8.0) and result["error"] is None
    assert tta.time_to_accuracy("fast", ["data.dir=unused"])["run_dir"] is None  # a temporary folder, removed
    tta.time_to_accuracy("quick", ["data.dir=unused"])  # quick logs to TensorBoard by default: not while timed
    assert seen[-1][1] is False

    def fails(cfg, run_dir):
        raise FmnistError("CUDA out of memory\nTried to allocate 2.00 GiB")

    monkeypatch.setattr(tta, "train", fails)
    result = tta.time_to_accuracy("fast", ["data.dir=unused"])
    assert (result["status"], result["error"], result["epochs"]) == ("failed", "CUDA out of memory", None)

def test_a_failed_mode_is_recorded_and_the_benchmark_goes_on(make_resplit, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    """A capture or compilation that fails on the GPU (RuntimeError) costs its own measurement, not the rest of the
    benchmark step: the error is recorded, the row has no best mode, and the next rows are measured."""
    import fmnist.bench.__main__ as bench

    real = bench.time_ours

    def fails_at_32(model, split, batch_size, *args, **kwargs):
        if batch_size == 32:
            raise RuntimeError("CUDA graph capture failed: operation not permitted when stream is capturing\ndetail")
        return real(model, split, batch_size, *args, **kwargs)

    monkeypatch.setattr(bench, "time_ours", fails_at_32)
    out = tmp_path / "bench.json"
    data = make_resplit().path  # a small synthetic folder: quick to load
    assert main(["--data-dir", str(data), "--models", "resnet9", "--batch-sizes", "32", "16", "--width",
                 "4", "--steps", "1", "--warmup", "0", "--skip-naive", "--cudnn", "deterministic", "--out",
                 str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["cudnn"] == {"deterministic": True, "benchmark": False}  # --cudnn deterministic, recorded
    failed, measured = results["throughput"]
    assert failed["modes"] == {"eager": {"error": "CUDA graph capture failed: operation not permitted when stream "
                                                  "is capturing"}} and "ours_s_per_epoch" not in failed
    assert measured["batch_size"] == 16 and measured["ours_s_per_epoch"] > 0
    assert markdown_main([str(out)]) == 0
    tables = capsys.readouterr().out
    assert "| resnet9 | 32 | - | failed | - | - | - |" in tables
    assert "; deterministic cuDNN kernels); the targets are for one H100, so this cpu run is not judged:" in tables


def test_ours_is_the_fastest_mode_and_the_speed_ups_are_naive_over_ours_and_later_over_first(
        make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Scripted timings (nothing measured): a row's `ours` is its fastest mode, its speed-up is naive / ours seconds
    (above 1 when ours is faster), and each jobs-per-GPU figure is set against the first one's runs per minute."""
    import torch

    import fmnist.bench.__main__ as bench
    from fmnist.bench.pipelines import Timing

    def timing(seconds: float) -> Timing:  # s_per_epoch == seconds, images_per_s == 320 / seconds
        return Timing(steps=10, seconds=seconds, batch_size=32, epoch_images=320, setup_s=0.1)

    per_mode = {"eager": 2.0, "compile-default": 0.5}
    monkeypatch.setattr(bench, "time_ours", lambda *args, mode="eager", **kwargs: timing(per_mode[mode]))
    monkeypatch.setattr(bench, "time_naive", lambda *args, **kwargs: timing(4.0))
    monkeypatch.setattr(bench, "_model", lambda name, width: torch.nn.Identity())  # composing one takes 0.3 s
    monkeypatch.setattr(bench, "_free_device_memory", lambda device: None)  # gc.collect() in pytest: 0.1 s a call
    monkeypatch.setattr(bench, "sweep_throughput", lambda k, jobs, overrides: {
        "jobs_per_gpu": k, "jobs": jobs, "completed": jobs, "wall_s": 60.0, "runs_per_min": {1: 2.0, 4: 6.0}[k],
        "returncode": 0, "sweep_dir": None, "error": None})
    out = tmp_path / "bench.json"
    assert main(["--data-dir", str(make_resplit().path), "--models", "resnet9", "--batch-sizes", "32", "--width", "4",
                 "--modes", "eager", "compile-default", "--concurrency", "1", "4", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    [row] = results["throughput"]
    assert (row["ours_mode"], row["ours_s_per_epoch"], row["ours_images_per_s"]) == ("compile-default", 0.5, 640.0)
    assert row["speedup"] == 8.0
    assert [c["speedup_vs_first"] for c in results["concurrency"]] == [1.0, 3.0]
    assert markdown_main([str(out)]) == 0
    tables = capsys.readouterr().out
    assert "| resnet9 | 32 | 4.00 | 2.00 | 0.50 | 8.0x faster |" in tables and "| 4 | 6.00 | 3.00x | 8/8 |" in tables


def test_a_failed_time_to_accuracy_run_is_a_result(make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    """An untuned preset that diverges (or runs out of memory) on the GPU is recorded as failed, with its error, and
    the next preset still runs: it used to end the benchmark step."""
    from fmnist.bench import tta
    from fmnist.train.run import TrainingDiverged

    def diverges(cfg, run_dir):
        raise TrainingDiverged(f"training loss became NaN/inf in epoch 3 ({cfg.name}); lower optimizer.lr")

    monkeypatch.setattr(tta, "train", diverges)
    out = tmp_path / "bench.json"
    assert main(["--data-dir", str(make_resplit().path), "--models", "--tta", "fast", "fast95", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["time_to_accuracy"]
    assert [(r["preset"], r["status"], r["test_acc"], r["train_time_s"]) for r in rows] == [
        ("fast", "failed", None, None), ("fast95", "failed", None, None)]
    assert rows[1]["error"] == "training loss became NaN/inf in epoch 3 (fast95); lower optimizer.lr"
    assert "tta fast: failed: training loss became NaN/inf" in capsys.readouterr().out
    assert markdown_main([str(out)]) == 0
    assert "| `fast95` | resnet18, width 64 | - | - | - | - | failed |" in capsys.readouterr().out  # on a CPU: no aim


def test_untimed_warm_up_comes_before_the_first_row(make_resplit, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The first model runs untimed steps before the table, so a process's first GPU work (its first row on the H200
    was ~1.8x slow) is not a measurement; the table still has one row per model and batch size."""
    import fmnist.bench.__main__ as bench

    real, calls = bench.time_ours, []

    def recorded(model, split, batch_size, steps, *args, **kwargs):
        calls.append((batch_size, steps))
        return real(model, split, batch_size, steps, *args, **kwargs)

    monkeypatch.setattr(bench, "time_ours", recorded)
    out = tmp_path / "bench.json"
    assert main(["--data-dir", str(make_resplit().path), "--models", "resnet9", "--batch-sizes", "32", "16",
                 "--width", "4", "--steps", "1", "--warmup", "2", "--skip-naive", "--out", str(out)]) == 0
    assert calls == [(32, 10), (32, 1), (16, 1)]  # warm-up: 5 x the warm-up steps at the first batch size
    assert [row["batch_size"] for row in json.loads(out.read_text())["throughput"]] == [32, 16]


def test_mps_is_seen_by_its_control_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench records whether a CUDA MPS daemon serves this process: its control pipe in CUDA_MPS_PIPE_DIRECTORY
    (default /tmp/nvidia-mps)."""
    from fmnist.bench.__main__ import mps_running

    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", str(tmp_path))
    assert not mps_running()
    (tmp_path / "control").touch()
    assert mps_running()


def test_tta_epochs_run_each_preset_once_per_length(make_resplit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    """--tta-epochs 12 16: `fast` twice, trained for 12 and for 16 epochs (after any --tta-overrides), each judged
    against the preset's aim: the shortest run that still reaches it is the one to keep."""
    from fmnist.bench import tta

    def trains(cfg, run_dir):
        n = cfg.trainer.epochs
        return {"status": "completed", "test_acc": 0.93 + n / 1000, "train_time_s": 0.6 * n, "graph_capture_s": 1.9,
                "epochs_completed": n}

    monkeypatch.setattr(tta, "train", trains)
    out = tmp_path / "bench.json"
    assert main(["--data-dir", str(make_resplit().path), "--models", "--tta", "fast", "--tta-overrides",
                 "trainer.epochs=3", "--tta-epochs", "12", "16", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["time_to_accuracy"]
    assert [(r["epochs"], r["overrides"][-1]) for r in rows] == [(12, "trainer.epochs=12"), (16, "trainer.epochs=16")]
    assert "tta fast, 12 epochs: test accuracy 94.20 % in 9.1s training (completed)" in capsys.readouterr().out
    assert markdown_main([str(out)]) == 0
    tables = capsys.readouterr().out  # run on the CPU here: shown, not set against the H100 aims
    assert "| `fast` | resnet9, width 32 | 12 | 94.20 % | 9.1 | - |  |" in tables
    assert "; the targets are for one H100, so this cpu run is not judged:" in tables
    out.write_text(json.dumps(json.loads(out.read_text()) | {"device": "cuda:0"}))
    assert markdown_main([str(out)]) == 0
    tables = capsys.readouterr().out
    assert "not judged" not in tables
    assert "| `fast` | resnet9, width 32 | 12 | 94.20 % | 9.1 | ≥ 94.0 % in ≤ 10 s | met |" in tables
    assert "| `fast` | resnet9, width 32 | 16 | 94.60 % | 11.5 | ≥ 94.0 % in ≤ 10 s | missed |" in tables


@pytest.mark.parametrize("split_case", [str.lower, str.title])
def test_the_naive_pipeline_gets_the_readers_training_images_in_its_label_order(make_resplit, split_case) -> None:
    """The naive pipeline's PNGs are those of the training images the reader returned, in the order of its labels,
    also for split values the reader accepts in another case ('Train'): they were matched by the exact string
    'train', so such a folder gave no PNGs and the naive timing loop never ended."""
    import io

    import numpy as np
    import pyarrow as pa
    from PIL import Image

    import fmnist.bench.__main__ as bench
    from fmnist.data.resplit import load_resplit

    s = make_resplit()
    s.set_column("split", pa.array([split_case(v) for v in s.read_table().column("split").to_pylist()]))
    data = load_resplit(s.path)
    pngs = bench._train_pngs(s.path, data.train.ids)
    assert len(pngs) == len(data.train.labels)
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in pngs]), data.train.images)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("skip_naive", [False, True])
def test_a_batch_larger_than_the_training_split_is_refused(make_resplit, capsys: pytest.CaptureFixture,
                                                           skip_naive: bool) -> None:
    """A batch size above the folder's training images (200 here) is one line: the naive pipeline's DataLoader
    (drop_last) gave no batch and its timing loop never ended, and ours timed 0 steps (a division by zero)."""
    args = ["--data-dir", str(make_resplit().path), "--models", "resnet9", "--width", "4", "--batch-sizes", "32", "256",
            "--warmup", "0", "--steps", "1", "--workers", "0"]
    assert main(args + (["--skip-naive"] if skip_naive else [])) == 1
    err = capsys.readouterr().err
    assert err == "error: --batch-sizes 256 is larger than the 200 training images of the data folder\n"
