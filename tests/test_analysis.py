"""The analysis pipeline on a real tiny sweep (conftest: tiny_sweep, tiny_analysis): collection, statistics,
failed/unfinished runs, figures, the CLI and the opt-in Hydra callback."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.collections import PathCollection
from PIL import Image
from scipy import stats as scipy_stats

from fmnist.analysis import figures, style
from fmnist.analysis import stats
from fmnist.analysis.collect import Collection, cell_label, collect, find_run_dirs, short_keys, short_labels, swept_keys
from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.outputs import staged
from fmnist.analysis.pipeline import analyze, choose_cell
from fmnist.analysis.stats import holm, welch
from fmnist.config import CONF_DIR

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
def test_the_runs_data_fingerprint_is_checked_against_the_analysed_folder(tiny_analysis) -> None:
    from fmnist.analysis.macros import build_macros
    from fmnist.data.resplit import OFFICIAL_RESPLIT_FINGERPRINT, data_fingerprint, load_resplit

    done = [s for s in summaries(tiny_analysis.sweep.root).values() if s["status"] == "completed"]
    recorded = {s["data_fingerprint"] for s in done}
    assert recorded == {data_fingerprint(load_resplit(tiny_analysis.sweep.data_dir))} == {OFFICIAL_RESPLIT_FINGERPRINT}
    check = tiny_analysis.result.data
    assert check.fingerprints == sorted(recorded) and check.folder in recorded and check.unrecorded == 0
    assert not check.mixed and not check.folder_differs
    meta = json.loads((tiny_analysis.result.out_dir / "analysis.json").read_text())
    assert meta["data_fingerprints"] == sorted(recorded)
    text = build_macros(tiny_analysis.result)["readDataSplit"]
    assert text.startswith("The runs' test set is the official")
    assert (r"same data fingerprint, that of the split \texttt{python -m fmnist.data.prepare} builds (\texttt{"
            + check.folder + "}, a hash of the ids, labels and images it read)") in text


def test_data_check_names_mixed_data_and_a_folder_that_is_not_the_runs(caplog: pytest.LogCaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.analysis import pipeline
    from fmnist.analysis.macros import _same_data

    runs = pd.DataFrame({"data_fingerprint": ["aaaa", "aaaa", None, "bbbb"]})
    with caplog.at_level("WARNING", logger="fmnist.analysis"):
        mixed = pipeline.data_check(runs, None)
    assert mixed.fingerprints == ["aaaa", "bbbb"] and mixed.unrecorded == 1 and mixed.mixed
    assert "the runs trained on 2 different data sets (data_fingerprint aaaa, bbbb)" in caplog.text
    assert "did not all train on the same data" in _same_data(mixed) and "texttt{bbbb}" in _same_data(mixed)

    caplog.clear()
    one = pd.DataFrame({"data_fingerprint": ["aaaa", None]})
    monkeypatch.setattr(pipeline, "data_fingerprint", lambda dataset: "cccc")  # the folder the analysis read
    with caplog.at_level("WARNING", logger="fmnist.analysis"):
        other_folder = pipeline.data_check(one, object())
    assert other_folder.folder_differs and not other_folder.mixed
    assert "is not the data the runs trained on" in caplog.text
    text = _same_data(other_folder)
    assert "(the 1 older run recorded none)" in text and r"another fingerprint (\texttt{cccc})" in text
    # the run that recorded none is not said to have trained on that data
    assert text.startswith("Every run that recorded a data fingerprint recorded the same one (")
    assert "so those runs trained and were tested on the same data." in text and "all of them" not in text

    assert pipeline.data_check(pd.DataFrame({"data_fingerprint": [None, None]}), None) is None  # older runs only
    assert pipeline.data_check(pd.DataFrame({"test_acc": [0.9]}), None) is None
    assert _same_data(None) == ""


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


def test_welch_p_is_two_sided_with_the_welch_satterthwaite_degrees_of_freedom() -> None:
    a, b = np.array([0.93, 0.935, 0.94, 0.938]), np.array([0.90, 0.91, 0.905])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    assert welch(a, b) == pytest.approx(2 * scipy_stats.t.sf(t, df)) == pytest.approx(welch(b, a))
    assert welch(np.array([0.9, 0.9]), np.array([0.8, 0.8])) == 0.0  # no seed noise: any difference is exact


def test_holm_and_welch_edge_cases() -> None:
    assert holm([0.01, float("nan"), 0.04, 0.03]) == pytest.approx([0.03, float("nan"), 0.06, 0.06], nan_ok=True)
    assert np.isnan(welch(np.array([0.9]), np.array([0.8, 0.85])))
    assert welch(np.array([0.9, 0.9]), np.array([0.9, 0.9])) == 1.0
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # (2 * 0.6, max(1.2, 0.7)): capped at 1


def test_seeds_that_all_score_the_same_are_no_seed_noise_whatever_their_number() -> None:
    """Seven seeds at 0.8 against two at 0.8 (e.g. cells diverged to one accuracy): the same value on both sides,
    p = 1. The mean of seven 0.8s is not 0.8 to the last bit and np.var is 1e-32, not 0: Welch's test on that float
    noise called it significant (p = 0.0498)."""
    from fmnist.analysis.stats import welch_ci

    same, fewer = np.full(7, 0.8), np.full(2, 0.8)
    assert welch(same, fewer) == welch(fewer, same) == 1.0
    assert welch(same, np.full(2, 0.7)) == 0.0 and all(np.isnan(welch_ci(same, fewer)))


def hand_aggregate(runs: list[tuple[dict, str, float | None]], reference: dict | None = None):
    """`aggregate` of preset "p" from (cell, status, test_acc) rows; the swept keys are those of the first cell."""
    rows = [{"preset": "p", "status": status, "run_dir": f"/p/{i}", "cell": cell_label(cell), **cell, "test_acc": acc}
            for i, (cell, status, acc) in enumerate(runs)]
    collection = Collection(pd.DataFrame(rows), pd.DataFrame(columns=["run_dir", "epoch"]), {"p": list(runs[0][0])})
    return stats.aggregate(collection, {"p": reference} if reference else {}, 0.05).set_index("cell")


def test_cells_count_only_completed_runs_and_the_first_matching_cell_is_the_reference() -> None:
    def cell(skip: str, lr: float) -> dict:
        return {"model.skip": skip, "optimizer.lr": lr}  # text, as in a column beside a mistyped 'flase'

    plain, res, res_low = [0.80, 0.81, 0.86], [0.90, 0.91, 0.95], [0.70, 0.72]
    runs = ([(cell("False", 0.1), "completed", a) for a in plain] + [(cell("False", 0.1), "running", 0.1),
            (cell("False", 0.1), "unreadable", None)] + [(cell("True", 0.1), "completed", a) for a in res]
            + [(cell("True", 0.01), "completed", a) for a in res_low] + [(cell("flase", 0.1), "failed", None)])
    cells = hand_aggregate(runs, {"model.skip": True})
    assert list(cells["is_reference"]) == [False, True, False, False]  # True matches the text 'True', first hit
    row = cells.iloc[0]
    assert (row["n"], row["n_unfinished"], row["n_failed"]) == (3, 2, 0)
    assert row["test_acc_mean"] == pytest.approx(sum(plain) / 3)  # the mean, not the median (0.81)
    assert row["test_acc_std"] == pytest.approx(statistics.stdev(plain))
    p_plain = scipy_stats.ttest_ind(plain, res, equal_var=False).pvalue  # the running run's 0.1 left out
    p_low = scipy_stats.ttest_ind(res_low, res, equal_var=False).pvalue
    assert row["p_value"] == pytest.approx(p_plain) and cells.iloc[2]["p_value"] == pytest.approx(p_low)
    first, second = sorted([p_plain, p_low])
    holm_of = {first: 2 * first, second: max(2 * first, second)}
    assert row["p_holm"] == pytest.approx(holm_of[p_plain]) and cells.iloc[2]["p_holm"] == pytest.approx(holm_of[p_low])
    assert (cells.iloc[3]["n"], cells.iloc[3]["n_failed"], cells.iloc[3]["verdict"]) == (0, 1, "n < 2")


def test_a_holm_p_equal_to_alpha_is_within_seed_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats, "welch", lambda a, b: 0.025)  # two tests: Holm gives exactly 2 * 0.025 = alpha
    cells = hand_aggregate([({"x": x}, "completed", acc) for x in (1, 2, 3) for acc in (0.8, 0.9)])
    assert list(cells["p_holm"].iloc[1:]) == [0.05, 0.05]
    assert list(cells["verdict"].iloc[1:]) == ["within seed noise"] * 2 and not cells["significant"].iloc[1:].any()


def test_swept_keys_ignore_seed_and_constant_overrides() -> None:
    runs = [{"seed": 0, "model.skip": True, "data.dir": "/d", "trainer.epochs": 2},
            {"seed": 1, "model.skip": False, "data.dir": "/d", "trainer.epochs": 2},
            {"seed": 0, "model.skip": False, "data.dir": "/d", "trainer.epochs": 2, "norm": "none"}]
    assert swept_keys(runs) == ["model.skip", "norm"]
    assert swept_keys([{"model.skip": True}, {"model.skip": False}]) == ["model.skip"]  # one seed per cell
    assert swept_keys([{"optimizer.lr": 0.1}, {"optimizer.lr": 0.1 + 1e-17}]) == []  # the same number
    # a key below a neutral group (logger) or path set in some runs only: not a setting of the computation
    assert swept_keys([{"model.skip": True, "logger.tensorboard": False, "data.cache_dir.x": "/c"},
                       {"model.skip": False, "logger.wandb.mode": "online"}, {"model.skip": True}]) == ["model.skip"]
    assert swept_keys([{"loggers": 1}, {"loggers": 2}]) == ["loggers"]  # only the key itself and those below it


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


def test_a_running_run_whose_lock_is_held_is_reported_as_training_now(tmp_path: Path) -> None:
    """Analysing a sweep while it trains: its live run was reported as "unfinished, or killed without a chance to
    record it"; with its .lock held by the training process it is "training now"."""
    import fcntl

    from fmnist.analysis.collect import TRAINING_NOW

    runs = fake_sweep(tmp_path / "sweep")
    for run in runs[:2]:
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "status": "running", "error": None}))
        (run / ".lock").write_text("12345")
    with open(runs[0] / ".lock", "rb") as held:  # the training process's flock (another open file: it conflicts)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        errors = collect(tmp_path / "sweep").problems().set_index("run")["error"]
    assert errors[runs[0].name] == TRAINING_NOW == "training now: another process holds its .lock"
    assert errors[runs[1].name].startswith("summary.json says running: unfinished, or killed")  # a stale lock file


def test_run_dirs_are_found_at_any_depth(tmp_path: Path) -> None:
    for rel in ("a/0_x", "b/c/d/1_y", "e/2_z/.hydra"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "a/0_x/summary.json").write_text("{}")
    (tmp_path / "b/c/d/1_y/summary.json").write_text("{}")
    (tmp_path / "e/2_z/.hydra/config.yaml").write_text("name: z\n")
    (tmp_path / "a/0_x/checkpoints").mkdir()
    (tmp_path / "a/0_x/copy").mkdir()  # a run dir's own subfolders are not searched
    (tmp_path / "a/0_x/copy/summary.json").write_text("{}")
    assert [p.relative_to(tmp_path).as_posix() for p in find_run_dirs(tmp_path)] == ["a/0_x", "b/c/d/1_y", "e/2_z"]
    links = tmp_path / "links"  # a sweep gathered from links to run dirs; a link cycle is walked once
    links.mkdir()
    (links / "0_x").symlink_to(tmp_path / "a/0_x")
    (links / "up").symlink_to(tmp_path)
    assert [p.relative_to(links).as_posix() for p in find_run_dirs(links)] == ["0_x", "up/b/c/d/1_y", "up/e/2_z"]


def test_run_dirs_are_in_job_number_order_then_by_name(tmp_path: Path) -> None:
    """Hydra's job 10 comes after job 2 (not between 1 and 2, as text sorts it), and a run dir without a job number
    (one added to the sweep by hand) after the jobs: the order of the run table, and which of two copies of a run
    counts (the first)."""
    for name in ("10_x", "added", "2_x", "0_x", "1_x"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text("{}")
    assert [p.name for p in find_run_dirs(tmp_path)] == ["0_x", "1_x", "2_x", "10_x", "added"]


def test_bad_sweep_dirs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="does not exist"):
        collect(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="holds no run directories"):
        collect(tmp_path / "empty")
    with pytest.raises(AnalysisError, match="no sweep_dir"):
        collect([])
    with pytest.raises(AnalysisError, match="no sweep_dir"):  # not the working directory
        collect([tmp_path / "empty", ""])
    (tmp_path / "file").write_text("")
    with pytest.raises(AnalysisError, match=f"^sweep_dir {tmp_path / 'file'} is not a directory$"):
        collect([tmp_path / "empty", tmp_path / "file"])


def test_out_dir_inside_a_run_dir_is_refused(tmp_path: Path, analyze_config) -> None:
    run = fake_sweep(tmp_path / "sweep")[0]
    with pytest.raises(AnalysisError, match="inside the run dir"):  # quoted: = and ,
        analyze(analyze_config(f"sweep_dir={tmp_path / 'sweep'}", f"out_dir='{run / 'analysis'}'"))
    assert not (run / "analysis").exists()


def test_a_single_run_dir_is_analysed_beside_itself(tmp_path: Path, analyze_config) -> None:
    """sweep_dir naming one run dir: the default out_dir is <run dir>-analysis beside it, not inside it."""
    [run, *_] = fake_sweep(tmp_path / "sweep")
    result = analyze(analyze_config(f"sweep_dir='{run}'", "dead_neurons=false", "figures=false"))
    assert result.out_dir == tmp_path / "sweep" / f"{run.name}-analysis" and (result.out_dir / "runs.csv").is_file()
    assert result.collection.runs["run"].tolist() == [run.name]  # named as itself, not "."
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "metrics.csv", "predictions_test.csv",
                                                     "summary.json"]  # nothing written into it


def test_a_run_dir_given_through_a_symlink_is_analysed_beside_the_link(tmp_path: Path, analyze_config) -> None:
    """sweep_dir a symlink to a run dir elsewhere (a colleague's run linked into one's own folder): the analysis goes
    beside the link, named after it. It used to go beside the link named after the target (mine -> run's name)."""
    [run, *_] = fake_sweep(tmp_path / "sweep")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "baseline").symlink_to(run)
    result = analyze(analyze_config(f"sweep_dir={tmp_path / 'mine' / 'baseline'}", "dead_neurons=false",
                                    "figures=false"))
    assert result.out_dir == tmp_path / "mine" / "baseline-analysis" and (result.out_dir / "runs.csv").is_file()


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), f"sweep_dir={tmp_path / 'missing'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "does not exist" in out and "Traceback" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no outputs/, .hydra/ or log file



@pytest.mark.parametrize("args", [["{sweep}"], ["report=true", "{sweep}"], ["-m", "{sweep}"]])
def test_a_sweep_dir_given_without_its_key_is_one_line(tmp_path: Path, args: list[str]) -> None:
    """`python analyze.py multirun/...` (no `sweep_dir=`): Hydra's own error would be a lexer message."""
    sweep = "multirun/2025-06-01/10-00-00_stage2_skip_3fa9c1"
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), *(a.format(sweep=sweep) for a in args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and (proc.stdout + proc.stderr).strip().splitlines() == [
        f"error: {sweep} is not a key=value override: python analyze.py sweep_dir={sweep}"]


def test_a_mistyped_option_is_one_line_naming_the_likely_one() -> None:
    """`sweep_dirs=...` or `reprot=true`: Hydra would answer in several lines and suggest `+sweep_dirs`."""
    from fmnist.analysis.entry import argument_error

    assert argument_error(["sweep_dirs=[a,b]"]).startswith(
        "error: unknown option sweep_dirs (did you mean sweep_dir?): conf/analyze.yaml has alpha, bench_dir, ")
    assert argument_error(["sweep_dir=x", "reprot=true"]).startswith("error: unknown option reprot (did you mean "
                                                                     "report?)")
    assert "did you mean" not in argument_error(["zzz=1"])
    for fine in (["sweep_dir=x", "reference.stage2_norm={norm: none}", "hydra.verbose=true"], ["--cfg", "job"],
                 ["+extra=1"], ["-m", "sweep_dir=x"], ["hydra/job_logging=none"]):
        assert argument_error(fine) is None, fine


def test_help_shows_the_analysis_keys_not_the_training_config_groups(tmp_path: Path) -> None:
    """`python analyze.py --help` lists analyze's own keys; Hydra's default help listed train.py's config groups
    (model, norm, ...) as options to compose, which analyze refuses."""
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("python analyze.py sweep_dir=")
    assert "sweep_dir: ???" in proc.stdout and "confusion_cell: null" in proc.stdout
    assert "Configuration groups" not in proc.stdout and "model: plain18" not in proc.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_stops_the_analysis_with_one_line_and_status_130(
        signum: int, tmp_path: Path, analyze_config, caplog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like a training run: no KeyboardInterrupt traceback, and the previous analysis in out_dir is kept."""
    from fmnist.analysis import entry

    fake_sweep(tmp_path / "sweep")
    cfg = analyze_config(f"sweep_dir={tmp_path / 'sweep'}", f"out_dir={tmp_path / 'out'}", "figures=false")
    analyze(cfg)
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}

    def stopped(cfg) -> None:  # the signal arrives while the new analysis is being written
        with staged(tmp_path / "out") as staging:
            (staging / "runs.csv").write_text("partial\n")
            os.kill(os.getpid(), signum)

    def unhandled(signum, frame) -> None:  # what SIGTERM would do unhandled (kill pytest), as a test failure
        raise RuntimeError("the signal was not handled")

    monkeypatch.setattr(entry, "main", stopped)
    caplog.clear()
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        with caplog.at_level(logging.ERROR, logger="fmnist"):
            entry.hydra_main(cfg)
        code = None
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # not let through: pytest would take it for the user's Ctrl-C
        code = "KeyboardInterrupt"
    finally:
        assert signal.signal(signal.SIGTERM, previous) is unhandled  # hydra_main put the handler back
    assert code == 130
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "interrupted: the analysis stopped before it was complete; the previous analysis (and report) is kept: run "
        "the same command again"]
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before


def test_a_run_dir_of_a_sweep_given_unquoted_is_one_line_with_the_quoted_form(tmp_path: Path) -> None:
    """`sweep_dir=<sweep>/0_model.skip=True,seed=0`: every run dir of a sweep has `=` in its name, and Hydra's own
    answer is a lexer error ("mismatched input '=' expecting <EOF>") that names neither the key nor the fix."""
    from fmnist.analysis.entry import argument_error

    run = "multirun/s/0_model.skip=True,seed=0"
    expected = (f"error: sweep_dir={run}: Hydra cannot read this path unquoted; quote it, inside the shell's "
                f"quotes: \"sweep_dir='{run}'\"")
    assert argument_error([f"sweep_dir={run}"]) == expected
    assert argument_error([f"out_dir={run}-x"]).startswith(f"error: out_dir={run}-x: Hydra cannot read")
    assert argument_error(["sweep_dir=x", "data_dir=~/data"]).startswith("error: data_dir=~/data: Hydra cannot")
    assert argument_error(["sweep_dir=multirun/a,multirun/b"]) == (  # Hydra: five lines on an 'Ambiguous value'
        "error: sweep_dir=multirun/a,multirun/b: Hydra reads the ',' as separating several values; for one path quote "
        "it, inside the shell's quotes: \"sweep_dir='multirun/a,multirun/b'\"; several sweeps: "
        "sweep_dir=[multirun/a,multirun/b]")
    assert argument_error(["sweep_dir=x", "out_dir=/tmp/a,b"]).endswith("quotes: \"out_dir='/tmp/a,b'\"")
    assert argument_error(["-m", "sweep_dir=multirun/a,multirun/b"]) is None  # Hydra's sweep: an analysis of each
    for fine in ([f"sweep_dir='{run}'"], [f'sweep_dir="{run}"'], ["sweep_dir=[a,b]"], ["confusion_cell={preset: x}"]):
        assert argument_error(fine) is None, fine
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), f"sweep_dir={run}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and (proc.stdout + proc.stderr).strip() == expected


def test_a_sweep_dir_in_the_working_directory_given_without_its_key_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python analyze.py sweep` where ./sweep exists (no slash in it): the same one-line hint as for a path."""
    from fmnist.analysis.entry import argument_error

    (tmp_path / "sweep").mkdir()
    monkeypatch.chdir(tmp_path)
    assert argument_error(["sweep"]) == "error: sweep is not a key=value override: python analyze.py sweep_dir=sweep"


# ------------------------------------------------------------------------------------------ confusion
@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_confusion_cell_pools_the_seeds_predictions(tiny_analysis) -> None:
    classes = tiny_analysis.result.classes
    cells = tiny_analysis.result.cells
    assert classes.cell == cells.loc[cells["best_val_acc_mean"].idxmax(), "cell"]  # chosen on validation
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


def test_the_analyze_callback_analyses_the_sweep_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hydra/callbacks=analyze runs analyze.py on the sweep when it ends; the exit hook armed at its start (for a sweep
    whose failed job made Hydra skip on_multirun_end) then has nothing left to run."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from fmnist.analysis import callbacks

    calls: list[list[str]] = []
    monkeypatch.setattr(callbacks.subprocess, "run", lambda cmd: calls.append(cmd) or SimpleNamespace(returncode=0))
    monkeypatch.setattr(callbacks.atexit, "register", lambda hook: None)
    callback = callbacks.AnalyzeSweep(report=True, overrides=["figures=false"])
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    callback.on_multirun_start(cfg)
    callback.on_multirun_end(cfg)
    callback._run_pending()  # the exit hook
    assert calls == [[sys.executable, str(callbacks.ANALYZE_SCRIPT), f"sweep_dir={tmp_path.resolve()}", "report=true",
                      "figures=false"]]
    callback.on_multirun_start(cfg)
    callback._run_pending()  # on_multirun_end skipped: the exit hook analyses
    assert len(calls) == 2


def test_the_analyze_callback_quotes_a_sweep_dir_hydra_would_misread(tmp_path: Path) -> None:
    """A sweep dir with `=` or `,` (hydra.sweep.dir='multirun/lr=0.1'): passed unquoted, analyze.py refused it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from fmnist.analysis import callbacks
    from fmnist.analysis.entry import argument_error

    sweep = tmp_path / "lr=0.1,it's"
    cmd = callbacks.AnalyzeSweep().command(sweep)
    assert cmd[2] == f"sweep_dir='{str(sweep).replace(chr(39), chr(92) + chr(39))}'"
    assert argument_error(cmd[2:]) is None
    [override] = OverridesParser.create().parse_overrides([cmd[2]])
    assert override.value() == str(sweep)
    assert callbacks.AnalyzeSweep().command(tmp_path / "plain")[2] == f"sweep_dir={tmp_path / 'plain'}"


def test_a_sweep_stopped_by_ctrl_c_is_not_analysed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """Ctrl-C stops a sweep of hydra/callbacks=analyze with its one line; the exit hook then analysed the partial
    sweep all the same (dead units, figures: minutes on a CPU) although the user had asked to stop."""
    import threading
    from types import SimpleNamespace

    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from fmnist.analysis import callbacks
    from fmnist.train import entry

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    stopped = threading.Event()
    monkeypatch.setattr(callbacks, "STOPPED", stopped)
    monkeypatch.setattr(entry, "STOPPED", stopped)
    monkeypatch.setattr(entry, "train", interrupted)
    hc = SimpleNamespace(runtime=SimpleNamespace(choices={}, output_dir=str(tmp_path / "0_seed=0")),
                         mode=RunMode.MULTIRUN, overrides=SimpleNamespace(task=["seed=0"]), sweeper={})
    monkeypatch.setattr(entry.HydraConfig, "get", staticmethod(lambda: hc))
    with pytest.raises(SystemExit) as stop:  # the job's Ctrl-C, as train.py reports it
        entry.hydra_main(OmegaConf.create({}))
    assert stop.value.code == 130 and stopped.is_set()

    calls: list[list[str]] = []
    monkeypatch.setattr(callbacks.subprocess, "run", lambda cmd: calls.append(cmd) or SimpleNamespace(returncode=0))
    monkeypatch.setattr(callbacks.atexit, "register", lambda hook: None)
    callback = callbacks.AnalyzeSweep()
    callback.on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    with caplog.at_level(logging.INFO, logger="fmnist.analysis"):
        callback._run_pending()  # the exit hook
    assert calls == []
    assert f"the sweep was interrupted: not analysed (resume it, or: {sys.executable} " in caplog.text


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
    recorded = pd.Series({**run, "data_dir": str(other)})  # the folder the run recorded, where it exists here
    assert _data_dir(OmegaConf.create({}), recorded) == other


# ------------------------------------------------------------------------------------------ damaged input
# Hand-made run dirs (no training): a sweep of model.skip=true,false x seed=0,1 as Hydra's basic sweeper lays it out.
METRICS_CSV = "epoch,lr,train_loss,train_acc,val_loss,val_acc\n1,0.1,2.0,0.3,2.1,0.25\n2,0.05,1.5,0.5,1.6,0.45\n"
#: The 4 test images of a fake run, each predicted as its label with probability 1.
PREDICTIONS_CSV = "id,label,pred," + ",".join(f"p{c}" for c in range(10)) + "\n" + "".join(
    f"{i},{i},{i}," + ",".join("1.0" if c == i else "0.0" for c in range(10)) + "\n" for i in range(4))


def fake_run(sweep: Path, job: int, skip: bool, seed: int, test_acc: object = 0.9, **summary: object) -> Path:
    """A completed run dir `<job>_model.skip=<skip>,seed=<seed>` with summary.json, .hydra/ and metrics.csv."""
    run = sweep / f"{job}_model.skip={skip},seed={seed}"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(f"- model.skip={skip}\n- seed={seed}\n- trainer.epochs=2\n")
    config = {"name": "fake", "seed": seed, "model": {"skip": skip}, "optimizer": {"lr": 0.1},
              "trainer": {"epochs": 2, "batch_size": 32}, "data": {"dir": "nowhere"}}
    (run / "summary.json").write_text(json.dumps({
        "status": "completed", "seed": seed, "config": config, "choices": {"model": "resnet9"},
        "test_acc": test_acc, "best_val_acc": 0.5, "epochs_completed": 2, "n_test": 4, **summary}))
    (run / "metrics.csv").write_text(METRICS_CSV)
    (run / "predictions_test.csv").write_text(PREDICTIONS_CSV)
    return run


def fake_sweep(root: Path, accs: tuple = (0.90, 0.91, 0.80, 0.81)) -> list[Path]:
    """Jobs 0..3: skip=True seeds 0, 1, then skip=False seeds 0, 1, with these test accuracies."""
    cells = [(True, 0), (True, 1), (False, 0), (False, 1)]
    return [fake_run(root, job, skip, seed, acc) for job, ((skip, seed), acc) in enumerate(zip(cells, accs))]


def quick_analysis(analyze_config, sweep: Path, out: Path, *overrides: str):
    return analyze(analyze_config(f"sweep_dir={sweep}", f"out_dir={out}", "dead_neurons=false", "figures=false",
                                  *overrides))


@pytest.mark.parametrize(("overrides", "message"), [
    ((), "no sweep_dir given"),
    (("sweep_dir=",), "no sweep_dir given"),
    (("sweep_dir=[]",), "no sweep_dir given"),
    (("alpha=abc",), "alpha must be a number between 0 and 1"),
    (("alpha=2",), "alpha must be a number between 0 and 1"),
    (("alpha=0",), "alpha must be a number between 0 and 1"),
    (("reference=nonsense",), "reference must be a mapping"),
    (("reference.stage2_skip=skip",), "reference.stage2_skip must be a mapping"),
    (("confusion_cell=bogus",), "confusion_cell must be a mapping"),
    (("misclassified=abc",), "misclassified must be a whole number"),
    (("misclassified=-1",), "misclassified must be a whole number"),
    (("figures=maybe",), "figures must be true or false"),
    (("+figurez=false", "+alfa=0.1"), r"unknown option\(s\) alfa, figurez: not part of conf/analyze.yaml"),
    (("data_dir=/nonexistent/fmnist",), "data_dir /nonexistent/fmnist does not exist"),
    (("bench_dir=/nonexistent/bench",), "bench_dir /nonexistent/bench does not exist"),
])
def test_bad_options_fail_before_anything_is_read(tmp_path: Path, analyze_config, monkeypatch: pytest.MonkeyPatch,
                                                  overrides: tuple, message: str) -> None:
    from fmnist.analysis import pipeline

    monkeypatch.setattr(pipeline, "collect", lambda *a: pytest.fail("collected before the options were checked"))
    sweep = [] if "sweep_dir" in message else [f"sweep_dir={tmp_path}"]
    with pytest.raises(AnalysisError, match=message):
        analyze(analyze_config(*sweep, f"out_dir={tmp_path / 'out'}", *overrides))
    assert not (tmp_path / "out").exists()


def test_a_reference_for_a_preset_that_does_not_exist_is_one_error(tmp_path: Path, analyze_config) -> None:
    """`+reference.<typo>=...` was ignored without a word: like an unknown option it is one error line naming it,
    once the runs (which name their presets) are read, and nothing is written. A preset of conf/experiment/ that is
    not analysed (conf/analyze.yaml's own entries) or a preset only the runs name (here: fake) is fine."""
    fake_sweep(tmp_path / "sweep")
    sweep = f"sweep_dir={tmp_path / 'sweep'}"
    with pytest.raises(AnalysisError, match=r"^unknown reference preset\(s\) reference.stage2_skp: neither a preset of "
                                            r"conf/experiment/ nor of the analysed runs \(fake\)$"):
        analyze(analyze_config(sweep, f"out_dir={tmp_path / 'out'}", "+reference.stage2_skp={model.skip: false}"))
    assert not (tmp_path / "out").exists()
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out", "+reference.fake={model.skip: false}",
                            "reference.stage2_lr={optimizer.lr: 0.3}")
    assert result.cells.set_index("cell").loc["model.skip=False", "is_reference"]


def test_the_limits_of_the_options_are_allowed(tmp_path: Path, analyze_config) -> None:
    """misclassified=0 (no grid of test errors) and an alpha just inside (0, 1) are options, not errors."""
    from fmnist.analysis.options import check_options

    assert check_options(analyze_config(f"sweep_dir={tmp_path}", "misclassified=0", "alpha=0.999")).alpha == 0.999


def test_bad_out_dir_and_report_dir_are_named(tmp_path: Path, analyze_config) -> None:
    from fmnist.analysis.errors import ReportError
    from fmnist.analysis.options import check_options

    (tmp_path / "file").write_text("x")
    with pytest.raises(AnalysisError, match="out_dir .*file exists and is not a directory"):
        check_options(analyze_config(f"sweep_dir={tmp_path}", f"out_dir={tmp_path / 'file'}"))
    with pytest.raises(AnalysisError, match=f"^data_dir {tmp_path / 'file'} is not a directory$"):
        check_options(analyze_config(f"sweep_dir={tmp_path}", f"data_dir={tmp_path / 'file'}"))
    report = tmp_path / "report"
    report.mkdir()
    with pytest.raises(ReportError, match="has no main.tex"):
        check_options(analyze_config(f"sweep_dir={tmp_path}", "report=true", f"report_dir={report}"))
    (report / "main.tex").write_text("% \\bibliography{old}\n\\bibliography{references}\n")
    with pytest.raises(ReportError, match=r"has no references.bib, which main.tex's \\bibliography needs"):
        check_options(analyze_config(f"sweep_dir={tmp_path}", "report=true", f"report_dir={report}"))
    (report / "references.bib").write_text("")
    check_options(analyze_config(f"sweep_dir={tmp_path}", "report=true", f"report_dir={report}"))


def test_cli_without_sweep_dir_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "analyze.py"), "alpha=0.1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out
    assert out.strip().splitlines() == ["error: no sweep_dir given (or an empty one): python analyze.py "
                                        "sweep_dir=multirun/<date>/<time>_<name>"]


@pytest.mark.parametrize("content", ["[]", "{}", "\"completed\"", "{\"status\": \"comp", "{\"status\": \" \"}"])
def test_summary_that_is_no_json_object_is_an_unreadable_run(tmp_path: Path, content: str) -> None:
    runs = fake_sweep(tmp_path)
    (runs[1] / "summary.json").write_text(content)
    collection = collect(tmp_path)
    assert collection.problems()["run"].tolist() == [runs[1].name]
    assert collection.problems()["status"].tolist() == ["unreadable"]


def test_non_numbers_in_a_summary_are_missing_values_named_in_a_warning(
        tmp_path: Path, analyze_config, caplog: pytest.LogCaptureFixture) -> None:
    runs = fake_sweep(tmp_path / "sweep")
    (runs[1] / "summary.json").write_text((runs[1] / "summary.json").read_text().replace('"test_acc": 0.91',
                                                                                         '"test_acc": "high"'))
    (runs[3] / "summary.json").write_text((runs[3] / "summary.json").read_text().replace('"test_acc": 0.81',
                                                                                         '"test_acc": NaN'))
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    assert f"run {runs[1].name} (fake): summary.json's test_acc is 'high', not a number" in caplog.text
    assert f"run {runs[3].name} (fake): summary.json's test_acc is nan, not a number" in caplog.text
    runs_table = result.collection.runs.set_index("run")
    assert pd.isna(runs_table.loc[runs[1].name, "test_acc"]) and "test_acc" in runs_table.loc[runs[1].name, "issues"]
    cells = result.cells.set_index("cell")
    for cell, acc in (("model.skip=True", 0.90), ("model.skip=False", 0.80)):  # n counts the values used
        assert (cells.loc[cell, "n"], cells.loc[cell, "n_no_value"]) == (1, 1)
        assert cells.loc[cell, "test_acc_mean"] == pytest.approx(acc) and pd.isna(cells.loc[cell, "test_acc_std"])
    assert cells.loc["model.skip=False", "verdict"] == "n < 2"
    assert pd.read_parquet(tmp_path / "out" / "cells.parquet")["n"].tolist() == [1, 1]


def test_damaged_metrics_are_read_as_missing_and_named(tmp_path: Path, analyze_config,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    runs = fake_sweep(tmp_path / "sweep")
    (runs[0] / "metrics.csv").write_text(METRICS_CSV.replace("1.5,0.5", "garbage,0.5"))
    (runs[1] / "metrics.csv").write_text(METRICS_CSV[:-20])          # the last row cut off in the middle
    (runs[2] / "metrics.csv").write_text(METRICS_CSV.split("\n")[0] + "\n")  # header only
    (runs[3] / "metrics.csv").unlink()
    extra = fake_run(tmp_path / "sweep", 4, True, 2, epochs_completed=3)  # metrics.csv has 2 rows
    notes = fake_run(tmp_path / "sweep", 6, False, 3)  # a column of one's own notes: not damaged rows
    (notes / "metrics.csv").write_text(METRICS_CSV.replace("val_acc\n", "val_acc,note\n").replace(
        "0.25\n", "0.25,warm\n").replace("0.45\n", "0.45,fine\n"))
    unreadable = fake_run(tmp_path / "sweep", 5, False, 2)
    (unreadable / "metrics.csv").write_text('epoch,lr\n"1,0.1\n')
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    warned = {r.getMessage().split(" ")[1]: r.getMessage() for r in caplog.records if r.levelname == "WARNING"}
    assert "1 incomplete or non-numeric row(s)" in warned[runs[0].name]
    assert "1 incomplete or non-numeric row(s)" in warned[runs[1].name]
    assert "metrics.csv has no epoch rows" in warned[runs[2].name]
    assert "metrics.csv is missing or empty" in warned[runs[3].name]
    assert "metrics.csv has 2 epoch row(s), summary.json says 3 epochs completed" in warned[extra.name]
    assert "metrics.csv is unreadable (ParserError: " in warned[unreadable.name]
    assert warned[notes.name].endswith("metrics.csv column(s) note hold no numbers: ignored")
    epochs = pd.read_parquet(tmp_path / "out" / "epochs.parquet")
    assert len(epochs) == 4 + 2 + 2 and all(pd.api.types.is_float_dtype(epochs[c]) for c in ("train_loss", "train_acc"))
    runs_table = result.collection.runs.set_index("run")
    assert pd.isna(runs_table.loc[runs[0].name, "train_loss_final"])
    assert runs_table.loc[runs[0].name, "train_acc_final"] == 0.5
    assert pd.isna(runs_table.loc[runs[1].name, "train_acc_final"])
    assert runs_table["issues"].notna().tolist() == [True] * 7
    with style.context():  # the curves of the damaged table still plot
        assert figures.training_curves(result.collection.runs, result.collection.epochs, "fake",
                                       list(result.cells["cell"]), tmp_path / "figs")


def test_a_figure_the_runs_cannot_draw_is_left_out_with_a_warning(tmp_path: Path, analyze_config,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Every metrics.csv without its lr column and a batch size of 0 in the configs: the learning-rate figure
    cannot be drawn; the analysis warns, names it, and writes everything else. A '$' in a swept value is text in
    the figures, not mathtext."""
    runs = fake_sweep(tmp_path / "sweep")
    for run in runs:
        (run / "metrics.csv").write_text(METRICS_CSV.replace("epoch,lr,", "epoch,rate,"))
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["trainer"]["batch_size"] = 0
        (run / "summary.json").write_text(json.dumps(summary))
        overrides = run / ".hydra" / "overrides.yaml"
        overrides.write_text(overrides.read_text() + f"- +note=$\\nope{run.name[0]}$\n")  # invalid as mathtext
    result = analyze(analyze_config(f"sweep_dir={tmp_path / 'sweep'}", f"out_dir={tmp_path / 'out'}",
                                    "dead_neurons=false"))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [m for m in warned if m.startswith("figure ")] == [
        "figure lr_schedules not drawn: ZeroDivisionError: integer division or modulo by zero"]  # batch size 0
    assert {"curves_fake", "accuracy_fake"} <= set(result.figures) and "lr_schedules" not in result.figures
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["figures"] == sorted(result.figures)
    assert (tmp_path / "out" / "cells.csv").is_file() and (tmp_path / "out" / "figures" / "curves_fake.pdf").is_file()


def test_cell_labels_and_keys_are_cut_to_their_last_part_unless_two_would_read_the_same() -> None:
    cells = ["optimizer.lr=0.1, scheduler=cosine, model.depths=[2, 2]", "optimizer.lr=0.3, scheduler=constant"]
    assert short_labels(cells) == ["lr=0.1, scheduler=cosine, depths=[2, 2]", "lr=0.3, scheduler=constant"]
    assert short_labels(["model.width=16, data.width=3"]) == ["model.width=16, data.width=3"]
    assert short_keys(["optimizer.weight_decay", "augment", "model.width", "data.width"]) == [
        "weight_decay", "augment", "model.width", "data.width"]


def test_curves_of_many_cells_get_one_column_of_panels_per_value_of_the_first_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ["optimizer.lr", "scheduler"]
    grid = [(lr, sched) for lr in (0.01, 0.1, 0.3) for sched in ("constant", "cosine", "onecycle")]
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "run_dir": f"/r{i}", "optimizer.lr": lr,
                          "scheduler": sched, "cell": f"optimizer.lr={lr:g}, scheduler={sched}"}
                         for i, (lr, sched) in enumerate(grid)])
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e,
                            "train_acc": 0.5 + e / 10, "val_acc": 0.4 + e / 10}
                           for i in range(len(grid)) for e in (1, 2)])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.training_curves(runs, epochs, "p", list(runs["cell"]), tmp_path, swept=keys)
        figures.training_curves(runs.iloc[:8], epochs, "p", list(runs["cell"][:8]), tmp_path, swept=keys)  # MAX_LINES
    many, few = saved
    assert [ax.get_title() for ax in many.axes[:3]] == ["lr=0.01", "lr=0.1", "lr=0.3"] and len(many.axes) == 6
    assert [len(ax.get_lines()) for ax in many.axes] == [6] * 6  # three schedules, train and validation each
    assert [t.get_text() for t in many.legends[0].get_texts()] == [
        "scheduler=constant", "scheduler=cosine", "scheduler=onecycle", "train", "validation"]
    assert len(few.axes) == 2 and [t.get_text() for t in few.legends[0].get_texts()][:2] == [
        "lr=0.01, scheduler=constant", "lr=0.01, scheduler=cosine"]

def test_a_loss_panel_goes_logarithmic_only_when_one_curve_blows_up(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A validation loss of 10^4 in one cell would flatten every other loss curve on a linear axis; curves that
    span less than figures.LOSS_LOG_SPAN (2.3 down to 0.1 is a factor 23) keep the linear axis."""
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "run_dir": f"/r{i}", "cell": f"c{i}"} for i in (0, 1)])

    def epochs(blow_up: float) -> pd.DataFrame:
        return pd.DataFrame([{"run_dir": f"/r{i}", "epoch": e, "train_loss": 2.3 / e ** 2, "val_loss":
                              (blow_up if i and e == 2 else 2.0 / e ** 2), "train_acc": 0.5, "val_acc": 0.5}
                             for i in (0, 1) for e in (1, 2, 3, 4)])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.training_curves(runs, epochs(1e4), "p", ["c0", "c1"], tmp_path)
        figures.training_curves(runs, epochs(0.5), "p", ["c0", "c1"], tmp_path)
    (loss, acc), (calm_loss, _) = saved[0].axes[:2], saved[1].axes[:2]
    assert loss.get_yscale() == "log" and acc.get_yscale() == "linear" and calm_loss.get_yscale() == "linear"


def test_one_epoch_curves_are_drawn_as_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep of one-epoch runs (a first try on a CPU): a line through one point is not drawn, so the training
    curves were empty axes. Each cell's mean is a marker now (hollow for training), with its ±1 std bar."""
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "run_dir": f"/r{i}", "cell": f"c{i % 2}"}
                         for i in range(4)])
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": 1, "train_loss": 2.3 + 0.01 * i, "val_loss": 2.2,
                            "train_acc": 0.1 + 0.01 * i, "val_acc": 0.2} for i in range(4)])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.training_curves(runs, epochs, "p", ["c0", "c1"], tmp_path)
    for ax in saved[0].axes[:2]:
        points = [line for line in ax.get_lines() if line.get_marker() == "o" and len(line.get_xdata()) == 1]
        assert len(points) == 4, ax.get_ylabel()  # 2 cells x (train, validation)
        assert sorted(str(line.get_markerfacecolor()) for line in points).count("none") == 2
    loss = saved[0].axes[0]
    assert any(len(c.get_segments()) for c in loss.collections)  # the std bars of the two-seed cells


def test_log_axes_are_labelled_in_plain_numbers_at_readable_ticks(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dead = pd.DataFrame([{"optimizer.lr": lr, "activation": "relu", "dead_fraction": 0.01 * i}
                         for i, lr in enumerate((0.01, 0.03, 0.1, 0.3))])
    cells = pd.DataFrame([{"preset": "p", "cell": f"c{i}", "n": 3, "metric": "test_acc", "test_acc_mean": 0.94,
                           "test_acc_std": 0.001, "params_mean": p, "params_std": 0.0, "flops_mean": 10 * p,
                           "flops_std": 0.0, "train_time_s_mean": t, "train_time_s_std": 1.0}
                          for i, (p, t) in enumerate(zip((7e5, 1.3e6, 2.8e6, 5.3e6, 1.1e7, 2.1e7, 2.3e7),
                                                         (21, 38, 49, 87, 111, 202, 240)))])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.dead_vs_lr(dead, tmp_path)
        figures.capacity(cells, tmp_path)

    def labels(ax: plt.Axes) -> list[str]:
        ax.figure.canvas.draw()
        low, high = ax.get_xlim()
        return [t.get_text() for t, x in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= x <= high]

    assert labels(saved[0].axes[0]) == ["0.01", "0.03", "0.1", "0.3"]  # the swept values, not 10^-2 and 10^-1
    assert labels(saved[1].axes[2]) == ["20", "50", "100", "200"]  # training time: not 10^2 alone
    assert labels(saved[1].axes[0]) == ["1M", "2M", "5M", "10M", "20M"]


def test_confusion_matrix_prints_no_zero_for_a_small_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.analysis import image_figures
    from fmnist.analysis.predictions import ClassResults

    confusion = np.diag([1000] * 10)
    confusion[0, 0], confusion[0, 1], confusion[0, 6] = 990, 5, 5  # 0.5 % each: rounds to 0, printed as nothing
    confusion[6, 6], confusion[6, 0], confusion[6, 2] = 890, 100, 10  # 1 % is printed
    per_class = pd.DataFrame({"run_dir": "r", "class": list(range(10)), "accuracy": [0.99] + [1.0] * 9})
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        image_figures.confusion(ClassResults("c", "p", confusion, per_class, pd.DataFrame(), "r"), tmp_path)
    printed = [t.get_text() for t in saved[0].axes[0].texts]
    assert "0" not in printed and printed.count("100") == 8 and {"99", "89", "10", "1"} <= set(printed)
    assert saved[0].axes[0].get_title() == "% of each true class (one run)"  # not "1 runs pooled"


def test_misclassified_grid_shows_the_most_confident_errors_first(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.analysis import image_figures
    from fmnist.analysis.predictions import ClassResults
    from fmnist.data.resplit import ImageSet

    confidence = {0: 0.6, 1: 0.9, 2: 0.7, 3: 0.99}  # id -> probability of its (wrong) prediction; id 3 is right
    predictions = pd.DataFrame([{"id": i, "label": 3, "pred": 5 if i != 3 else 3,
                                 **{f"p{c}": (p if c == (5 if i != 3 else 3) else 0.0) for c in range(10)}}
                                for i, p in confidence.items()])
    test = ImageSet(np.arange(4), np.zeros((4, 28, 28), np.uint8), np.full(4, 3))
    results = ClassResults("c", "p", np.zeros((10, 10), np.int64), pd.DataFrame(), predictions, "r")
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        image_figures.misclassified(results, test, tmp_path, count=2)
        assert image_figures.misclassified(results, test, tmp_path, count=0) == []  # misclassified=0: no grid
    titles = [ax.get_title() for ax in saved[0].axes if ax.get_title()]
    assert titles == ["Dress\n→ Sandal 0.90", "Dress\n→ Sandal 0.70"]


def test_augmentation_figure_applies_each_augmentation_as_the_trainer_does(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Alternating flips get each image's index and the epoch (they raised before); the mixing rows name their λ,
    and the mixed images are λ·own + (1 − λ)·partner with that λ."""
    import torch

    from fmnist.analysis import image_figures
    from fmnist.data.augment import Augment
    from fmnist.data.resplit import ImageSet

    rng = np.random.default_rng(0)
    train = ImageSet(np.arange(20), rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10)
    alternating, mixup = Augment(flip="alternating"), Augment(mixup_alpha=0.2)
    augments = [("alternating", alternating), ("mixup", mixup), ("cutmix", Augment(cutmix_alpha=1.0))]
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        image_figures.augmentations(train, augments, tmp_path, [str(c) for c in range(10)])
    saved[0].canvas.draw()  # renders the λ labels
    names = [ax.get_ylabel() for ax in saved[0].axes[::10]]
    assert names[:2] == ["raw", "alternating"] and names[2].startswith("mixup\nλ = ")
    assert names[3].startswith("cutmix\nλ = ")

    raw = torch.from_numpy(train.images[:10]).float().div(255).unsqueeze(1)
    rows = dict(image_figures.augmented_rows(raw, torch.arange(10), augments))
    flipped = alternating.flip_mask(torch.arange(10), 1)
    assert torch.equal(rows["alternating"], torch.where(flipped.view(-1, 1, 1, 1), raw.flip(-1), raw))
    (name, mixed), = [(n, x) for n, x in rows.items() if n.startswith("mixup")]
    lam = float(name.rsplit("= ", 1)[1])
    for j in range(10):  # each image is its own image mixed with λ (2 decimals) and one partner of the batch
        errors = [float((mixed[j] - lam * raw[j] - (1 - lam) * raw[k]).abs().max()) for k in range(10)]
        assert min(errors) <= 0.006, j


def test_no_labelled_predictions_names_the_cell_and_its_preset(tmp_path: Path, caplog) -> None:
    """A hidden test set (predictions without labels): the warning read "for run all runs" for a plain sweep."""
    from fmnist.analysis.predictions import class_results

    (tmp_path / "predictions_test.csv").write_text("id,pred\n0,3\n")
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert class_results([str(tmp_path)], "all runs", "run") is None
    assert "no labelled predictions_test.csv in cell all runs of preset run: no confusion matrix" in caplog.text


def test_damaged_predictions_and_dead_unit_files_are_named_in_the_issues_column(tmp_path: Path,
                                                                               analyze_config) -> None:
    """As the README says of every damaged run file: a missing predictions_test.csv, a damaged one (of the confusion
    cell or not), a corrupt dead_units.json and dead units that could not be measured are in the run's issues."""
    runs = fake_sweep(tmp_path / "sweep")
    (runs[0] / "predictions_test.csv").unlink()
    (runs[1] / "predictions_test.csv").write_text(PREDICTIONS_CSV.rsplit("\n", 2)[0] + "\n")  # a row cut off
    (runs[2] / "dead_units.json").write_text("{bad")
    result = analyze(analyze_config(f"sweep_dir={tmp_path / 'sweep'}", f"out_dir={tmp_path / 'out'}",
                                    "figures=false", "confusion_cell={preset: fake, model.skip: true}"))
    issues = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("run")["issues"]
    assert issues[runs[0].name].startswith("predictions_test.csv is missing")
    assert issues[runs[1].name].startswith("predictions_test.csv has 3 rows, but the run's test set has 4 images (a "
                                           "truncated or damaged file): left out of the confusion matrices, ")
    assert issues[runs[2].name] == ("dead_units.json is unreadable or incomplete; dead units not measured: its data "
                                    "folder was not found (set data_dir=...)")
    assert issues[runs[3].name] == "dead units not measured: its data folder was not found (set data_dir=...)"
    assert result.classes is None  # both runs of the cell left out: no confusion matrix


def test_a_damaged_predictions_file_outside_the_confusion_cell_is_an_issue_named_once(
        tmp_path: Path, analyze_config, caplog: pytest.LogCaptureFixture) -> None:
    """The audit's sweep: stage2_skip with one run of the skip=False cell (not the confusion cell) cut to 3 rows. Its
    run's issues name the file, and one warning does, though the per-class table, the seed ensembles and the key
    comparison's churn (skip against no skip) all read the predictions of that cell."""
    runs = [*fake_sweep(tmp_path / "sweep"), fake_run(tmp_path / "sweep", 4, False, 2)]  # skip=False: 3 seeds
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["name"] = "stage2_skip"
        (run / "summary.json").write_text(json.dumps(summary))
    path = runs[2] / "predictions_test.csv"
    path.write_text(PREDICTIONS_CSV.rsplit("\n", 2)[0] + "\n")
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out",
                                "confusion_cell={preset: stage2_skip, model.skip: true}")
    problem = ("has 3 rows, but the run's test set has 4 images (a truncated or damaged file): left out of the "
               "confusion matrices, per-class accuracies, calibration, seed ensembles and prediction churn")
    issues = pd.read_csv(tmp_path / "out" / "runs.csv").set_index("run")["issues"]
    assert issues[runs[2].name] == f"predictions_test.csv {problem}"
    assert issues.drop(runs[2].name).isna().all()
    assert [r.getMessage() for r in caplog.records if str(path) in r.getMessage()] == [f"{path} {problem}"]
    assert result.ensembles.set_index("cell").loc["model.skip=False", "n_runs"] == 2  # the other two seeds
    assert result.pair_churn["n_b"].tolist() == [2]  # the key comparison read the cell too


def test_predictions_of_a_hidden_test_set_are_no_issue(tmp_path: Path, analyze_config) -> None:
    """Runs on a test set without labels (no test accuracy) wrote predictions without a label column: there is no
    confusion matrix, and their predictions are not called damaged."""
    unlabelled = "".join(",".join(line.split(",")[:1] + line.split(",")[2:]) + "\n"
                         for line in PREDICTIONS_CSV.splitlines())
    for run in fake_sweep(tmp_path / "sweep", accs=(None,) * 4):
        (run / "predictions_test.csv").write_text(unlabelled)
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    assert result.classes is None and result.collection.runs["issues"].isna().all()
    # nor per-class accuracy or calibration: they need the labels
    assert result.class_runs.empty
    assert result.collection.runs["test_ece"].isna().all() and result.cells["test_ece_mean"].isna().all()
    assert not (tmp_path / "out" / "class_accuracy.csv").exists()


def test_a_complete_sweep_has_no_issues(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake_sweep(tmp_path)
    collection = collect(tmp_path)
    assert collection.runs["issues"].isna().all() and "WARNING" not in {r.levelname for r in caplog.records}
    assert collection.swept == {"fake": ["model.skip"]}


def test_a_failed_run_without_metrics_or_predictions_has_no_issues(tmp_path: Path) -> None:
    """A run that failed before its first epoch wrote no metrics.csv and no predictions_test.csv: its status says
    why, and the issues column (damaged or missing data of a run) stays empty; a completed run lacking them has
    both as issues."""
    runs = fake_sweep(tmp_path)
    failed = fake_run(tmp_path, 4, True, 2, None, status="failed", error="diverged")
    for run in (failed, runs[0]):
        (run / "metrics.csv").unlink()
        (run / "predictions_test.csv").unlink()
    issues = collect(tmp_path).runs.set_index("run")["issues"]
    assert pd.isna(issues[failed.name])
    assert issues[runs[0].name] == "metrics.csv is missing or empty; predictions_test.csv is missing"


@pytest.mark.parametrize("damage", ["unreadable", "missing", "no .hydra"])
def test_unreadable_overrides_do_not_change_the_swept_parameters(tmp_path: Path, damage: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    runs = fake_sweep(tmp_path)
    if damage == "unreadable":
        (runs[2] / ".hydra" / "overrides.yaml").write_text("- [unclosed\n")
    elif damage == "missing":
        (runs[2] / ".hydra" / "overrides.yaml").unlink()
    else:
        shutil.rmtree(runs[2] / ".hydra")
    collection = collect(tmp_path)
    assert collection.swept == {"fake": ["model.skip"]}
    assert collection.runs["cell"].tolist() == ["model.skip=True"] * 2 + ["model.skip=False"] * 2
    assert f"run {runs[2].name} (fake): .hydra/overrides.yaml is missing or unreadable" in caplog.text


def test_a_swept_config_group_of_a_run_without_overrides_is_its_choice(tmp_path: Path) -> None:
    """model=resnet9,resnet18 with one run's overrides.yaml lost: its model is the group option summary.json
    records (resnet18), not the model's config mapping."""
    runs = fake_sweep(tmp_path)
    for run, model in zip(runs, ("resnet9", "resnet9", "resnet18", "resnet18")):
        (run / ".hydra" / "overrides.yaml").write_text(f"- model={model}\n- seed={run.name[-1]}\n")
        summary = json.loads((run / "summary.json").read_text())
        summary.update(choices={"model": model})
        summary["config"]["model"] = {"depth": 9 if model == "resnet9" else 18}
        (run / "summary.json").write_text(json.dumps(summary))
    (runs[2] / ".hydra" / "overrides.yaml").unlink()
    collection = collect(tmp_path)
    assert collection.swept == {"fake": ["model"]}
    assert collection.runs["cell"].tolist() == ["model=resnet9"] * 2 + ["model=resnet18"] * 2


def test_a_preset_that_sweeps_only_seeds_is_one_cell_of_all_its_runs(tmp_path: Path) -> None:
    fake_run(tmp_path, 0, True, 0)
    fake_run(tmp_path, 1, True, 1)
    collection = collect(tmp_path)
    assert collection.swept == {"fake": []} and collection.runs["cell"].tolist() == ["all runs"] * 2


def test_each_column_of_the_run_table_has_one_type_and_keeps_its_missing_values() -> None:
    """Whole numbers stay integers (a seed is 1, not 1.0, in runs.csv), flags stay flags, a column mixing a flag and a
    word (a mistyped override) becomes text; a missing value stays missing."""
    from fmnist.analysis.collect import tidy

    seeds = tidy(pd.Series([0, 1, 2], name="seed"))
    assert str(seeds.dtype) == "Int64" and seeds.to_csv(index=False).split() == ["seed", "0", "1", "2"]
    assert str(tidy(pd.Series([True, None])).dtype) == "boolean"
    assert str(tidy(pd.Series([1, 2.5])).dtype) == "float64"
    assert tidy(pd.Series([True, "flase", float("nan")])).tolist() == ["True", "flase", pd.NA]


def test_run_dirs_copied_without_their_hydra_folder_read_summary_overrides(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """`cp -r sweep/*` leaves the hidden .hydra/ behind: summary.json's copy of the overrides names the swept
    parameter (the configs alone would also differ in keys that follow from it); a choices entry that is not a
    mapping and a status that is not a string are issues, not tracebacks."""
    runs = fake_sweep(tmp_path)
    for run in runs:
        overrides = (run / ".hydra" / "overrides.yaml").read_text().replace("- ", "").split()
        summary = json.loads((run / "summary.json").read_text())
        summary.update(overrides=overrides, choices=summary["choices"] if run != runs[0] else ["resnet9"])
        summary["status"] = summary["status"] if run != runs[1] else 5
        (run / "summary.json").write_text(json.dumps(summary))
        shutil.rmtree(run / ".hydra")
    collection = collect(tmp_path)
    assert collection.swept == {"fake": ["model.skip"]} and "overrides.yaml" not in caplog.text
    assert collection.runs["status"].tolist() == ["completed", "unreadable", "completed", "completed"]
    assert "summary.json's choices is list, not a mapping" in caplog.text


def test_swept_keys_of_a_run_rebuilt_from_its_config() -> None:
    runs = [{"model.skip": True, "seed": 0, "trainer.epochs": 2}, {"model.skip": False, "trainer.epochs": 2},
            {"model.skip": False}]
    assert swept_keys(runs) == ["model.skip", "trainer.epochs"]
    assert swept_keys(runs, [False, False, True]) == ["model.skip"]  # the last one's epochs are unknown, not unset


def test_runs_that_differ_in_an_unswept_setting_are_never_pooled(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The same preset in two sweeps, the second after its learning rate changed (not on the command line): the
    runs' overrides agree, their configs do not, so the learning rate becomes a swept parameter of the cells."""
    fake_sweep(tmp_path / "a")
    for run in fake_sweep(tmp_path / "b", accs=(0.5, 0.51, 0.4, 0.41)):
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["optimizer"]["lr"] = 0.05
        (run / "summary.json").write_text(json.dumps(summary))
    collection = collect([tmp_path / "a", tmp_path / "b"])
    assert collection.swept == {"fake": ["model.skip", "optimizer.lr"]}
    assert collection.runs.groupby("cell").size().to_dict() == {
        "model.skip=True, optimizer.lr=0.1": 2, "model.skip=False, optimizer.lr=0.1": 2,
        "model.skip=True, optimizer.lr=0.05": 2, "model.skip=False, optimizer.lr=0.05": 2}
    assert "differ in optimizer.lr" in caplog.text
    assert collect(tmp_path / "a").swept == {"fake": ["model.skip"]}  # neutral keys and seeds split nothing


def test_runs_that_differ_in_an_unswept_list_setting_are_never_pooled(tmp_path: Path) -> None:
    """As above, with a list-valued config key (a scheduler's milestones changed in conf/, not on the command line):
    the key is swept, and its values keep the runs apart instead of both reading as missing."""
    fake_sweep(tmp_path / "a")
    for path, milestones in ((tmp_path / "a", [0.5, 0.75]), (tmp_path / "b", [0.3, 0.6])):
        runs = fake_sweep(path) if path.name == "b" else sorted(path.iterdir())
        for run in runs:
            summary = json.loads((run / "summary.json").read_text())
            summary["config"]["scheduler"] = {"milestones": milestones}
            (run / "summary.json").write_text(json.dumps(summary))
    collection = collect([tmp_path / "a", tmp_path / "b"])
    assert collection.swept == {"fake": ["model.skip", "scheduler.milestones"]}
    assert sorted(collection.runs.groupby("cell").size()) == [2, 2, 2, 2]
    assert (collection.runs["status"] == "completed").all()  # not duplicates of the other sweep's runs
    assert stats.aggregate(collection)["n"].tolist() == [2, 2, 2, 2]


def write_multirun_yaml(sweep: Path, params: dict[str, str], task: list[str] | None = None,
                        sweeper: str = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper") -> None:
    """The parts of Hydra's multirun.yaml that the missing-jobs check reads: the sweeper, its params and the
    command line's overrides."""
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"_target_": sweeper, "params": params}, "overrides": {"task": task or []}}, "name": "fake"}))


def test_jobs_without_a_run_dir_are_problems(tmp_path: Path, analyze_config, caplog: pytest.LogCaptureFixture) -> None:
    sweep = tmp_path / "sweep"
    runs = fake_sweep(sweep)
    shutil.rmtree(runs[3])
    write_multirun_yaml(sweep, {"model.skip": "true,false", "seed": "0,1,2"}, ["seed=0,1", "trainer.epochs=2"])
    result = quick_analysis(analyze_config, sweep, tmp_path / "out")
    problems = pd.read_csv(tmp_path / "out" / "problems.csv")
    assert problems[["preset", "run", "status"]].values.tolist() == [["fake", "job 3 model.skip=False seed=1",
                                                                      "missing"]]
    assert "multirun.yaml of this sweep launched 4 jobs" in problems["error"].item()
    assert "missing run job 3 model.skip=False seed=1 (fake)" in caplog.text
    assert len(result.collection.runs) == 3  # no made-up run rows
    (sweep / "multirun.yaml").write_text("hydra: [unclosed\n")  # unreadable: nothing to compare, a warning
    assert collect(sweep).problems().empty and "cannot read the jobs of" in caplog.text


def test_missing_jobs_of_a_sweep_that_is_training_now_may_not_have_started(tmp_path: Path) -> None:
    """Analysing a sweep while it trains: its jobs without a run dir are said to be perhaps not started yet."""
    import fcntl

    sweep = tmp_path / "sweep"
    runs = fake_sweep(sweep)
    shutil.rmtree(runs[3])
    write_multirun_yaml(sweep, {"model.skip": "true,false", "seed": "0,1"})
    summary = json.loads((runs[0] / "summary.json").read_text())
    (runs[0] / "summary.json").write_text(json.dumps({**summary, "status": "running", "error": None}))
    (runs[0] / ".lock").write_text("12345")
    launched = "no run dir: multirun.yaml of this sweep launched 4 jobs"
    assert collect(sweep).missing["error"].tolist() == [launched]  # a stale lock file: the sweep is not running
    with open(runs[0] / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        missing = collect(sweep).missing
    assert missing["error"].tolist() == [f"{launched}; not started yet, perhaps: the sweep is still running "
                                         "(1 training now)"]
    assert missing["status"].tolist() == ["missing"]


def test_jobs_past_the_ninth_and_foreign_sweepers(tmp_path: Path) -> None:
    """Job 10 of a 12-job sweep is found by its number; a multirun.yaml of another sweeper (its jobs are not the grid
    of its params) is not compared."""
    from fmnist.analysis.grid import missing_jobs

    sweep = tmp_path / "sweep"
    dirs = [sweep / f"{job}_seed={job}" for job in range(12) if job != 10]
    for d in dirs:
        d.mkdir(parents=True)
    params = {"seed": ",".join(map(str, range(12)))}
    write_multirun_yaml(sweep, params)
    presets = dict.fromkeys(dirs, "fake")
    (missing,) = missing_jobs(dirs, presets)
    assert (missing["run"], missing["run_dir"]) == ("job 10 seed=10", str(sweep))  # the sweep: job 10 has no run dir
    write_multirun_yaml(sweep, params, sweeper="hydra_plugins.hydra_optuna_sweeper.OptunaSweeper")
    assert missing_jobs(dirs, presets) == []


def test_run_dirs_named_by_their_job_number_alone_are_matched_to_the_grid(tmp_path: Path) -> None:
    """With `hydra.sweep.subdir=${hydra.job.num}` run dirs are named `0`, `1`, ...: the job order and the missing
    jobs read their numbers as from `0_seed=0`, and a name that does not start with a number is no job."""
    from fmnist.analysis.grid import job_number, missing_jobs

    assert [job_number(n) for n in ("3", "3_seed=1", "12", "3x", "seed=3", "_3")] == [3, 3, 12, None, None, None]
    sweep = tmp_path / "sweep"
    dirs = [sweep / str(job) for job in (0, 2)]
    for d in dirs:
        d.mkdir(parents=True)
    write_multirun_yaml(sweep, {"seed": "0,1,2"})
    assert [row["run"] for row in missing_jobs(dirs, dict.fromkeys(dirs, "fake"))] == ["job 1 seed=1"]
    named = [sweep / "seed=0", sweep / "seed=1"]  # no job numbers (a subdir of its own): no job can be matched
    assert missing_jobs(named, dict.fromkeys(named, "fake")) == []


def test_one_run_dir_of_a_sweep_analysed_alone_misses_no_job(tmp_path: Path) -> None:
    """sweep_dir naming one run dir (or a few) of a complete sweep: the sweep's other jobs are not "missing"."""
    runs = fake_sweep(tmp_path / "sweep")
    write_multirun_yaml(tmp_path / "sweep", {"model.skip": "true,false", "seed": "0,1"}, ["trainer.epochs=2"])
    assert collect(runs[0]).problems().empty and collect(runs[1:3]).problems().empty
    shutil.rmtree(runs[3])
    assert collect(tmp_path / "sweep").problems()["run"].tolist() == ["job 3 model.skip=False seed=1"]
    assert collect(tmp_path).problems()["run"].tolist() == ["job 3 model.skip=False seed=1"]  # a folder of sweeps
    shutil.rmtree(runs[0])
    assert collect(tmp_path / "sweep").problems()["run"].tolist() == ["job 0 model.skip=True seed=0",
                                                                       "job 3 model.skip=False seed=1"]


def write_predictions(run_dir: Path, labels: list[int], preds: list[int], n_classes: int,
                      probs: list[list[float]] | None = None, ids: list[int] | None = None) -> None:
    """`run_dir`/predictions_test.csv (the folder made if needed): one row per image, ids 0.. unless `ids`, every
    class equally probable unless `probs` (one list of `n_classes` per image)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    uniform = [1 / n_classes] * n_classes
    rows = zip(ids or range(len(labels)), labels, preds, probs or [uniform] * len(labels))
    (run_dir / "predictions_test.csv").write_text(
        "id,label,pred," + ",".join(f"p{c}" for c in range(n_classes)) + "\n"
        + "".join(f"{i},{t},{p}," + ",".join(f"{v:.6f}" for v in ps) + "\n" for i, t, p, ps in rows))


def test_the_confusion_cell_is_of_the_preset_it_names(tmp_path: Path) -> None:
    """Two presets that sweep only seeds both have the cell "all runs": confusion_cell={preset: other} names the
    other preset's, and its confusion matrix pools that preset's runs only."""
    from fmnist.analysis.pipeline import cell_classes

    for job in (0, 1):
        fake_run(tmp_path / "fake", job, True, job)
        other = fake_run(tmp_path / "other", job, True, job)
        summary = json.loads((other / "summary.json").read_text())
        summary["config"]["name"] = "other"
        (other / "summary.json").write_text(json.dumps(summary))
    fake_run(tmp_path / "fake", 2, True, 2)
    collection = collect(tmp_path)
    cells = pd.DataFrame([{"preset": p, "cell": "all runs", "n": n, "best_val_acc_mean": 0.5}
                          for p, n in (("fake", 3), ("other", 2))])
    chosen = choose_cell(cells, {"preset": "other"})
    assert chosen["preset"] == "other"
    classes = cell_classes(collection, chosen)
    assert classes.n_runs == 2 and classes.confusion.sum() == 2 * 4


def test_confusion_rows_are_true_classes_and_per_class_accuracy_is_over_seeds(tmp_path: Path) -> None:
    """Two seeds' predictions of 8 images of 3 classes, pooled: the confusion matrix counts (true, predicted) with
    true classes as rows; per-class accuracy is each class's share right, mean and sample std (ddof 1) over the
    seeds; a top confusion's rate is its share of its true class's images."""
    from fmnist.analysis.predictions import class_results

    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    write_predictions(tmp_path / "a", labels, [0, 0, 0, 1, 1, 1, 2, 0], 3)  # per class right: 3/4, 2/2, 1/2
    write_predictions(tmp_path / "b", labels, [0, 0, 1, 1, 1, 0, 2, 2], 3)  # 2/4, 1/2, 2/2
    results = class_results([str(tmp_path / "a"), str(tmp_path / "b")], "cell", "preset", ("a", "b", "c"),
                            test_sizes=[8, 8])
    np.testing.assert_array_equal(results.confusion, [[5, 3, 0], [1, 3, 0], [1, 0, 3]])
    accuracy = results.class_accuracy().set_index("class")
    assert accuracy["mean"].to_dict() == pytest.approx({"a": 0.625, "b": 0.75, "c": 0.75})
    assert accuracy.loc["a", "std"] == pytest.approx(0.25 / np.sqrt(2))  # |0.75 - 0.5| / sqrt(2): ddof 1
    (top,) = results.top_confusions(1).to_dict("records")
    assert (top["true"], top["pred"], top["count"], top["rate"]) == ("a", "b", 3, pytest.approx(3 / 8))
    assert results.top_confusions(5)["count"].tolist() == [3, 1, 1]  # only the pairs confused at all
    assert results.run_dir == str(tmp_path / "a")  # the misclassified grid shows the first run's errors
    later = class_results([str(tmp_path / "none"), str(tmp_path / "b")], "cell", "preset", ("a", "b", "c"))
    assert later.run_dir == str(tmp_path / "b")  # the first run with predictions
    four = class_results([str(tmp_path / "a")], "cell", "preset", ("a", "b", "c", "d"))
    assert four.class_accuracy()["class"].tolist() == ["a", "b", "c"]  # d has no test image: no accuracy
    np.testing.assert_array_equal(four.confusion[3], [0, 0, 0, 0])


def test_every_completed_run_gets_per_class_accuracies_read_once(tmp_path: Path, analyze_config,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """class_accuracy.csv: one row per completed run with readable labelled predictions and class with test images
    (fake runs: images 0..3 of classes 0..3, all right, except one run that gets image 3 wrong); a damaged file is
    named once, though both the per-class table and the confusion cell use it; a failed run is not read."""
    runs = fake_sweep(tmp_path / "sweep")
    (runs[1] / "predictions_test.csv").write_text(PREDICTIONS_CSV.replace("\n3,3,3,", "\n3,3,2,"))
    (runs[2] / "predictions_test.csv").write_text(PREDICTIONS_CSV[:40])  # truncated
    failed = json.loads((runs[3] / "summary.json").read_text())
    (runs[3] / "summary.json").write_text(json.dumps({**failed, "status": "failed", "test_acc": None}))
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out", "confusion_cell={model.skip:false}")
    table = pd.read_csv(tmp_path / "out" / "class_accuracy.csv")
    assert list(table.columns) == ["run_dir", "preset", "cell", "seed", "class", "images", "correct", "accuracy"]
    assert sorted(set(table["run_dir"])) == sorted(str(r.resolve()) for r in runs[:2])
    assert table["class"].tolist() == ["T-shirt/top", "Trouser", "Pullover", "Dress"] * 2  # classes with images
    assert table["images"].eq(1).all() and table["accuracy"].tolist() == [1.0] * 7 + [0.0]
    assert table["correct"].tolist() == [1] * 7 + [0] and table["seed"].tolist() == [0] * 4 + [1] * 4
    assert set(table["cell"]) == {"model.skip=True"} and set(table["preset"]) == {"fake"}
    damaged = [r for r in caplog.records if str(runs[2] / "predictions_test.csv") in r.getMessage()]
    assert len(damaged) == 1 and damaged[0].getMessage().endswith(
        "left out of the confusion matrices, per-class accuracies, calibration, seed ensembles and prediction churn")
    assert result.classes is None  # the confusion cell's only completed run has no readable predictions
    assert result.class_runs["accuracy"].tolist() == table["accuracy"].tolist()


def test_calibration_of_the_test_predictions_goes_into_the_run_and_cell_tables(tmp_path: Path, analyze_config) -> None:
    """Run 0 puts 0.8 on the right class of each of its 4 images (under-confident: ECE 0.2), run 1 is certain and
    right (ECE 0); a run without probability columns, or without predictions (a third seed of the first cell), has no
    calibration (NaN), and the cell averages the others."""
    runs = fake_sweep(tmp_path / "sweep")
    (fake_run(tmp_path / "sweep", 4, True, 2) / "predictions_test.csv").unlink(missing_ok=True)
    write_predictions(runs[0], [0, 1, 2, 3], [0, 1, 2, 3], 10,
                      probs=[[0.8 if c == i else 0.2 / 9 for c in range(10)] for i in range(4)])
    (runs[2] / "predictions_test.csv").write_text("id,label,pred\n0,0,0\n1,1,1\n2,2,2\n3,3,3\n")
    quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "runs.csv").sort_values("run_dir")
    assert table["test_ece"].tolist()[:2] == pytest.approx([0.2, 0.0]) and np.isnan(table["test_ece"].iloc[2])
    assert Path(table["run_dir"].iloc[4]).name.startswith("4_") and np.isnan(table["test_ece"].iloc[4])
    assert table["test_nll"].tolist()[:2] == pytest.approx([-np.log(0.8), 0.0])
    assert table["test_confidence"].tolist()[:2] == pytest.approx([0.8, 1.0])
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index("cell")
    assert cells.loc["model.skip=True", "test_ece_mean"] == pytest.approx(0.1)
    assert cells.loc["model.skip=False", "test_ece_mean"] == pytest.approx(0.0)  # run 2 left out, run 3 certain


def test_truncated_predictions_are_left_out_of_the_confusion_matrix(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    from fmnist.analysis.predictions import class_results

    rows = "id,label,pred," + ",".join(f"p{c}" for c in range(10)) + "\n"
    probs = ",".join(["0.1"] * 10)
    full = rows + "".join(f"{i},{i % 10},{i % 10},{probs}\n" for i in range(20))
    runs = [tmp_path / name for name in ("a", "b", "c", "d", "e", "f", "g", "h", "i")]
    for run in runs:
        run.mkdir()
        (run / "predictions_test.csv").write_text(full)
    (runs[1] / "predictions_test.csv").write_text(full[: len(full) // 2])    # cut in the middle of a row
    (runs[2] / "predictions_test.csv").write_text(full.replace("\n19,9,9", "\n19,9,x"))
    (runs[3] / "predictions_test.csv").write_text(full.replace(",pred,", ",guess,"))
    (runs[4] / "predictions_test.csv").write_text(full.replace("\n7,7,7,0.1,", "\n7,7,7,high,"))
    (runs[5] / "predictions_test.csv").write_bytes(b"id,label\n\"1,2\n")  # an unterminated quote: unreadable
    (runs[6] / "predictions_test.csv").write_text(full + f"20,0,0,{probs}\n")  # a row too many
    (runs[7] / "predictions_test.csv").write_text(full.replace("\n19,9,9", "\n19,10,9"))  # no class 10
    (runs[8] / "predictions_test.csv").write_text(full.replace("\n3,3,3,", "\nthree,3,3,"))  # an id that is no number
    results = class_results([str(r) for r in runs], "cell", "preset", test_sizes=[20] * 9)
    assert results.n_runs == 1 and results.confusion.sum() == 20
    file = "predictions_test.csv"
    assert f"{runs[1] / file} has 10 rows, but the run's test set has 20 images" in caplog.text
    assert f"{runs[2] / file} has pred values that are missing or not classes 0..9" in caplog.text
    assert f"{runs[3] / file} has no pred column" in caplog.text
    assert f"{runs[4] / file} has ids or probabilities that are missing or not numbers" in caplog.text
    assert (f"{runs[5] / file} is unreadable (ParserError): left out of the confusion matrices and per-class "
            "accuracies") in caplog.text
    assert f"{runs[6] / file} has 21 rows, but the run's test set has 20 images" in caplog.text
    assert f"{runs[7] / file} has label values that are missing or not classes 0..9" in caplog.text
    assert f"{runs[8] / file} has ids or probabilities that are missing or not numbers" in caplog.text


def test_an_out_dir_that_cannot_be_written_is_named_before_the_runs_are_measured(
        tmp_path: Path, analyze_config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only folder (here: access() says so, as it does for a read-only mount) stops the analysis before the
    dead-neuron measurements, naming the folder that cannot be written."""
    from fmnist.analysis import options, pipeline

    sweep, locked = tmp_path / "sweep", tmp_path / "locked"
    fake_sweep(sweep)
    locked.mkdir()
    monkeypatch.setattr(options.os, "access", lambda path, mode: Path(path) != locked)
    monkeypatch.setattr(pipeline, "dead_neuron_tables", lambda *a: pytest.fail("measured before the check"))
    with pytest.raises(AnalysisError, match=f"cannot write to out_dir {re.escape(str(locked / 'a' / 'b'))}: "
                                            f"{re.escape(str(locked))} is not writable"):
        analyze(analyze_config(f"sweep_dir={sweep}", f"out_dir={locked / 'a' / 'b'}"))
    assert options.unwritable(tmp_path / "elsewhere" / "new") is None


def test_out_dir_is_replaced_only_when_the_whole_analysis_succeeded(tmp_path: Path, analyze_config,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.analysis import pipeline
    from fmnist.errors import FmnistError

    sweep, out = tmp_path / "sweep", tmp_path / "out"
    fake_sweep(sweep)
    quick_analysis(analyze_config, sweep, out)
    stale = [out / "dead_neurons.csv", out / "dead_neurons.parquet", out / "figures" / "curves_old.pdf",
             out / "figures" / "curves_old.png"]
    mine = [out / "notes.txt", out / "figures" / "mine.txt", out / "figures" / "my_plot.png"]
    for path in stale + mine:
        path.parent.mkdir(exist_ok=True)
        path.write_text("earlier")
    meta = json.loads((out / "analysis.json").read_text())  # as if the earlier analysis had drawn curves_old
    (out / "analysis.json").write_text(json.dumps(meta | {"figures": ["curves_old"]}))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        raise FmnistError("disk full")

    fake_run(sweep, 4, True, 2, 0.95)
    monkeypatch.setattr(pipeline, "write_json", fail)  # the last file of the analysis
    with pytest.raises(FmnistError, match="disk full"):
        quick_analysis(analyze_config, sweep, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched, no staging left
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    monkeypatch.undo()
    quick_analysis(analyze_config, sweep, out)
    assert len(pd.read_csv(out / "runs.csv")) == 5 and json.loads((out / "analysis.json").read_text())["runs"] == 5
    assert not any(p.exists() for p in stale) and all(p.read_text() == "earlier" for p in mine)

    for blocker, made in ((out / "runs.parquet", "mkdir"), (out / "figures", "write_text")):
        kept = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        shutil.rmtree(blocker) if blocker.is_dir() else blocker.unlink()
        blocker.mkdir() if made == "mkdir" else blocker.write_text("a file where a folder goes")
        kept = {p: b for p, b in kept.items() if blocker not in (p, *p.parents)}
        kind = "a folder" if made == "mkdir" else "a file"
        with pytest.raises(FmnistError, match=f"{re.escape(str(blocker))} is {kind}"):
            analyze(analyze_config(f"sweep_dir={sweep}", f"out_dir={out}", "dead_neurons=false"))
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and blocker not in (p, *p.parents)} == kept
        shutil.rmtree(blocker) if blocker.is_dir() else blocker.unlink()

    fresh = tmp_path / "fresh"  # a failed first analysis leaves no out_dir behind
    monkeypatch.setattr(pipeline, "write_json", fail)
    with pytest.raises(FmnistError):
        quick_analysis(analyze_config, sweep, fresh)
    assert not fresh.exists()


def test_an_out_dir_that_cannot_be_made_is_one_error(tmp_path: Path, analyze_config) -> None:
    fake_sweep(tmp_path / "sweep")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AnalysisError, match=f"^cannot write to out_dir {tmp_path / 'file' / 'out'}: Not a directory$"):
        quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "file" / "out")


def test_publish_replaces_every_file_of_the_previous_analysis_and_only_those(tmp_path: Path) -> None:
    """Each table of the previous analysis (dangling links included) and the figures its analysis.json lists are
    removed when the new one did not write them, and figures/ when it is left empty; other files stay. A damaged
    analysis.json names no figure."""
    from fmnist.analysis import outputs

    out, staging = tmp_path / "out", tmp_path / "staging"
    (out / "figures").mkdir(parents=True)
    tables = [out / f"{name}.{ext}" for name in outputs.TABLES for ext in ("csv", "parquet")]
    for path in tables[:-1] + [out / "figures" / "old.pdf", out / "figures" / "old.png", out / "notes.txt"]:
        path.write_text("earlier")
    tables[-1].symlink_to(out / "gone")  # dead_neurons_by_layer.parquet
    assert "dead_neurons_by_layer" in outputs.TABLES
    for damaged in ("not json", "[1]"):
        (out / "analysis.json").write_text(damaged)
        assert outputs.generated(out) == tables + [out / "analysis.json"]
    (out / "analysis.json").write_text(json.dumps({"figures": ["old"]}))
    staging.mkdir()
    (staging / "runs.csv").write_text("new")
    (staging / "analysis.json").write_text(json.dumps({"figures": []}))
    outputs.publish(staging, out)
    assert sorted(p.name for p in out.rglob("*")) == ["analysis.json", "notes.txt", "runs.csv"]
    assert (out / "runs.csv").read_text() == "new"


def test_a_table_the_new_analysis_does_not_write_is_not_left_from_the_previous_one(tmp_path: Path) -> None:
    """The ensembles of a two-seed analysis stayed in out_dir after a one-seed analysis replaced it (and so did
    class_accuracy, key_churn): a folder mixing two analyses. Every table write_tables writes is the analysis's."""
    from types import SimpleNamespace

    from fmnist.analysis import outputs
    from fmnist.analysis.pipeline import write_tables

    frame = pd.DataFrame({"x": [1]})
    everything = SimpleNamespace(collection=SimpleNamespace(runs=frame, epochs=frame, problems=lambda: frame),
                                 **dict.fromkeys(("cells", "class_runs", "ensembles", "pair_churn", "dead_runs",
                                                  "dead_layers"), frame))
    out, staging = tmp_path / "out", tmp_path / "staging"
    out.mkdir()
    write_tables(everything, out)
    staging.mkdir()
    (staging / "runs.csv").write_text("new")
    outputs.publish(staging, out)
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv"]


def test_a_failed_analysis_removes_only_the_out_dir_it_made(tmp_path: Path) -> None:
    from fmnist.analysis import outputs

    for out, existed in ((tmp_path / "made", False), (tmp_path / "mine", True)):
        if existed:
            out.mkdir()
        with pytest.raises(RuntimeError), outputs.staged(out) as staging:
            (staging / "runs.csv").write_text("half")
            raise RuntimeError("failed part-way")
        assert out.is_dir() == existed and (not existed or list(out.iterdir()) == [])


def _previous_and_next_analysis(out: Path, staging: Path) -> dict[Path, bytes]:
    """An analysis in `out` (tables, a figure, a file of the user's) and a new one in `staging` that replaces some of
    its files, adds one and drops its figure; returns `out`'s files."""
    (out / "figures").mkdir(parents=True)
    for path, text in ((out / "runs.csv", "old"), (out / "cells.csv", "old"), (out / "figures" / "old.pdf", "old"),
                       (out / "notes.txt", "mine"), (out / "analysis.json", json.dumps({"figures": ["old"]}))):
        path.write_text(text)
    (staging / "figures").mkdir(parents=True, exist_ok=True)
    for path, text in ((staging / "runs.csv", "new"), (staging / "epochs.csv", "new"), (staging / "cells.csv", "new"),
                       (staging / "figures" / "new.pdf", "new"), (staging / "analysis.json", '{"figures": ["new"]}')):
        path.write_text(text)
    return {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and ".analysis-staging-" not in str(p)}


@pytest.mark.parametrize("stop", [KeyboardInterrupt("SIGTERM"), OSError(16, "Device or resource busy")])
def test_an_analysis_stopped_while_it_replaces_the_previous_one_puts_that_back(stop: BaseException, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               stop_at_rename) -> None:
    """Ctrl-C (SIGTERM) or an error between two of the renames that publish the new analysis left out_dir half new,
    half old (runs.csv new, cells.csv old, analysis.json naming figures that were not there), though the analysis said
    the previous one was kept."""
    out = tmp_path / "out"
    with pytest.raises(type(stop) if isinstance(stop, KeyboardInterrupt) else AnalysisError):
        with staged(out) as staging:
            before = _previous_and_next_analysis(out, staging)
            stop_at_rename(3, stop)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_an_analysis_killed_while_it_replaces_the_previous_one_is_undone_by_the_next(tmp_path: Path,
                                                                                     killed_at_third_rename) -> None:
    """kill -9 between two of those renames: the next analysis into out_dir first puts the previous one back (here
    the next fails, so out_dir is left as the killed one found it)."""
    out = tmp_path / "out"
    before = _previous_and_next_analysis(out, out / ".analysis-staging-killed")
    killed_at_third_rename("from fmnist.analysis import outputs",
                           f"outputs.publish(Path({str(out / '.analysis-staging-killed')!r}), Path({str(out)!r}))")
    assert (out / "cells.csv").read_text() == "new" and (out / "runs.csv").read_text() == "old"  # killed half-way
    with pytest.raises(RuntimeError), staged(out):
        raise RuntimeError("this analysis fails too")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".analysis-staging-")] == []


#: A process that writes an analysis tagged argv[1] (every table, analysis.json and 3 figures of its own) into
#: out_dir argv[2], its renames slowed, and touches argv[3] at its first rename.
_SLOW_ANALYSIS = """
import json, os, sys, time
from pathlib import Path
from fmnist.analysis import outputs
tag, out, started = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real = os.replace
def replace(src, dst):
    started.touch()
    time.sleep(0.05)
    real(src, dst)
os.replace = replace
with outputs.staged(out) as staging:
    figures = [f"{tag}_{i}" for i in range(3)]
    (staging / "figures").mkdir()
    for name in [f"{t}.{ext}" for t in outputs.TABLES for ext in ("csv", "parquet")] + [
            f"figures/{f}{suffix}" for f in figures for suffix in outputs.FIGURE_SUFFIXES]:
        (staging / name).write_text(tag)
    (staging / outputs.META_FILE).write_text(json.dumps({"figures": figures, "tag": tag}))
"""


def test_two_analyses_into_one_out_dir_at_once_leave_all_the_files_of_one(tmp_path: Path) -> None:
    """analyze.py run twice into one out_dir, the second publishing while the first's renames run: their renames
    interleaved (the first's figures beside the earlier analysis.json), or the second failed removing a file the first
    had just removed, rolling back over the first's files. Now the second waits for the first: both finish and out_dir
    holds only the second's files (a file of the user's stays)."""
    from fmnist.analysis import outputs

    out = tmp_path / "out"
    subprocess.run([sys.executable, "-c", _SLOW_ANALYSIS, "earlier", out, tmp_path / "0"], check=True, cwd=ROOT)
    (out / "notes.txt").write_text("mine")
    first = subprocess.Popen([sys.executable, "-c", _SLOW_ANALYSIS, "first", out, tmp_path / "1"], cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "1").exists() and first.poll() is None:  # the first is publishing: its renames run
        time.sleep(0.01)
    second = subprocess.run([sys.executable, "-c", _SLOW_ANALYSIS, "second", out, tmp_path / "2"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert (first.wait(timeout=120), first.stderr.read(), second.returncode, second.stderr) == (0, "", 0, "")
    files = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert files.pop("notes.txt") == "mine" and json.loads(files.pop("analysis.json"))["tag"] == "second"
    assert set(files.values()) == {"second"} and len(files) == 2 * len(outputs.TABLES) + 3 * 2


def test_a_run_whose_activation_target_was_overridden_is_named_by_its_class(tmp_path: Path) -> None:
    """-m activation._target_=torch.nn.ReLU,torch.nn.Mish on relu: both runs' choice is relu, and the dead-unit table
    pooled ReLU and Mish as one "relu" row. A run's activation is its option unless its target is not the option's
    (conf/activation/<option>.yaml); a user's option (no such file) keeps its name."""
    from fmnist.analysis.pipeline import activation_label

    def run(choice: str, target: str | None) -> pd.Series:
        run_dir = tmp_path / f"{choice}-{target}"
        run_dir.mkdir()
        config = {} if target is None else {"activation": {"_target_": target, "_partial_": True}}
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "config": config}))
        return pd.Series({"run_dir": str(run_dir), "activation": choice})

    assert activation_label(run("relu", "torch.nn.ReLU")) == "relu"
    assert activation_label(run("relu", "torch.nn.Mish")) == "Mish"
    assert activation_label(run("mish", "torch.nn.Mish")) == "mish"  # a user's option
    assert activation_label(run("gelu", None)) == "gelu"  # no readable config: the choice


def test_a_run_of_the_same_preset_cell_and_seed_counts_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The same sweep launched into two folders and both analysed: the second copy of each seed is a problem, not a
    third and fourth seed that agree."""
    first = fake_sweep(tmp_path / "a")
    again = fake_run(tmp_path / "b", 0, True, 0, 0.95)  # skip=True, seed 0 once more
    other_seed = fake_run(tmp_path / "b", 1, True, 2, 0.92)
    collection = collect([tmp_path / "a", tmp_path / "b"])
    runs = collection.runs.set_index("run_dir")
    assert runs.loc[str(again), "status"] == "duplicate" and str(first[0]) in runs.loc[str(again), "error"]
    assert runs.loc[str(other_seed), "status"] == "completed" and (runs["status"] == "completed").sum() == 5
    assert list(collection.problems()["run_dir"]) == [str(again)]
    assert any("counted once" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_the_cells_of_each_preset_are_named_by_its_own_swept_keys(tmp_path: Path) -> None:
    """Two presets analysed together, one sweeping model.skip, the other optimizer.lr: a cell's label names only
    what its own preset sweeps."""
    skip = fake_sweep(tmp_path / "skip")
    lr = [fake_run(tmp_path / "lr", job, True, 0) for job in (0, 1)]
    for run, value in zip(lr, (0.1, 0.01)):
        (run / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={value}\n- seed=0\n")
        summary = json.loads((run / "summary.json").read_text())
        summary["config"].update(name="other", optimizer={"lr": value})
        (run / "summary.json").write_text(json.dumps(summary))
    collection = collect(tmp_path)
    assert collection.swept == {"other": ["optimizer.lr"], "fake": ["model.skip"]}
    cells = collection.runs.set_index("run_dir")["cell"]
    assert [cells[str(r)] for r in skip + lr] == ["model.skip=True"] * 2 + ["model.skip=False"] * 2 + [
        "optimizer.lr=0.1", "optimizer.lr=0.01"]


def test_a_run_dir_below_two_of_the_sweep_dirs_is_read_once(tmp_path: Path) -> None:
    """sweep_dir=[study, study/skip]: the runs of study/skip are one run each, not duplicates of themselves."""
    fake_sweep(tmp_path / "study" / "skip")
    collection = collect([tmp_path / "study", tmp_path / "study" / "skip"])
    assert len(collection.runs) == 4 and collection.problems().empty


def test_a_completed_rerun_of_a_failed_run_counts(tmp_path: Path) -> None:
    """A job that failed and was launched again into another folder, where it completed: the rerun is a result (not a
    duplicate of the failed run), the failed run stays failed."""
    failed = fake_run(tmp_path / "a", 0, True, 0, None, status="failed", error="diverged")
    rerun = fake_run(tmp_path / "b", 0, True, 0, 0.9)
    status = collect([tmp_path / "a", tmp_path / "b"]).runs.set_index("run_dir")["status"]
    assert status.to_dict() == {str(failed): "failed", str(rerun): "completed"}


def test_a_failed_job_with_a_mistyped_value_is_a_cell_of_its_own(tmp_path: Path, analyze_config) -> None:
    """`model.skip=true,flase`: the job refused for 'flase' is listed, and the cells table (True beside 'flase' in one
    column) is still written as parquet."""
    fake_sweep(tmp_path / "sweep")
    typo = fake_run(tmp_path / "sweep", 4, "flase", 0, None, status="failed", error="ConfigError: model.skip")
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    assert list(result.collection.problems()["run_dir"]) == [str(typo)]
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet").set_index("cell")
    assert cells.loc["model.skip=flase", "n_failed"] == 1 and cells.loc["model.skip=True", "n"] == 2


def test_the_test_set_is_named_by_its_content(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from fmnist.analysis import pipeline

    for official, kind in ((True, "official"), (False, "other"), (None, "unlabelled")):
        monkeypatch.setattr(pipeline, "is_official_test", lambda test, answer=official: answer)
        assert pipeline.test_set_kind(SimpleNamespace(test=None)) == kind
    assert pipeline.test_set_kind(None) is None


def test_the_cells_table_marks_the_key_comparison(tmp_path: Path, analyze_config) -> None:
    """A sweep of stage2_skip: its model.skip=False cell answers the skip-connection question, and cells.csv says so
    (its p_Holm is the one corrected across the questions, as the report quotes it)."""
    for run in fake_sweep(tmp_path / "sweep"):
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["name"] = "stage2_skip"
        (run / "summary.json").write_text(json.dumps(summary))
    quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    cells = pd.read_csv(tmp_path / "out" / "cells.csv").set_index("cell")
    assert cells["key_comparison"].to_dict() == {"model.skip=True": False, "model.skip=False": True}


def test_the_runs_dead_units_files_are_the_dead_neuron_tables(tmp_path: Path, analyze_config) -> None:
    """Each completed run's dead_units.json (the trainer's measurement) is its row of dead_neurons.csv and its layers'
    rows of dead_neurons_by_layer.csv; nothing is measured again."""
    from fmnist.analysis.dead_neurons import DeadStats

    runs = fake_sweep(tmp_path / "sweep")
    for i, run in enumerate(runs):
        DeadStats(i / 10, 0.5, [{"layer": "prep.2", "activation": "ReLU", "units": 10, "dead_units": i,
                                 "dead_fraction": i / 10, "zero_fraction": 0.5}], False, 10).save(run)
    analyze(analyze_config(f"sweep_dir={tmp_path / 'sweep'}", f"out_dir={tmp_path / 'out'}", "figures=false"))
    dead = pd.read_csv(tmp_path / "out" / "dead_neurons.csv")
    assert dead["run_dir"].tolist() == [str(r) for r in runs]
    assert dead["dead_fraction"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    layers = pd.read_csv(tmp_path / "out" / "dead_neurons_by_layer.csv")
    assert layers[["layer_index", "module", "dead_units"]].values.tolist() == [[0, "ReLU", i] for i in range(4)]


def test_a_sweep_without_completed_runs_does_not_ask_for_a_data_folder(
        tmp_path: Path, analyze_config, caplog: pytest.LogCaptureFixture) -> None:
    fake_run(tmp_path / "sweep", 0, True, 0, status="failed", error="diverged")
    fake_run(tmp_path / "sweep", 1, True, 1, status="running")
    quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    assert "no data folder found" not in caplog.text and "failed" in caplog.text
    meta = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert (meta["runs"], meta["completed"], [p["status"] for p in meta["problems"]]) == (2, 0, ["failed", "running"])


def test_lr_schedule_figure_draws_every_scheduler_without_the_trainers_notes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 1-epoch run is shorter than the warmup schedulers' warmup: drawing them logs nothing about it."""
    runs = pd.DataFrame([{"status": "completed", "trainer.epochs": 1, "trainer.batch_size": 64, "n_train": 256,
                          "scheduler": "cosine", "run_dir": "r0", "optimizer.lr": 0.1}])
    epochs = pd.DataFrame([{"run_dir": "r0", "epoch": 1, "lr": 0.1}])
    caplog.set_level("INFO")
    files = figures.lr_schedules(runs, epochs, CONF_DIR, tmp_path)
    assert files and all(f.is_file() for f in files)
    assert "clamped" not in caplog.text


def test_a_scheduler_and_augmentation_a_user_adds_are_drawn_with_the_built_in_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Options of the user's own config dir (--config-dir, hydra.searchpath) that the runs chose: the lr-schedule
    and augmentation figures, which draw every option of conf/, draw them too, from the runs' own configs."""
    from fmnist.analysis.pipeline import _augments

    user = {"scheduler": {"_target_": "fmnist.train.schedulers.warmup_cosine", "_partial_": True,
                          "warmup_epochs": 0.5, "min_lr_ratio": 0.5},
            "augment": {"_target_": "fmnist.data.augment.Augment", "crop_padding": 0, "flip": True}}
    (tmp_path / "r0").mkdir()
    (tmp_path / "r0" / "summary.json").write_text(json.dumps({"status": "completed", "config": user}))
    runs = pd.DataFrame([{"status": "completed", "trainer.epochs": 2, "trainer.batch_size": 64, "n_train": 256,
                          "scheduler": "warm_half", "augment": "flip_only", "run_dir": str(tmp_path / "r0"),
                          "optimizer.lr": 0.1}])
    epochs = pd.DataFrame([{"run_dir": str(tmp_path / "r0"), "epoch": e, "lr": 0.1} for e in (1, 2)])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.lr_schedules(runs, epochs, CONF_DIR, tmp_path)
    labels = [t.get_text() for t in saved[0].axes[0].get_legend().get_texts()]
    assert labels == sorted(p.stem for p in (CONF_DIR / "scheduler").glob("*.yaml")) + ["warm_half"]
    augments = dict(_augments(runs))
    assert "flip_only" in augments and augments["flip_only"].crop_padding == 0 and "standard" in augments


def test_bench_dir_must_hold_benchmark_results(tmp_path: Path, analyze_config) -> None:
    """bench_dir (the report's speed section) is read with the other options: a folder without bench_*.json, or one
    whose file is not a benchmark result, is one error naming the folder or file; a good one is read by name."""
    from fmnist.analysis.options import check_options

    bench = tmp_path / "bench"
    bench.mkdir()
    cfg = analyze_config(f"sweep_dir={tmp_path}", f"bench_dir={bench}")
    with pytest.raises(AnalysisError, match=f"^bench_dir {bench} holds no bench_\\*.json files"):
        check_options(cfg)
    (bench / "bench_b.json").write_text('{"throughput": []}')
    with pytest.raises(AnalysisError, match="^bench_dir: .*bench_b.json holds no benchmark results"):
        check_options(cfg)
    (bench / "bench_b.json").write_text('{"time_to_accuracy": [{"preset": "fast"}]}')
    (bench / "bench_a.json").write_text('{"concurrency": [{"jobs_per_gpu": 1}]}')
    (bench / "notes.json").write_text("not read")
    assert [list(r) for r in check_options(cfg).bench] == [["concurrency"], ["time_to_accuracy"]]
    assert check_options(cfg).bench_dir == str(bench)
    assert check_options(analyze_config(f"sweep_dir={tmp_path}")).bench == []


def test_bench_dir_is_named_the_same_however_it_is_given(tmp_path: Path, analyze_config,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's speed table names its source folder relative to the working directory (as make report and the
    committed-report test give it differently: relative with a slash, absolute), absolute when outside it."""
    from fmnist.analysis.options import check_options

    bench = tmp_path / "docs" / "bench" / "day"
    bench.mkdir(parents=True)
    (bench / "bench_a.json").write_text('{"concurrency": [{"jobs_per_gpu": 1}]}')
    monkeypatch.chdir(tmp_path)
    for given in ("docs/bench/day/", str(bench), "./docs/bench/day"):
        assert check_options(analyze_config(f"sweep_dir={tmp_path}", f"bench_dir={given}")).bench_dir == \
            "docs/bench/day"
    monkeypatch.chdir(bench)
    assert check_options(analyze_config(f"sweep_dir={tmp_path}", "bench_dir=.")).bench_dir == "."
    monkeypatch.chdir(tmp_path / "docs" / "bench")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "bench_a.json").write_text('{"concurrency": [{"jobs_per_gpu": 1}]}')
    assert check_options(analyze_config(f"sweep_dir={tmp_path}", f"bench_dir={outside}/")).bench_dir == str(outside)


def test_final_accuracy_plots_means_with_std_bars_and_the_reference_line(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The accuracy figure: per metric one error bar per cell at the mean with the std as its half-width (in %),
    each seed as a dot, and the dotted line at the reference's mean of the primary metric."""
    cells = pd.DataFrame([{"preset": "p", "cell": c, "n": 2, "metric": "test_acc", "is_reference": ref,
                           "significant": sig, "best_val_acc_mean": v, "best_val_acc_std": 0.01,
                           "test_acc_mean": t, "test_acc_std": 0.02}
                          for c, ref, sig, v, t in (("a", True, None, 0.80, 0.90), ("b", False, True, 0.85, 0.94))])
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "cell": c, "best_val_acc": v, "test_acc": t}
                         for c, v, t in (("a", 0.79, 0.89), ("a", 0.81, 0.91), ("b", 0.85, 0.94), ("b", 0.85, 0.94))])
    saved = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: saved.append(fig) or [out_dir / f"{name}.pdf"])
    with style.context():
        figures.final_accuracy(cells, runs, "p", tmp_path)
    ax = saved[0].axes[0]
    val, test = ax.containers[:2]
    assert val[0].get_xdata() == pytest.approx([80, 85]) and test[0].get_xdata() == pytest.approx([90, 94])
    (segments,) = test[2]  # the horizontal error bars: mean -/+ std
    assert [tuple(s[:, 0]) for s in segments.get_segments()] == [pytest.approx((88, 92)), pytest.approx((92, 96))]
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and dotted[0].get_xdata()[0] == pytest.approx(90)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a (ref)", "b *"]


@pytest.fixture
def drawn_figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, plt.Figure]]]:
    """(file name, figure) of each figure drawn in the test, instead of saving it; closed afterwards."""
    saved: list[tuple[str, plt.Figure]] = []
    monkeypatch.setattr(style, "save",
                        lambda fig, out_dir, name: saved.append((name, fig)) or [out_dir / f"{name}.pdf"])
    yield saved
    for _, fig in saved:
        plt.close(fig)


def test_training_curves_are_the_mean_and_std_of_each_cells_completed_seeds(
        tmp_path: Path, drawn_figures: list) -> None:
    """Per cell, training dashed and validation solid at the mean over its completed seeds (accuracy in %, loss as
    is) with a ±1 std band; a failed run, a run of another preset and a cell without runs are not drawn."""
    runs = pd.DataFrame([{"preset": preset, "status": status, "run_dir": f"/r{i}", "cell": cell}
                         for i, (preset, status, cell) in enumerate((
                             ("p", "completed", "a"), ("p", "completed", "a"), ("p", "failed", "a"),
                             ("p", "completed", "b"), ("q", "completed", "a")))])
    val_acc = {0: (0.4, 0.7), 1: (0.6, 0.9), 2: (0.0, 0.0), 3: (0.5, 0.5), 4: (0.0, 0.0)}
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": e + 1, "val_acc": acc[e], "train_acc": acc[e] + 0.05,
                            "val_loss": 2.0 - acc[e], "train_loss": 1.9 - acc[e]}
                           for i, acc in val_acc.items() for e in (0, 1)])
    saved = drawn_figures
    with style.context():
        figures.training_curves(runs, epochs, "p", ["a", "b", "none"], tmp_path)
    (name, fig), = saved
    loss, acc = fig.axes
    assert name == "curves_p" and (loss.get_ylabel(), acc.get_ylabel()) == ("cross-entropy loss", "accuracy (%)")
    assert loss.get_xlabel() == acc.get_xlabel() == "epoch"
    drawn = [(line.get_linestyle(), list(line.get_xdata()), pytest.approx(list(line.get_ydata())))
             for line in acc.get_lines()]
    assert drawn == [("--", [1, 2], [55, 85]), ("-", [1, 2], [50, 80]), ("--", [1, 2], [55, 55]),
                     ("-", [1, 2], [50, 50])]  # cell a train, validation; cell b train, validation
    assert list(loss.get_lines()[1].get_ydata()) == pytest.approx([1.5, 1.2])
    band = acc.collections[1].get_paths()[0].vertices  # cell a, validation; cell b (one seed) has no std
    std = 100 * np.std([0.4, 0.6], ddof=1)
    assert len(acc.collections) == 2 and sorted(set(band[band[:, 0] == 1, 1])) == pytest.approx([50 - std, 50 + std])
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "train", "validation"]
    assert [h.get_linestyle() for h in legend.legend_handles[2:]] == ["--", "-"]


def test_trainer_tracked_dead_units_are_plotted_per_cell_over_its_completed_seeds(
        tmp_path: Path, drawn_figures: list) -> None:
    runs = pd.DataFrame([{"preset": "p", "status": status, "run_dir": f"/r{i}", "cell": "a"}
                         for i, status in enumerate(("completed", "completed", "failed"))])
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": e, "dead_fraction": dead * e, "zero_fraction": 0.5 + dead}
                           for i, dead in enumerate((0.1, 0.2, 0.4)) for e in (1, 2)])
    saved = drawn_figures
    with style.context():
        assert figures.tracked_dead_curves(runs, epochs.drop(columns="dead_fraction"), "p", ["a"], tmp_path) == []
        figures.tracked_dead_curves(runs, epochs, "p", ["a"], tmp_path)
    (name, fig), = saved
    dead, zero = fig.axes
    assert name == "dead_training_p" and (dead.get_ylabel(), zero.get_ylabel()) == ("dead units (%)",
                                                                                       "zero activations (%)")
    assert list(dead.get_lines()[0].get_ydata()) == pytest.approx([15, 30])  # the failed run's 40 % is left out
    assert list(zero.get_lines()[0].get_ydata()) == pytest.approx([65, 65])


def test_final_accuracy_dots_the_completed_seeds_and_says_why_a_cell_has_no_result(
        tmp_path: Path, drawn_figures: list) -> None:
    """Cells top to bottom in table order; each completed seed a dot beside its metric's bar (validation above,
    test below); a cell without a value names its runs' outcomes, a cell of one seed is a result."""
    nan = float("nan")
    cells = pd.DataFrame([{"preset": "p", "cell": c, "n": n, "n_failed": nf, "n_unfinished": nu, "metric": "test_acc",
                           "is_reference": c == "a", "significant": None, "best_val_acc_mean": v,
                           "best_val_acc_std": s, "test_acc_mean": t, "test_acc_std": s}
                          for c, n, nf, nu, v, t, s in (("a", 2, 1, 0, 0.80, 0.90, 0.01),
                                                        ("b", 1, 0, 0, 0.85, 0.94, nan),
                                                        ("c", 0, 1, 2, nan, nan, nan))])
    runs = pd.DataFrame([{"preset": "p", "status": st, "cell": c, "best_val_acc": v, "test_acc": t}
                         for c, st, v, t in (("a", "completed", 0.79, 0.89), ("a", "completed", 0.81, 0.91),
                                             ("a", "failed", 0.2, 0.3), ("b", "completed", 0.85, 0.94),
                                             ("c", "failed", nan, nan))])
    saved = drawn_figures
    with style.context():
        figures.final_accuracy(cells, runs, "p", tmp_path)
    ax = saved[0][1].axes[0]
    dots = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    assert [list(d[:, 0]) for d in dots] == [[79, 81], [85], [], [89, 91], [94], []]  # validation, then test
    assert [list(d[:, 1]) for d in dots[:2]] == [[-0.125, -0.125], [0.875]]
    assert [list(d[:, 1]) for d in dots[3:5]] == [[0.125, 0.125], [1.125]]
    assert [t.get_text() for t in ax.texts] == ["no result (1 failed, 2 unfinished)"]
    assert ax.get_ylim() == (2.5, -0.5) and [t.get_text() for t in ax.get_yticklabels()] == ["a (ref)", "b", "c"]


def test_capacity_plots_each_cell_with_results_against_its_size_and_training_time(
        tmp_path: Path, drawn_figures: list) -> None:
    """One point per cell with a result (mean ± std of its metric, here validation), one colour and legend entry per
    preset; training time has its std as an x error, parameters and FLOPs are exact."""
    cells = pd.DataFrame([{"preset": p, "cell": c, "n": n, "metric": "best_val_acc", "best_val_acc_mean": acc,
                           "best_val_acc_std": 0.01, "params_mean": params, "params_std": 0.0,
                           "flops_mean": 10 * params, "flops_std": 0.0, "train_time_s_mean": 30.0,
                           "train_time_s_std": 2.0}
                          for p, c, n, acc, params in (("p", "w=8", 3, 0.9, 1e5), ("p", "w=16", 3, 0.92, 4e5),
                                                       ("p", "w=32", 0, float("nan"), 1.6e6),
                                                       ("q", "w=64", 0, float("nan"), 6.4e6))])
    saved = drawn_figures
    with style.context():
        figures.capacity(cells, tmp_path)
    (name, fig), = saved
    params, flops, time = fig.axes
    assert name == "capacity" and params.get_ylabel() == "best validation accuracy (%)"
    assert [ax.get_xlabel() for ax in fig.axes] == ["parameters", "FLOPs per image", "training time (s)"]
    (points,) = params.containers
    assert list(points.lines[0].get_xdata()) == [1e5, 4e5] and list(points.lines[0].get_ydata()) == [90, 92]
    assert list(flops.containers[0].lines[0].get_xdata()) == [1e6, 4e6]
    assert [c.has_xerr for ax in fig.axes for c in ax.containers] == [False, False, True]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["p"]


def test_key_comparisons_plot_each_difference_with_its_confidence_interval(tmp_path: Path, drawn_figures: list) -> None:
    """The first question at the top; a - b in pp at the point, the CI (asymmetric here) as its bar, filled when the
    difference is significant either way."""
    table = pd.DataFrame([{"question": q, "a": "x", "b": "y", "delta": d, "ci_low": lo, "ci_high": hi, "verdict": v}
                          for q, d, lo, hi, v in (("first", 0.02, 0.01, 0.04, "higher"),
                                                  ("second", -0.03, -0.05, -0.02, "lower"),
                                                  ("third", 0.001, -0.01, 0.005, "within seed noise"))])
    saved = drawn_figures
    with style.context():
        figures.key_comparisons(table, tmp_path)
    ax = saved[0][1].axes[0]
    labels = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
    assert [labels[y] for y in sorted(labels, reverse=True)] == ["first: x vs y", "second: x vs y", "third: x vs y"]
    third, second, first = ax.containers  # drawn bottom up
    assert [c.lines[0].get_xdata()[0] for c in (first, second, third)] == pytest.approx([2.0, -3.0, 0.1])
    bars = [tuple(c.lines[2][0].get_segments()[0][:, 0]) for c in (first, second, third)]
    assert bars == [pytest.approx((1.0, 4.0)), pytest.approx((-5.0, -2.0)), pytest.approx((-1.0, 0.5))]
    assert [c.lines[0].get_markerfacecolor() != "white" for c in (first, second, third)] == [True, True, False]


def test_lr_schedule_figure_is_at_the_runs_length_with_their_recorded_lr_on_top(
        tmp_path: Path, drawn_figures: list) -> None:
    """The schedules at the completed runs' most common length (3 epochs of 260 images in batches of 64: 4 steps,
    the last partial batch dropped), lr / peak per step from the start to the end of training; the lr each epoch of
    a run recorded (at its start) is drawn, as a fraction of the run's peak, on its own scheduler only."""
    runs = pd.DataFrame([{"status": status, "trainer.epochs": n, "trainer.batch_size": 64, "n_train": 260,
                          "scheduler": "cosine", "run_dir": f"r{i}", "optimizer.lr": 0.2}
                         for i, (status, n) in enumerate((("completed", 3), ("completed", 3), ("completed", 2),
                                                          ("failed", 5), ("failed", 5), ("failed", 5)))])
    cosine = 0.5 * (1 + np.cos(np.pi * np.arange(13) / 12))
    epochs = pd.DataFrame([{"run_dir": "r0", "epoch": e, "lr": 0.2 * cosine[4 * (e - 1)]} for e in (1, 2, 3)])
    saved = drawn_figures
    with style.context():
        figures.lr_schedules(runs, epochs, CONF_DIR, tmp_path)
    ax = saved[0][1].axes[0]
    assert ax.get_title().startswith("3 epochs × 4 steps/epoch")
    assert figures.lr_schedules(runs, epochs, tmp_path, tmp_path) == []  # no conf/scheduler/ there: no figure
    curves = {line.get_label(): line for line in ax.get_lines() if line.get_linestyle() != "None"}
    assert set(curves) == {p.stem for p in (CONF_DIR / "scheduler").glob("*.yaml")}
    assert list(curves["cosine"].get_xdata()) == pytest.approx(np.arange(13) / 4)
    assert list(curves["cosine"].get_ydata()) == pytest.approx(cosine, abs=1e-6)
    (recorded,) = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
    assert list(recorded.get_xdata()) == [0, 1, 2] and list(recorded.get_ydata()) == pytest.approx(cosine[[0, 4, 8]])
    assert recorded.get_color() == curves["cosine"].get_color()


def test_lr_schedule_figure_counts_the_last_partial_batch_of_runs_that_keep_it(
        tmp_path: Path, drawn_figures: list) -> None:
    """Runs with trainer.drop_last=false take the partial batch too: 260 images in batches of 64 are 5 steps."""
    runs = pd.DataFrame([{"status": "completed", "trainer.epochs": 3, "trainer.batch_size": 64, "n_train": 260,
                          "trainer.drop_last": False, "scheduler": "cosine", "run_dir": "r0", "optimizer.lr": 0.2}])
    epochs = pd.DataFrame([{"run_dir": "r0", "epoch": 1, "lr": 0.2}])
    with style.context():
        figures.lr_schedules(runs, epochs, CONF_DIR, tmp_path)
    ax = drawn_figures[0][1].axes[0]
    assert ax.get_title().startswith("3 epochs × 5 steps/epoch")
    cosine = next(line for line in ax.get_lines() if line.get_label() == "cosine")
    assert len(cosine.get_xdata()) == 16


def test_dead_vs_lr_draws_every_run_and_the_mean_per_learning_rate(tmp_path: Path, drawn_figures: list) -> None:
    dead = pd.DataFrame([{"optimizer.lr": lr, "activation": "relu", "dead_fraction": f}
                         for lr, f in ((0.01, 0.0), (0.01, 0.1), (0.1, 0.2), (0.1, 0.4), (None, 0.9))])
    saved = drawn_figures
    with style.context():
        figures.dead_vs_lr(dead, tmp_path)
    ax = saved[0][1].axes[0]
    (mean,) = ax.get_lines()
    assert list(mean.get_xdata()) == [0.01, 0.1] and list(mean.get_ydata()) == pytest.approx([5, 30])
    assert sorted(ax.collections[0].get_offsets()[:, 1]) == pytest.approx([0, 10, 20, 40])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("peak learning rate", "dead units (%)")


def test_dead_by_layer_puts_the_layers_in_network_order_dead_units_above_zero_activations(
        tmp_path: Path, drawn_figures: list) -> None:
    layers = pd.DataFrame([{"model": "resnet9", "activation": "relu", "layer_index": j, "layer": name,
                            "dead_fraction": 0.1 * j, "zero_fraction": 0.5}
                           for j, name in enumerate(("stem", "b.0", "a"))])
    saved = drawn_figures
    with style.context():
        figures.dead_by_layer(layers, tmp_path)
    top, bottom = saved[0][1].axes
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["stem", "b.0", "a"]
    assert list(top.get_lines()[0].get_ydata()) == pytest.approx([0, 10, 20])
    assert list(bottom.get_lines()[0].get_ydata()) == pytest.approx([50, 50, 50])



def test_confusion_figure_puts_true_classes_in_rows_and_each_class_accuracy_beside_them(
        tmp_path: Path, drawn_figures: list) -> None:
    """Row t, column p: the % of true class t predicted as p; the bars beside it: each class's accuracy (mean over
    the runs, ±1 std in %), in class order from the top like the matrix's rows."""
    from fmnist.analysis import image_figures
    from fmnist.analysis.predictions import ClassResults

    names = ("Shirt", "Bag", "Coat")  # not in alphabetical order
    confusion = np.array([[16, 4, 0], [0, 20, 0], [10, 0, 10]])
    per_class = pd.DataFrame({"run_dir": ["r"] * 3 + ["s"] * 3, "class": list(names) * 2,
                              "accuracy": [0.7, 1.0, 0.4, 0.9, 1.0, 0.6]})
    saved = drawn_figures
    with style.context():
        image_figures.confusion(ClassResults("c", "p", confusion, per_class, pd.DataFrame(), "r", names), tmp_path)
    (name, fig), = saved
    matrix, bars = fig.axes[:2]
    assert name == "confusion" and (matrix.get_xlabel(), matrix.get_ylabel()) == ("predicted class", "true class")
    assert matrix.get_title() == "% of each true class (2 runs pooled)"
    printed = {tuple(t.get_position()): t.get_text() for t in matrix.texts}
    assert printed == {(0, 0): "80", (1, 0): "20", (1, 1): "100", (0, 2): "50", (2, 2): "50"}  # (column, row)
    assert [t.get_text() for t in matrix.get_yticklabels()] == list(names)
    assert [t.get_text() for t in bars.get_yticklabels()] == list(names) and bars.yaxis_inverted()
    errorbar, container = bars.containers
    assert [p.get_width() for p in container.patches] == pytest.approx([80, 100, 50])
    std = 100 * np.std([0.7, 0.9], ddof=1)
    (segments,) = errorbar.lines[2]
    assert tuple(segments.get_segments()[0][:, 0]) == pytest.approx((80 - std, 80 + std))
    assert bars.get_xlabel() == "test accuracy (%), mean ± std over seeds"


def test_misclassified_grid_shows_each_error_with_its_own_image(tmp_path: Path, drawn_figures: list) -> None:
    """The test set's ids are not its positions: each error shows the image of its id."""
    from fmnist.analysis import image_figures
    from fmnist.analysis.predictions import ClassResults
    from fmnist.data.resplit import ImageSet

    ids = np.array([7, 3, 5, 1])
    test = ImageSet(ids, np.stack([np.full((28, 28), 10 * i, np.uint8) for i in ids]), np.zeros(4, np.int64))
    predictions = pd.DataFrame([{"id": i, "label": 0, "pred": 1, **{f"p{c}": (p if c == 1 else 0.0) for c in range(10)}}
                                for i, p in ((5, 0.9), (1, 0.8))])
    results = ClassResults("c", "p", np.zeros((10, 10), np.int64), pd.DataFrame(), predictions, "r")
    saved = drawn_figures
    with style.context():
        image_figures.misclassified(results, test, tmp_path)
    (name, fig), = saved
    shown = [int(ax.images[0].get_array().mean()) for ax in fig.axes if ax.images]
    assert name == "misclassified" and shown == [50, 10]


def test_misclassified_images_not_in_the_data_folders_test_set_are_not_drawn(tmp_path: Path,
                                                                             drawn_figures: list) -> None:
    """An error whose id is not in the test set read (a data folder of another split: data_dir=...), or is there
    under another label (other data), is not shown as some other image: the grid is refused, naming why."""
    from fmnist.analysis import image_figures
    from fmnist.analysis.predictions import ClassResults
    from fmnist.data.resplit import ImageSet

    test = ImageSet(np.array([1, 3, 5, 7]), np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64))
    for ids, labels in (([5, 60474], [0, 0]), ([5, 7], [0, 2])):
        predictions = pd.DataFrame([{"id": i, "label": t, "pred": 1, **{f"p{c}": float(c == 1) for c in range(10)}}
                                    for i, t in zip(ids, labels)])
        results = ClassResults("c", "p", np.zeros((10, 10), np.int64), pd.DataFrame(), predictions, "r")
        with style.context(), pytest.raises(AnalysisError, match=r"^1 of the 2 test images to show \(id (60474|7)\) "
                                                                 r"are not test images of the data folder read"):
            image_figures.misclassified(results, test, tmp_path)
    assert drawn_figures == []


def test_a_data_folder_of_another_split_leaves_the_misclassified_grid_out_in_one_line(
        tmp_path: Path, analyze_config, caplog: pytest.LogCaptureFixture) -> None:
    """data_dir= another split than the runs' (the audit: "figure misclassified not drawn: KeyError: 60474"): one
    warning says why the grid is not drawn; the other figures are."""
    from fmnist.analysis.pipeline import make_figures
    from fmnist.data.resplit import ImageSet, Resplit

    runs = fake_sweep(tmp_path / "sweep")
    for run in runs:  # image 60474 is misclassified (class 0 taken for 1)
        write_predictions(run, [0, 1, 2, 3], [1, 1, 2, 3], 10, ids=[60474, 1, 2, 3])
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    images = np.zeros((4, 28, 28), np.uint8)
    other = Resplit(train=ImageSet(np.arange(4), images, np.arange(4)),
                    test=ImageSet(np.arange(10, 14), images, np.arange(4)))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        figures = make_figures(analyze_config(f"sweep_dir={tmp_path / 'sweep'}"), result, tmp_path / "figs", other)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("figure ")] == [
        "figure misclassified not drawn: 1 of the 1 test images to show (id 60474) are not test images of the data "
        "folder read (or have another label there): it is not the split the runs were tested on (set data_dir= to "
        "the folder they trained on)"]
    assert {"confusion", "augmentations"} <= set(figures) and "misclassified" not in figures


def test_augmentation_figure_shows_one_training_image_per_class_raw_then_augmented(
        tmp_path: Path, drawn_figures: list) -> None:
    """Columns: the first training image of each class that has one, titled by its class; the first row is the image
    in [0, 1], each further row the image after that augmentation."""
    import torch

    from fmnist.analysis import image_figures
    from fmnist.data.augment import Augment
    from fmnist.data.resplit import ImageSet

    rng = np.random.default_rng(0)
    labels = np.array([2, 0, 2, 0])  # no image of class 1
    train = ImageSet(np.arange(4), rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), labels)
    augments = [("erasing", Augment(erasing=1.0))]
    saved = drawn_figures
    with style.context():
        image_figures.augmentations(train, augments, tmp_path, ["zero", "one", "two"])
    hidden = ImageSet(train.ids, train.images, None)  # a split without labels has no image per class
    assert image_figures.augmentations(hidden, augments, tmp_path, ["zero", "one", "two"]) == []
    (name, fig), = saved
    assert name == "augmentations" and [ax.get_title() for ax in fig.axes[:2]] == ["zero", "two"] and len(fig.axes) == 4
    raw = torch.from_numpy(train.images[[1, 0]]).float().div(255).unsqueeze(1)
    expected = dict(image_figures.augmented_rows(raw, torch.tensor([0, 2]), augments))
    for row, key in enumerate(("raw", "erasing")):
        for col in range(2):
            assert np.allclose(fig.axes[2 * row + col].images[0].get_array(), expected[key][col, 0].numpy())
    assert not torch.equal(expected["erasing"], raw)  # the augmented row differs from the raw one


def test_one_epoch_dead_unit_curves_and_one_layer_models_are_drawn(tmp_path: Path, drawn_figures: list) -> None:
    """A one-epoch run's tracked dead units (and a model with one activation layer) is one point per line: the
    marker those figures give each cell must not clash with the one-point marker (errorbar got marker twice)."""
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "run_dir": f"/r{i}", "cell": f"c{i}"} for i in (0, 1)])
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": 1, "dead_fraction": 0.1 * i, "zero_fraction": 0.5}
                           for i in (0, 1)])
    layers = pd.DataFrame([{"model": "m", "activation": act, "layer_index": 0, "layer": "act",
                            "dead_fraction": 0.1, "zero_fraction": 0.5} for act in ("relu", "gelu")])
    with style.context():
        figures.tracked_dead_curves(runs, epochs, "p", ["c0", "c1"], tmp_path)
        figures.dead_by_layer(layers, tmp_path)
    (_, curves), (_, by_layer) = drawn_figures
    assert [line.get_marker() for line in curves.axes[0].get_lines() if len(line.get_xdata()) == 1] == ["o", "s"]
    assert len([line for line in by_layer.axes[0].get_lines() if len(line.get_xdata()) == 1]) == 2


def test_curves_of_more_cells_than_colours_tell_each_cell_apart(tmp_path: Path, drawn_figures: list) -> None:
    """Line style means train/validation in the training curves, so the 11th cell (the palette's first colour
    again) needs another cue: a marker, on its lines and its legend entry (not the dashed 'train' style)."""
    n = len(style.PALETTE) + 1
    runs = pd.DataFrame([{"preset": "p", "status": "completed", "run_dir": f"/r{i}", "cell": f"c{i}"}
                         for i in range(n)])
    epochs = pd.DataFrame([{"run_dir": f"/r{i}", "epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e,
                            "train_acc": 0.5, "val_acc": 0.4} for i in range(n) for e in (1, 2)])
    with style.context():
        figures.training_curves(runs, epochs, "p", list(runs["cell"]), tmp_path)
    (_, fig), = drawn_figures
    drawn = [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in fig.axes[1].get_lines()]
    assert len(set(drawn)) == len(drawn) == 2 * n
    handles = fig.legends[0].legend_handles
    assert handles[n - 1].get_linestyle() == "-" and handles[n - 1].get_marker() == drawn[-1][2] != "None"
