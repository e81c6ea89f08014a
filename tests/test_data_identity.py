"""A run dir's run is skipped or resumed only on the data it was trained on, wherever the folder is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from runs import compose_train

from fmnist.data.prepare import build_resplit
from fmnist.errors import ConfigError
from fmnist.train.checkpoint import LAST, checkpoint_path
from fmnist.train.data_identity import other_data, run_data_fingerprint
from fmnist.train.run import completed_run, train

TINY = ["model.width=4", "data.subset=512", "trainer.batch_size=128", "logger=none", "trainer.epochs=1"]


@pytest.fixture(scope="module")
def other_split(real_raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same raw images re-split at random: another data set with the layout of the official one."""
    folder = tmp_path_factory.mktemp("random") / "FashionMNIST-Resplit"
    return build_resplit(folder, mode="random", raw_dir=real_raw_dir)


def copy_of(folder: Path, where: Path) -> Path:
    return Path(shutil.copytree(folder, where / "copy" / folder.name))


def test_other_data_compares_content_not_paths(real_resplit_dir: Path, other_split: Path, tmp_path: Path) -> None:
    cfg = compose_train(real_resplit_dir, *TINY)
    fingerprint = run_data_fingerprint(cfg)
    assert fingerprint == run_data_fingerprint(compose_train(copy_of(real_resplit_dir, tmp_path), *TINY))
    recorded = {"data_fingerprint": fingerprint, "data_dir": str(real_resplit_dir.resolve())}
    assert other_data({}, cfg) is None  # a run from before runs recorded their data: nothing to compare
    assert other_data(recorded, cfg) is None
    assert other_data(recorded, compose_train(copy_of(real_resplit_dir, tmp_path / "b"), *TINY)) is None
    moved = compose_train(other_split, *TINY)
    difference = other_data(recorded, moved)
    assert difference is not None and fingerprint in difference and run_data_fingerprint(moved) in difference
    assert str(real_resplit_dir.resolve()) in difference and str(other_split) in difference
    # a folder that is not there is built only when asked to (a launcher's check leaves that to the job)
    missing = compose_train(tmp_path / "nowhere" / "FashionMNIST-Resplit", *TINY, "data.auto_prepare=false")
    assert other_data(recorded, missing, build=False) is None
    assert run_data_fingerprint(missing, build=False) is None


@pytest.mark.slow
def test_finished_run_is_skipped_on_a_copy_and_refused_on_other_data(
        real_resplit_dir: Path, other_split: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    first = train(compose_train(real_resplit_dir, *TINY), run_dir)
    copy = copy_of(real_resplit_dir, tmp_path)
    on_copy = compose_train(copy, *TINY)
    assert completed_run(on_copy, run_dir) == first  # the launcher records it without a worker
    assert train(on_copy, run_dir)["started_at"] == first["started_at"]  # skipped, not trained again
    before = (run_dir / "summary.json").read_bytes()
    other = compose_train(other_split, *TINY)
    assert completed_run(other, run_dir) is None  # the job's worker decides
    with pytest.raises(ConfigError, match=r"holds a finished run trained on other data \(data_fingerprint "
                                          rf"{first['data_fingerprint']}.*trainer.force=true"):
        train(other, run_dir)
    assert (run_dir / "summary.json").read_bytes() == before
    forced = train(compose_train(other_split, *TINY, "trainer.force=true"), run_dir)
    assert forced["status"] == "completed" and forced["data_fingerprint"] != first["data_fingerprint"]


@pytest.mark.slow
def test_checkpoint_resumes_on_a_copy_and_is_refused_on_other_data(
        real_resplit_dir: Path, other_split: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    first = train(compose_train(real_resplit_dir, *TINY), run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps(summary | {"status": "interrupted"}))  # as if cut off
    last = checkpoint_path(run_dir, LAST)
    assert torch.load(last, weights_only=True)["data_fingerprint"] == first["data_fingerprint"]
    with pytest.raises(ConfigError, match=r"last.pt was trained on other data \(data_fingerprint "
                                          rf"{first['data_fingerprint']}"):
        train(compose_train(other_split, *TINY), run_dir)
    # a checkpoint written before checkpoints recorded their data: the run's summary.json says what it read
    state = torch.load(last, weights_only=True)
    del state["data_fingerprint"], state["data_dir"]
    torch.save(state, last)
    with pytest.raises(ConfigError, match="last.pt was trained on other data"):
        train(compose_train(other_split, *TINY), run_dir)
    resumed = train(compose_train(copy_of(real_resplit_dir, tmp_path), *TINY), run_dir)
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 1
