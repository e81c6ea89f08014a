"""The analysis pipeline on a real tiny sweep (conftest: tiny_sweep, tiny_analysis): collection, statistics,
failed/unfinished runs, figures, the CLI and the opt-in Hydra callback."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from fmnist.analysis import figures, style
from fmnist.analysis.collect import collect, find_run_dirs, swept_keys
from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.pipeline import analyze, choose_cell
from fmnist.analysis.stats import holm, welch

ROOT = Path(__file__).resolve().parents[1]


def summaries(sweep_root: Path) -> dict[str, dict]:
    return {str(p.parent.resolve()): json.loads(p.read_text()) for p in sweep_root.rglob("summary.json")}


# ------------------------------------------------------------------------------------------ collect
@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_table_has_one_row_per_run_and_the_swept_columns(tiny_analysis) -> None:
    runs = tiny_analysis.result.collection.runs
    assert len(runs) == 5
    assert tiny_analysis.result.collection.swept == {"tiny": ["model.skip", "optimizer.lr"]}
    for column in ("preset", "run", "cell", "status", "seed", "model.skip", "optimizer.lr", "best_val_acc",
                   "test_acc", "params", "flops", "train_time_s", "model", "activation", "run_dir"):
        assert column in runs.columns, column
    assert sorted(runs["status"]) == ["completed"] * 4 + ["failed"]
    done = runs[runs["status"] == "completed"]
    assert sorted(zip(done["model.skip"], done["seed"])) == [(False, 0), (False, 1), (True, 0), (True, 1)]
    assert set(done["optimizer.lr"]) == {0.1}
    assert runs.loc[runs["status"] == "failed", "optimizer.lr"].item() == 1e30


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_numbers_equal_the_run_files(tiny_analysis) -> None:
    runs = tiny_analysis.result.collection.runs.set_index("run_dir")
    for run_dir, summary in summaries(tiny_analysis.sweep.root).items():
        row = runs.loc[run_dir]
        assert row["status"] == summary["status"] and row["seed"] == summary["seed"]
        for key in ("best_val_acc", "test_acc", "params", "flops", "train_time_s", "best_epoch"):
            if summary.get(key) is None:
                assert pd.isna(row[key]), key
            else:
                assert row[key] == pytest.approx(summary[key]), key
    epochs = tiny_analysis.result.collection.epochs
    for run_dir in summaries(tiny_analysis.sweep.root):
        got = epochs[epochs["run_dir"] == run_dir]
        if not (Path(run_dir) / "metrics.csv").exists():  # the diverged run never finished an epoch
            assert got.empty
            continue
        with open(Path(run_dir) / "metrics.csv") as f:
            expected = list(csv.DictReader(f))
        assert len(got) == len(expected)
        for (_, g), e in zip(got.iterrows(), expected):
            for key, value in e.items():
                if value != "":
                    assert g[key] == pytest.approx(float(value)), key
        # the numbers read off the curve for the discussion: last epoch's training loss/accuracy and gap, epoch 1's val
        last, first = expected[-1], expected[0]
        assert runs.loc[run_dir, "train_loss_final"] == pytest.approx(float(last["train_loss"]))
        assert runs.loc[run_dir, "train_acc_final"] == pytest.approx(float(last["train_acc"]))
        assert runs.loc[run_dir, "gap_final"] == pytest.approx(float(last["train_acc"]) - float(last["val_acc"]))
        assert runs.loc[run_dir, "val_acc_epoch1"] == pytest.approx(float(first["val_acc"]))


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_tables_are_saved_as_csv_and_parquet(tiny_analysis) -> None:
    out = tiny_analysis.result.out_dir
    for name in ("runs", "epochs", "cells", "problems", "dead_neurons", "dead_neurons_by_layer"):
        from_csv, from_parquet = pd.read_csv(out / f"{name}.csv"), pd.read_parquet(out / f"{name}.parquet")
        assert list(from_csv.columns) == list(from_parquet.columns) and len(from_csv) == len(from_parquet), name
    parquet = pd.read_parquet(out / "runs.parquet")
    pd.testing.assert_frame_equal(parquet, tiny_analysis.result.collection.runs, check_dtype=False)
    meta = json.loads((out / "analysis.json").read_text())
    assert meta["swept"] == {"tiny": ["model.skip", "optimizer.lr"]} and meta["completed"] == 4
    assert meta["test_set"] == tiny_analysis.result.test_set == "official"  # the runs' data: the official split


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_analysis_never_modifies_the_run_dirs(tiny_analysis) -> None:
    assert tiny_analysis.before == tiny_analysis.after
    assert not (tiny_analysis.sweep.root / "runs.csv").exists()


# ------------------------------------------------------------------------------------------ statistics
@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_cells_mean_std_n_and_the_welch_test(tiny_analysis) -> None:
    cells = tiny_analysis.result.cells.set_index("cell")
    assert list(cells.index) == ["model.skip=True, optimizer.lr=0.1", "model.skip=False, optimizer.lr=0.1",
                                 "model.skip=False, optimizer.lr=1e+30"]
    by_skip: dict[bool, list[float]] = {True: [], False: []}
    for s in summaries(tiny_analysis.sweep.root).values():
        if s["status"] == "completed":
            by_skip[s["config"]["model"]["skip"]].append(s["test_acc"])
    ref, other = cells.iloc[0], cells.iloc[1]
    assert ref["is_reference"] and ref["verdict"] == "reference" and ref["n"] == 2
    assert ref["test_acc_mean"] == pytest.approx(np.mean(by_skip[True]))
    assert ref["test_acc_std"] == pytest.approx(np.std(by_skip[True], ddof=1))
    p = scipy_stats.ttest_ind(by_skip[False], by_skip[True], equal_var=False).pvalue
    assert other["p_value"] == pytest.approx(p) and other["p_holm"] == pytest.approx(p)  # the only test
    assert other["delta"] == pytest.approx(np.mean(by_skip[False]) - np.mean(by_skip[True]))
    assert other["verdict"] == ("within seed noise" if p >= 0.05 else ("higher" if other["delta"] > 0 else "lower"))
    failed = cells.iloc[2]
    assert failed["n"] == 0 and failed["n_failed"] == 1 and failed["verdict"] == "n < 2"


def test_welch_confidence_interval_is_the_welch_satterthwaite_one() -> None:
    from fmnist.analysis.stats import welch_ci

    a, b = np.array([0.93, 0.935, 0.94, 0.938]), np.array([0.90, 0.91, 0.905])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    diff = a.mean() - b.mean()
    assert welch_ci(a, b) == pytest.approx((diff - half, diff + half))
    assert all(np.isnan(welch_ci(a, np.array([0.9]))))  # one value: no interval


def test_holm_and_welch_edge_cases() -> None:
    assert holm([0.01, float("nan"), 0.04, 0.03]) == pytest.approx([0.03, float("nan"), 0.06, 0.06], nan_ok=True)
    assert np.isnan(welch(np.array([0.9]), np.array([0.8, 0.85])))
    assert welch(np.array([0.9, 0.9]), np.array([0.9, 0.9])) == 1.0


def test_swept_keys_ignore_seed_and_constant_overrides() -> None:
    runs = [{"seed": 0, "model.skip": True, "data.dir": "/d", "trainer.epochs": 2},
            {"seed": 1, "model.skip": False, "data.dir": "/d", "trainer.epochs": 2},
            {"seed": 0, "model.skip": False, "data.dir": "/d", "trainer.epochs": 2, "norm": "none"}]
    assert swept_keys(runs) == ["model.skip", "norm"]


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_reference_that_matches_nothing_falls_back_to_the_first_cell(tiny_analysis, tmp_path: Path) -> None:
    from fmnist.analysis.stats import aggregate

    cells = aggregate(tiny_analysis.result.collection, {"tiny": {"model.skip": "maybe"}})
    assert cells["is_reference"].tolist() == [True, False, False]


# ------------------------------------------------------------------------------------------ problems
@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_failed_run_is_listed_and_reported(tiny_analysis, caplog: pytest.LogCaptureFixture) -> None:
    problems = tiny_analysis.result.collection.problems()
    assert problems["run"].tolist() == ["failed_lr"] and problems["status"].tolist() == ["failed"]
    assert "NaN/inf" in problems["error"].item()
    meta = json.loads((tiny_analysis.result.out_dir / "analysis.json").read_text())
    assert meta["problems"][0]["status"] == "failed"
    assert pd.read_csv(tiny_analysis.result.out_dir / "problems.csv")["run"].tolist() == ["failed_lr"]


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_unfinished_runs_are_reported(tiny_sweep, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = next(p.parent for p in tiny_sweep.root.glob("0_*/summary.json"))
    for name in ("crashed", "running", "ok"):
        shutil.copytree(done / ".hydra", sweep / name / ".hydra")
    summary = json.loads((done / "summary.json").read_text())
    (sweep / "running" / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    (sweep / "ok" / "summary.json").write_text(json.dumps(summary))
    collection = collect(sweep)
    status = dict(zip(collection.runs["run"], collection.runs["status"]))
    assert status == {"crashed": "not_started", "ok": "completed", "running": "running"}
    assert sorted(collection.problems()["run"]) == ["crashed", "running"]
    assert "no summary.json" in collection.problems().set_index("run").loc["crashed", "error"]


def test_run_dirs_are_found_at_any_depth(tmp_path: Path) -> None:
    for rel in ("a/0_x", "b/c/d/1_y", "e/2_z/.hydra"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "a/0_x/summary.json").write_text("{}")
    (tmp_path / "b/c/d/1_y/summary.json").write_text("{}")
    (tmp_path / "e/2_z/.hydra/config.yaml").write_text("name: z\n")
    (tmp_path / "a/0_x/checkpoints").mkdir()
    assert [p.relative_to(tmp_path).as_posix() for p in find_run_dirs(tmp_path)] == ["a/0_x", "b/c/d/1_y", "e/2_z"]


def test_bad_sweep_dirs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="does not exist"):
        collect(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="holds no run directories"):
        collect(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="no sweep_dir"):
        collect([])


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_out_dir_inside_a_run_dir_is_refused(tiny_sweep, analyze_config) -> None:
    run = next(tiny_sweep.root.glob("0_*"))
    with pytest.raises(AnalysisError, match="inside the run dir"):
        analyze(analyze_config(f"sweep_dir={tiny_sweep.root}", f"out_dir='{run / 'analysis'}'"))  # quoted: = and ,


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), f"sweep_dir={tmp_path / 'missing'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "does not exist" in out and "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no outputs/, .hydra/ or log file


# ------------------------------------------------------------------------------------------ confusion
@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_confusion_cell_pools_the_seeds_predictions(tiny_analysis) -> None:
    classes = tiny_analysis.result.classes
    cells = tiny_analysis.result.cells
    assert classes.cell == cells.loc[cells["test_acc_mean"].idxmax(), "cell"]
    assert classes.n_runs == 2 and classes.confusion.sum() == 2 * 10000
    frames = [pd.read_csv(Path(d) / "predictions_test.csv") for d in classes.per_class["run_dir"].unique()]
    trouser = np.mean([(f.loc[f["label"] == 1, "pred"] == 1).mean() for f in frames])
    assert classes.class_accuracy().set_index("class").loc["Trouser", "mean"] == pytest.approx(trouser)
    named = choose_cell(cells, {"preset": "tiny", "model.skip": False, "optimizer.lr": 0.1})
    assert named["cell"] == "model.skip=False, optimizer.lr=0.1"
    with pytest.raises(AnalysisError, match="matches no cell"):
        choose_cell(cells, {"model.skip": "sideways"})


# ------------------------------------------------------------------------------------------ figures
EXPECTED_FIGURES = {"curves_tiny", "accuracy_tiny", "capacity", "lr_schedules", "confusion", "misclassified",
                    "augmentations", "dead_by_layer", "dead_vs_lr"}


def assert_figure(pdf: Path) -> None:
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000, pdf
    with Image.open(pdf.with_suffix(".png")) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert min(pixels.shape) > 150 and pixels.std() > 5, pdf  # not blank


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_figures_exist_and_are_not_empty(tiny_analysis) -> None:
    figs = tiny_analysis.result.figures
    assert EXPECTED_FIGURES <= set(figs), EXPECTED_FIGURES - set(figs)
    for pdf in figs.values():
        assert pdf.parent == tiny_analysis.result.out_dir / "figures"
        assert_figure(pdf)


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_trainer_tracked_dead_fraction_is_plotted(tiny_analysis, tmp_path: Path) -> None:
    c = tiny_analysis.result.collection
    epochs = c.epochs.assign(dead_fraction=0.1 * c.epochs["epoch"], zero_fraction=0.5)
    cells = list(tiny_analysis.result.cells["cell"])
    with style.context():
        written = figures.tracked_dead_curves(c.runs, epochs, "tiny", cells, tmp_path)
        assert figures.tracked_dead_curves(c.runs, c.epochs, "tiny", cells, tmp_path / "none") == []
    assert_figure(written[0])


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_callback_analysed_the_sweep_when_it_ended(tiny_sweep) -> None:
    runs = pd.read_csv(tiny_sweep.root / "analysis" / "runs.csv")
    assert (runs["status"] == "completed").sum() == 4
    assert not (tiny_sweep.root / "analysis" / "figures").exists()  # the overrides reached analyze.py


def test_data_folder_of_a_run_made_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run trained on another machine recorded an absolute data folder that does not exist here; its configured
    data.dir (relative, as the study passes it) is looked up from the working directory instead."""
    from omegaconf import OmegaConf

    from fmnist.analysis.pipeline import _data_dir

    run_dir = tmp_path / "multirun" / "study" / "stage2_skip" / "0_seed=0"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "data_dir": "/gone/FashionMNIST-Resplit",
                                                      "config": {"data": {"dir": "data/FashionMNIST-Resplit"}}}))
    [run] = [r for _, r in collect(tmp_path / "multirun").runs.iterrows()]  # the row the analysis reads
    monkeypatch.chdir(tmp_path)
    assert _data_dir(OmegaConf.create({}), run) is None  # neither exists yet
    (tmp_path / "data" / "FashionMNIST-Resplit").mkdir(parents=True)
    assert _data_dir(OmegaConf.create({}), run) == Path("data/FashionMNIST-Resplit")
    other = tmp_path / "mine"
    other.mkdir()
    assert _data_dir(OmegaConf.create({"data_dir": str(other)}), run) == other  # data_dir= wins
