"""trainer.reuse_identical (fmnist/train/reuse.py): a cell that several presets share trains once."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import threading
import time
from pathlib import Path

import pytest
from runs import compose_train

from fmnist.config import validate
from fmnist.train.logging import to_container
from fmnist.train.reuse import adopt_results, claim_computation, claim_file, computation_key, find_identical_run
from fmnist.train.run_dir import restore_hydra_record
from fmnist.train.run import train

TINY = ["model.width=4", "data.subset=512", "trainer.batch_size=128", "trainer.epochs=1", "data.val_fraction=0.05"]


def cfg(data_dir: Path, name: str, *overrides: str, reuse: bool = True):
    return compose_train(data_dir, *TINY, f"name={name}", f"trainer.reuse_identical={str(reuse).lower()}", *overrides)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def original(real_resplit_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run at <root>/stage_a/0_base, as the first preset of a study would leave it."""
    run_dir = tmp_path_factory.mktemp("study") / "stage_a" / "0_base"
    train(cfg(real_resplit_dir, "stage_a", reuse=False), run_dir)
    return run_dir


def fresh_root(original: Path, tmp_path: Path) -> Path:
    """A copy of the study root holding the original run (tests may add runs beside it)."""
    root = tmp_path / "study"
    shutil.copytree(original.parent.parent, root)
    return root


@pytest.mark.slow
def test_identical_run_of_another_preset_is_copied_not_trained(real_resplit_dir: Path, original: Path,
                                                              tmp_path: Path) -> None:
    root = fresh_root(original, tmp_path)
    source = root / "stage_a" / "0_base"
    run_dir = root / "stage_b" / "3_optimizer=sgd"
    got = train(cfg(real_resplit_dir, "stage_b"), run_dir)

    first = summary(source)
    assert got == summary(run_dir)
    assert got["reused_from"] == os.path.join("..", "..", "stage_a", "0_base")
    assert (run_dir / got["reused_from"]).resolve() == source.resolve()
    assert got["started_at"] == first["started_at"] and got["train_time_s"] == first["train_time_s"]
    assert got["test_acc"] == first["test_acc"] and got["status"] == "completed"
    assert got["config"]["name"] == "stage_b" and got["run_dir"] == str(run_dir)  # its own, not the source's
    assert got["reused_by"] == {"hostname": platform.node(), "slurm_job_id": os.environ.get("SLURM_JOB_ID")}
    assert got["hostname"] == first["hostname"]  # the rest describes the training it copied
    for name in ("metrics.csv", "predictions_test.csv", "dead_units.json"):
        assert (run_dir / name).read_bytes() == (source / name).read_bytes(), name
    assert list((run_dir / "tensorboard").iterdir())  # the default logger's events came along
    assert not (run_dir / "checkpoints").exists()

    # the same study again: the reused run is complete and skipped, and the original is still preferred
    assert train(cfg(real_resplit_dir, "stage_b"), run_dir) == got
    assert find_identical_run(root / "stage_c" / "0_x", got["config"], real_resplit_dir) == source


@pytest.mark.slow
def test_other_seed_or_setting_trains_and_reuse_is_opt_in(real_resplit_dir: Path, original: Path,
                                                          tmp_path: Path) -> None:
    root = fresh_root(original, tmp_path)
    other_seed = train(cfg(real_resplit_dir, "stage_b", "seed=1"), root / "stage_b" / "0_seed=1")
    other_lr = train(cfg(real_resplit_dir, "stage_b", "optimizer.lr=0.05"), root / "stage_b" / "1_lr=0.05")
    switched_off = train(cfg(real_resplit_dir, "stage_b", reuse=False), root / "stage_b" / "2_base")
    for got in (other_seed, other_lr, switched_off):
        assert got["status"] == "completed" and "reused_from" not in got
        assert got["started_at"] != summary(root / "stage_a" / "0_base")["started_at"]


@pytest.mark.slow
def test_a_run_without_the_files_the_analysis_reads_is_not_reused(real_resplit_dir: Path, original: Path,
                                                                   tmp_path: Path) -> None:
    """A run dir that travelled as a bare summary (the device study kit) or lost its predictions."""
    root = fresh_root(original, tmp_path)
    (root / "stage_a" / "0_base" / "predictions_test.csv").unlink()
    got = train(cfg(real_resplit_dir, "stage_b"), root / "stage_b" / "0_base")
    assert got["status"] == "completed" and "reused_from" not in got


@pytest.mark.slow
def test_reusing_discards_an_interrupted_attempt(real_resplit_dir: Path, original: Path, tmp_path: Path) -> None:
    root = fresh_root(original, tmp_path)
    run_dir = root / "stage_b" / "0_base"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"an interrupted attempt")
    got = train(cfg(real_resplit_dir, "stage_b"), run_dir)
    assert got["reused_from"] and not (run_dir / "checkpoints" / "last.pt").exists()


def test_only_completed_runs_with_the_same_computation_are_candidates(tmp_path: Path) -> None:
    config = {"name": "a", "seed": 0, "trainer": {"epochs": 3, "force": False}, "optimizer": {"lr": 0.1}}

    data = tmp_path / "data"

    def make(path: str, status: str = "completed", files: bool = True, data_dir: Path = data, **changes) -> Path:
        run = tmp_path / path
        run.mkdir(parents=True)
        cfg_ = json.loads(json.dumps(config))
        for dotted, value in changes.items():
            group, key = dotted.split("__")
            cfg_[group][key] = value
        (run / "summary.json").write_text(json.dumps({"status": status, "config": cfg_, "data_dir": str(data_dir)}))
        if files:
            for name in ("metrics.csv", "predictions_test.csv"):
                (run / name).write_text("x\n")
        return run

    make("p1/failed", status="failed")
    make("p1/no_files", files=False)
    make("p1/other_lr", optimizer__lr=0.2)
    make("p1/other_data", data_dir=tmp_path / "another_copy")  # data.dir is neutral, the folder still counts
    (make("p1/empty_metrics") / "metrics.csv").write_text("")
    (make("p1/damaged_dead_units") / "dead_units.json").write_text("{bad")  # trained again, not copied
    me = tmp_path / "p3" / "me"
    assert find_identical_run(me, config, data) is None
    neutral = make("p2/forced_and_renamed", trainer__force=True)  # a neutral key and `name` may differ
    assert find_identical_run(me, config | {"name": "b"}, data) == neutral
    assert find_identical_run(me, config, tmp_path / "p1" / ".." / "data") == neutral  # the folder, resolved
    assert find_identical_run(me, config | {"name": "b"}, tmp_path / "another_copy") == tmp_path / "p1/other_data"
    assert find_identical_run(neutral, config, data) is None  # never itself



def test_an_original_is_preferred_to_a_copy_of_it(tmp_path: Path) -> None:
    """Of two identical completed runs, the one that trained is copied, not one that itself copied it (even when the
    copy's path comes first), so that reused_from names the training."""
    config = {"name": "a", "seed": 0, "optimizer": {"lr": 0.1}}
    data = tmp_path / "data"
    for rel, extra in (("a_preset/0_base", {"reused_from": "../../b_preset/0_base"}), ("b_preset/0_base", {})):
        run = tmp_path / rel
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"status": "completed", "config": config,
                                                      "data_dir": str(data), **extra}))
        for name in ("metrics.csv", "predictions_test.csv"):
            (run / name).write_text("x\n")
    assert find_identical_run(tmp_path / "c_preset" / "0_base", config, data) == tmp_path / "b_preset/0_base"


def test_a_copy_keeps_its_own_overrides(tmp_path: Path) -> None:
    """summary.json `overrides` is the copying job's own: a refused relaunch puts .hydra/overrides.yaml back from
    it (restore_hydra_record), and the analysis reads a run's cell from that file."""
    source, copy = tmp_path / "stage_a" / "0_base", tmp_path / "stage_b" / "4_base"
    source.mkdir(parents=True)
    (source / "summary.json").write_text(json.dumps({"status": "completed", "overrides": ["model=resnet9", "seed=0"],
                                                     "config": {"name": "stage_a"}, "hostname": "trainer"}))
    for name in ("metrics.csv", "predictions_test.csv", "train.log", ".refused", "checkpoints/best.pt",
                 "tensorboard/events.out"):
        (source / name).parent.mkdir(exist_ok=True)
        (source / name).write_text("x\n")
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "checkpoints" / "last.pt").write_text("an interrupted attempt of the copy: discarded")
    (copy / "tensorboard").mkdir()  # that attempt's results: not mixed into the copied ones
    for name in ("tensorboard/events.attempt", "dead_units.json", "metrics.csv"):
        (copy / name).write_text("an interrupted attempt's\n")
    adopted = adopt_results(source, copy, {"run_dir": str(copy), "config": {"name": "stage_b"},
                                           "overrides": ["model.skip=true", "seed=0"], "hostname": "copier",
                                           "slurm_job_id": "42", "choices": {"model": "resnet9_noskip"}})
    assert adopted["overrides"] == ["model.skip=true", "seed=0"] and adopted["choices"] == {"model": "resnet9_noskip"}
    # the results and the logger's folder come along; the source's own log, checkpoints and hidden files do not
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == [
        "metrics.csv", "predictions_test.csv", "summary.json", "tensorboard/events.out"]
    # the copied hostname is the training's, reused_by names who copied it, reused_from where from
    assert adopted["hostname"] == "trainer" and adopted["reused_by"] == {"hostname": "copier", "slurm_job_id": "42"}
    assert adopted["reused_from"] == os.path.join("..", "..", "stage_a", "0_base")
    restore_hydra_record(copy, json.loads((copy / "summary.json").read_text()))
    assert (copy / ".hydra" / "overrides.yaml").read_text() == "- model.skip=true\n- seed=0\n"

def test_reused_from_leads_to_the_source_when_the_study_folder_is_a_symlink(tmp_path: Path) -> None:
    """multirun/ a symlink to scratch storage: the copying job's run dir is named through the link, the source found
    resolved. reused_from used to be relative between the two spellings (../../../../../scratch/me/...), which leads
    elsewhere from the real folder: the analysis took the copy for a network of its own (dead units counted twice)."""
    real = tmp_path / "scratch" / "me" / "multirun"
    source = real / "study" / "stage_a" / "0_base"
    source.mkdir(parents=True)
    (source / "summary.json").write_text(json.dumps({"status": "completed", "config": {"name": "stage_a"}}))
    (source / "metrics.csv").write_text("x\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "multirun").symlink_to(real)
    copy = tmp_path / "repo" / "multirun" / "study" / "stage_b" / "4_base"
    found = find_identical_run(copy, {"name": "stage_a"}, tmp_path / "data", None) or source.resolve()
    adopted = adopt_results(found, copy, {"run_dir": str(copy), "config": {"name": "stage_b"}})
    assert (copy / adopted["reused_from"]).resolve() == source.resolve()
    assert adopted["reused_from"] == os.path.join("..", "..", "stage_a", "0_base")


def test_data_are_compared_by_fingerprint_where_the_runs_recorded_one(tmp_path: Path) -> None:
    config = {"name": "a", "seed": 0, "optimizer": {"lr": 0.1}}
    here = tmp_path / "data"

    def make(path: str, data_dir: Path, fingerprint: str | None = None, **config_changes) -> Path:
        run = tmp_path / path
        run.mkdir(parents=True)
        summary = {"status": "completed", "config": config | config_changes, "data_dir": str(data_dir)}
        if fingerprint:
            summary["data_fingerprint"] = fingerprint
        (run / "summary.json").write_text(json.dumps(summary))
        for name in ("metrics.csv", "predictions_test.csv"):
            (run / name).write_text("x\n")
        return run

    calls: list[int] = []

    def mine() -> str:
        calls.append(1)
        return "f00d"

    me = tmp_path / "p9" / "me"
    make("p1/other_lr", tmp_path / "elsewhere", "f00d", optimizer={"lr": 0.2})
    assert find_identical_run(me, config, here, mine) is None and not calls  # no candidate: the data stay unread
    make("p1/same_folder_other_data", here, "beef")  # the folder's contents changed since
    assert find_identical_run(me, config, here, mine) is None
    copy_elsewhere = make("p2/a_copy_of_the_data_elsewhere", tmp_path / "elsewhere", "f00d")
    assert find_identical_run(me, config, here, mine) == copy_elsewhere and len(calls) == 2  # once per search
    older = make("p0/recorded_no_fingerprint", here)  # compared by folder, as before
    assert find_identical_run(me, config, here, mine) == older
    assert find_identical_run(me, config, here) == older  # without a fingerprint to compare: by folder only


@pytest.mark.slow
def test_a_run_on_a_copy_of_the_data_elsewhere_is_reused(real_resplit_dir: Path, original: Path,
                                                         tmp_path: Path) -> None:
    root = fresh_root(original, tmp_path)
    copy = tmp_path / "moved" / "FashionMNIST-Resplit"
    shutil.copytree(real_resplit_dir, copy)
    got = train(cfg(copy, "stage_b"), root / "stage_b" / "0_base")
    assert got["reused_from"] == os.path.join("..", "..", "stage_a", "0_base")
    assert got["data_fingerprint"] == summary(original)["data_fingerprint"]


def test_computation_key_names_what_a_run_computes() -> None:
    config = {"name": "a", "seed": 0, "device": "auto", "optimizer": {"lr": 0.1},
              "trainer": {"epochs": 3, "force": False}, "data": {"dir": "x", "subset": None}}
    data = Path("/data/fm")
    key = computation_key(config, data)
    same = json.loads(json.dumps(config))
    same.update(name="b", device="cuda:1")
    same["trainer"]["force"], same["data"]["dir"] = True, "elsewhere"  # neutral keys
    assert computation_key(same, data) == key
    assert computation_key(config, "/data/../data/fm") == key  # the folder, resolved
    assert computation_key({**config, "optimizer": {"lr": 0.1, "weight_decay": 0}}, data) == computation_key(
        {**config, "optimizer": {"lr": 0.1, "weight_decay": 0.0}}, data)  # equal values, as differing_keys has it
    for dotted, value in (("seed", 1), ("optimizer.lr", 0.2), ("trainer.epochs", 4), ("data.subset", 512)):
        other = json.loads(json.dumps(config))
        *groups, last = dotted.split(".")
        node = other
        for group in groups:
            node = node[group]
        node[last] = value
        assert computation_key(other, data) != key, dotted
    assert computation_key(config, "/data/another_copy") != key


def test_the_claim_is_shared_by_the_identical_runs_of_every_sweep_under_the_root(tmp_path: Path) -> None:
    config = {"name": "a", "seed": 0, "optimizer": {"lr": 0.1}}
    claim = claim_file(tmp_path / "stage_a" / "0_base", config, "data")
    assert claim.parent == tmp_path.resolve() / ".claims"
    assert claim_file(tmp_path / "stage_b" / "3_x", config | {"name": "b"}, "data") == claim
    assert claim_file(tmp_path / "stage_b" / "3_x", config | {"seed": 1}, "data") != claim


def _launch(target, *args) -> tuple[threading.Thread, dict]:
    """`target(*args)` in a thread; the returned dict gets its result (or the exception it raised)."""
    out: dict = {}

    def work() -> None:
        try:
            out["result"] = target(*args)
        except BaseException as exc:  # reported by the test
            out["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, out


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _claim_of(config_) -> dict:
    validate(config_)
    return to_container(config_)


@pytest.mark.slow
def test_a_run_launched_while_an_identical_one_trains_waits_and_copies_it(
        real_resplit_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two presets started together reach their shared cell together: the second waits, then copies."""
    root = tmp_path / "study"
    first, second = root / "stage_a" / "0_base", root / "stage_b" / "4_base"
    caplog.set_level(logging.INFO, logger="fmnist")
    with claim_computation(first, _claim_of(cfg(real_resplit_dir, "stage_a")), real_resplit_dir):
        thread, out = _launch(train, cfg(real_resplit_dir, "stage_b"), second)
        assert _wait_for(lambda: "waiting for it" in caplog.text), out
        assert str(first.resolve()) in caplog.text  # the message names who trains it
        # the claimant trains (with the option off: this test holds its claim) while the second waits
        trained = train(cfg(real_resplit_dir, "stage_a", reuse=False), first)
        time.sleep(0.5)
        assert thread.is_alive() and not (second / "summary.json").exists()
    thread.join(120)
    assert not thread.is_alive() and "error" not in out, out
    got = out["result"]
    assert got["reused_from"] == os.path.join("..", "..", "stage_a", "0_base")
    assert got["test_acc"] == trained["test_acc"] and got["started_at"] == trained["started_at"]
    assert sorted(p.name for p in (root / ".claims").iterdir()) == [
        computation_key(got["config"], real_resplit_dir) + ".lock"]


@pytest.mark.slow
def test_a_waiting_run_trains_itself_when_the_claimant_leaves_nothing(
        real_resplit_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The claimant failed or was killed (its flock went with it): the waiting run trains the cell itself."""
    root = tmp_path / "study"
    caplog.set_level(logging.INFO, logger="fmnist")
    with claim_computation(root / "stage_a" / "0_base", _claim_of(cfg(real_resplit_dir, "stage_a")),
                           real_resplit_dir):
        thread, out = _launch(train, cfg(real_resplit_dir, "stage_b"), root / "stage_b" / "0_base")
        assert _wait_for(lambda: "waiting for it" in caplog.text), out
    thread.join(120)
    assert not thread.is_alive() and "error" not in out, out
    assert out["result"]["status"] == "completed" and "reused_from" not in out["result"]


def test_runs_of_other_computations_do_not_wait(real_resplit_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "study"
    base = _claim_of(cfg(real_resplit_dir, "stage_a"))
    other_seed = _claim_of(cfg(real_resplit_dir, "stage_b", "seed=1"))
    def claim_other() -> bool:
        with claim_computation(root / "stage_b" / "0_seed=1", other_seed, real_resplit_dir):
            return True

    with claim_computation(root / "stage_a" / "0_base", base, real_resplit_dir):
        thread, out = _launch(claim_other)
        thread.join(30)
        assert not thread.is_alive() and out == {"result": True}  # took its own claim at once
