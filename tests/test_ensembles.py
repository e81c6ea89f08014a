"""Seed ensembles and prediction churn (fmnist.analysis.ensembles) on hand-made run dirs whose predictions are worked
out by hand: 4 test images (ids 10..13, labels 0..3), 3 seeds of one cell."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from test_analysis import fake_run, quick_analysis, write_predictions

from fmnist.analysis.collect import collect
from fmnist.analysis.ensembles import COLUMNS, ensemble_table

IDS, LABELS = [10, 11, 12, 13], [0, 1, 2, 3]


def probs(*images: dict[int, float]) -> list[list[float]]:
    """One row of 10 class probabilities per image, from {class: probability}."""
    return [[image.get(c, 0.0) for c in range(10)] for image in images]


#: Per seed, the predicted classes and probabilities of the 4 images. Single runs are right on 3/4, 3/4 and 2/4 of
#: the images (mean 2/3, sample std sqrt(1/48)). Pairs differ on: A-B images 12, 13 (1/2); A-C 11 (1/4); B-C 11, 12, 13
#: (3/4): churn 1/2; accuracy differences 0, 1/4, 1/4 (mean 1/6). Image 11 is wrong for C, 12 for B, 13 for A and C:
#: none for every seed, 3 of 4 for at least one. Averaged probabilities: image 10 -> 0, 11 -> 1 (2.3 of 3), 12 -> 1
#: (1.7 against 1.3 for class 2, although two seeds of three predict 2), 13 -> 0 (1.85 against 1.15): the ensemble is
#: right on 2 of 4 images (a majority vote would be on 3), so it loses 1/6 against the mean single run.
SEEDS = {
    "A": ([0, 1, 2, 0], probs({0: 1}, {1: 1}, {2: 0.6, 1: 0.4}, {0: 0.9, 3: 0.1})),
    "B": ([0, 1, 1, 3], probs({0: 1}, {1: 1}, {1: 0.9, 2: 0.1}, {3: 0.6, 0: 0.4})),
    "C": ([0, 2, 2, 0], probs({0: 1}, {2: 0.7, 1: 0.3}, {2: 0.6, 1: 0.4}, {0: 0.55, 3: 0.45})),
}
EXPECTED = {"n_runs": 3, "n_images": 4, "acc_mean": 2 / 3, "acc_std": (1 / 48) ** 0.5, "ensemble_acc": 0.5,
            "gain": 0.5 - 2 / 3, "churn": 0.5, "acc_diff": 1 / 6, "wrong_all": 0.0, "wrong_any": 0.75}


def seeded_cell(sweep: Path, skip: bool = True, seeds: str = "ABC", order: tuple[int, ...] = (0, 1, 2, 3),
                first_job: int = 0) -> list[Path]:
    """Completed runs of the cell model.skip=`skip`, one per seed of SEEDS named, with those predictions written
    in row `order` (ids travel with their rows)."""
    runs = []
    for i, name in enumerate(seeds):
        run = fake_run(sweep, first_job + i, skip, first_job + i)
        preds, p = SEEDS[name]
        write_predictions(run, [LABELS[k] for k in order], [preds[k] for k in order], 10, [p[k] for k in order],
                          [IDS[k] for k in order])
        runs.append(run)
    return runs


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 1, 0, 2)], ids=["same order", "rows shuffled"])
def test_ensemble_accuracy_gain_and_churn_of_three_seeds_by_hand(tmp_path: Path, order: tuple[int, ...]) -> None:
    """Seeds B and C written in another row order than A: the runs are aligned by id, so the numbers are the same."""
    seeded_cell(tmp_path, seeds="A")
    for job, name in ((1, "B"), (2, "C")):
        seeded_cell(tmp_path, seeds=name, order=order, first_job=job)
    table = ensemble_table(collect(tmp_path))
    assert list(table.columns) == list(COLUMNS)
    (row,) = table.to_dict("records")
    assert (row["preset"], row["cell"]) == ("fake", "all runs")
    assert {k: row[k] for k in EXPECTED} == pytest.approx(EXPECTED)


def test_each_cell_has_its_own_row_and_one_seed_has_none(tmp_path: Path) -> None:
    """Two cells of two seeds (A, B and C, A) and a cell of one seed: a row for each of the first two, none for it.
    The accuracy difference of a pair is absolute: C's is below A's, the seed after it."""
    seeded_cell(tmp_path, True, "AB")
    seeded_cell(tmp_path, False, "CA", first_job=2)
    alone = fake_run(tmp_path / "alone", 0, True, 0)
    summary = json.loads((alone / "summary.json").read_text())
    summary["config"]["name"] = "alone"
    (alone / "summary.json").write_text(json.dumps(summary))
    table = ensemble_table(collect(tmp_path)).set_index("cell")
    assert sorted(table.index) == ["model.skip=False", "model.skip=True"]
    numbers = ["n_runs", "acc_mean", "churn", "acc_diff", "wrong_all", "wrong_any"]
    assert table.loc["model.skip=True", numbers].tolist() == pytest.approx([2, 0.75, 0.5, 0.0, 0.0, 0.5])  # A and B
    # C and A: single runs 2/4 and 3/4; averaged probabilities right on 10, 11 (1.3 against 0.7), 12, wrong on 13;
    # 13 is wrong for both seeds, 11 for C alone
    assert table.loc["model.skip=False", ["acc_mean", "ensemble_acc", "gain", "churn", "acc_diff", "wrong_all",
                                          "wrong_any"]].tolist() == pytest.approx([0.625, 0.75, 0.125, 0.25, 0.25,
                                                                                   0.25, 0.5])
    assert (collect(tmp_path).completed["preset"] == "alone").sum() == 1 and "alone" not in set(table["preset"])


def test_runs_of_other_test_images_leave_their_cell_out_with_a_warning(tmp_path: Path, caplog) -> None:
    """Seed C predicted image 14 instead of 13: the id sets differ, so the cell is left out and named; so it is when
    C's file gives two of the same images other labels."""
    runs = seeded_cell(tmp_path)
    preds, p = SEEDS["C"]
    write_predictions(runs[2], LABELS, preds, 10, p, [10, 11, 12, 14])
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert ensemble_table(collect(tmp_path)).empty
    assert "seed ensembles: the runs of cell all runs of preset fake predicted different test images" in caplog.text
    write_predictions(runs[2], [1, 0, 2, 3], preds, 10, p, IDS)  # the same ids, two of their labels swapped
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert ensemble_table(collect(tmp_path)).empty
    assert "(ids or labels differ): the cell is left out" in caplog.text


def test_a_damaged_or_missing_file_is_left_out_with_a_warning(tmp_path: Path, caplog) -> None:
    """One seed's file cut off (3 rows of its n_test 4) and another cell's seed without its file: the first cell
    keeps its two other seeds, the second has one seed left and no row; each file is named in one warning (the
    missing one by collect), though the pair churn reads both cells again, and the damaged one in its run's issues."""
    from fmnist.analysis.ensembles import pair_churn

    runs = seeded_cell(tmp_path)
    damaged = runs[2] / "predictions_test.csv"
    damaged.write_text("".join(damaged.read_text().splitlines(keepends=True)[:4]))
    other = seeded_cell(tmp_path, False, "AB", first_job=3)
    (other[1] / "predictions_test.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        collection = collect(tmp_path)
        table = ensemble_table(collection)
        pair_churn(collection, [("q", "fake", "model.skip=True", "model.skip=False", "a", "b")])
    (row,) = table.to_dict("records")
    assert (row["cell"], row["n_runs"], row["churn"]) == ("model.skip=True", 2, pytest.approx(0.5))  # A and B
    named = [r.getMessage() for r in caplog.records if str(damaged) in r.getMessage()]
    assert named == [f"{damaged} has 3 rows, but the run's test set has 4 images (a truncated or damaged file): left "
                     "out of the seed ensembles and prediction churn"]
    assert [r.getMessage() for r in caplog.records if other[1].name in r.getMessage()] == [
        f"run {other[1].name} (fake): predictions_test.csv is missing"]
    issues = collection.runs.set_index("run")["issues"]
    assert issues[runs[2].name] == ("predictions_test.csv has 3 rows, but the run's test set has 4 images (a truncated "
                                    "or damaged file): left out of the seed ensembles and prediction churn")
    assert issues[other[1].name] == "predictions_test.csv is missing"


def test_probabilities_missing_or_an_id_twice_leave_the_file_out(tmp_path: Path, caplog) -> None:
    runs = seeded_cell(tmp_path)
    files = [r / "predictions_test.csv" for r in runs]
    files[1].write_text(files[1].read_text().replace("\n11,", "\n10,"))
    frame = pd.read_csv(files[2]).drop(columns=["p9"])
    files[2].write_text(frame.to_csv(index=False))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        assert ensemble_table(collect(tmp_path)).empty  # only A is left
    assert f"{files[1]} has an id twice: left out of the seed ensembles" in caplog.text
    assert f"{files[2]} lacks probability columns p0..p9: left out of the seed ensembles" in caplog.text


def test_a_hidden_test_set_gives_no_rows_and_no_table(tmp_path: Path, analyze_config, caplog) -> None:
    """Predictions without a label column (a test set whose labels are hidden, so no test accuracy): no row, no
    warning about the files, no issue, no ensembles.csv, and the analysis goes on."""
    for run in seeded_cell(tmp_path / "sweep"):
        path = run / "predictions_test.csv"
        path.write_text(pd.read_csv(path).drop(columns=["label"]).to_csv(index=False))
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "test_acc": None}))
    with caplog.at_level(logging.WARNING, logger="fmnist"):
        result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    assert result.ensembles.empty and not (tmp_path / "out" / "ensembles.csv").exists()
    assert "seed ensembles" not in caplog.text and result.collection.runs["issues"].isna().all()


def test_the_analysis_writes_the_ensembles_table(tmp_path: Path, analyze_config) -> None:
    seeded_cell(tmp_path / "sweep")
    result = quick_analysis(analyze_config, tmp_path / "sweep", tmp_path / "out")
    for written in (pd.read_csv(tmp_path / "out" / "ensembles.csv"),
                    pd.read_parquet(tmp_path / "out" / "ensembles.parquet"), result.ensembles):
        (row,) = written.to_dict("records")
        assert {k: row[k] for k in EXPECTED} == pytest.approx(EXPECTED)


def test_pair_churn_compares_two_cells_run_by_run_and_each_cell_seed_by_seed(tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Cell a (skip) holds seeds A and B, cell b (no skip) seed C: a run of a and a run of b differ on A-C 1/4 and
    B-C 3/4 of the images (between 1/2); two seeds of a differ on 1/2; b has one seed (NaN)."""
    from fmnist.analysis.ensembles import PAIR_COLUMNS, pair_churn

    seeded_cell(tmp_path, skip=True, seeds="AB")
    seeded_cell(tmp_path, skip=False, seeds="C", order=(2, 0, 3, 1), first_job=2)  # aligned by id
    pairs = [("skip connections", "fake", "model.skip=True", "model.skip=False", "skips", "no skips")]
    table = pair_churn(collect(tmp_path), pairs)
    assert list(table.columns) == list(PAIR_COLUMNS) and len(table) == 1
    row = table.iloc[0]
    assert (row["question"], row["a"], row["b"], row["n_a"], row["n_b"]) == (
        "skip connections", "skips", "no skips", 2, 1)
    assert row["between"] == pytest.approx(0.5) and row["within_a"] == pytest.approx(0.5)
    assert pd.isna(row["within_b"])
    missing = [("q", "fake", "model.skip=True", "model.skip=maybe", "a", "b")]  # a cell without runs: no row
    assert pair_churn(collect(tmp_path), missing).empty
    other = tmp_path / "other"
    seeded_cell(other, skip=True, seeds="A")
    run = seeded_cell(other, skip=False, seeds="B", first_job=1)[0]
    write_predictions(run, LABELS, SEEDS["B"][0], 10, SEEDS["B"][1], [20, 21, 22, 23])  # other images
    assert pair_churn(collect(other), pairs).empty
    assert "predicted different test images: the pair is left out" in caplog.text
