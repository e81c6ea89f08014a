"""fmnist/study_transfer.py: the committed study to a lent GPU machine (as summaries) and its new runs back."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from fmnist import study_transfer as st

STUDY = Path("multirun/study")


def make_run(root: Path, rel: str, status: str = "completed", error: str | None = None, **files: str) -> Path:
    run = root / STUDY / rel
    run.mkdir(parents=True, exist_ok=True)
    (run / "summary.json").write_text(json.dumps({"status": status, "error": error, "run": rel}))
    for name, text in {"predictions_test.csv": f"id,pred\n1,{len(rel)}\n", **files}.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    return run


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pack_parks_the_study_and_unpack_brings_it_back_unchanged(tmp_path: Path) -> None:
    make_run(tmp_path, "stage2_skip/0_model.skip=True,seed=0")
    make_run(tmp_path, "stage2_lr/3_optimizer.lr=0.1,seed=1", status="failed", error="TrainingDiverged: nan")
    before = tree(tmp_path / STUDY)

    assert st.pack(tmp_path) == 2
    assert not (tmp_path / STUDY).exists() and tree(tmp_path / ".aside" / STUDY) == before
    kit = tree(tmp_path / ".devstudy")
    assert sorted(kit) == [f"{STUDY}/stage2_lr/3_optimizer.lr=0.1,seed=1/summary.json",
                           f"{STUDY}/stage2_skip/0_model.skip=True,seed=0/summary.json"]
    with pytest.raises(st.FmnistError, match="already holds a packed study"):
        st.pack(tmp_path)  # a second pack would lose nothing, but is refused
    assert tree(tmp_path / ".aside" / STUDY) == before

    assert st.unpack(tmp_path, []) == (0, 0)
    assert tree(tmp_path / STUDY) == before and not (tmp_path / ".aside").exists()

    # written here between pack and unpack: an unfinished attempt of a packed run gives way to the packed
    # (finished) one; a run the pack does not hold stays
    st.pack(tmp_path)
    make_run(tmp_path, "stage2_skip/0_model.skip=True,seed=0", status="running")
    make_run(tmp_path, "stage2_skip/1_model.skip=False,seed=0", status="running")
    st.unpack(tmp_path, [])
    after = tree(tmp_path / STUDY)
    assert {k: v for k, v in after.items() if not k.startswith("stage2_skip/1_")} == before
    assert json.loads(after["stage2_skip/1_model.skip=False,seed=0/summary.json"])["status"] == "running"


def test_archive_holds_only_the_runs_finished_since_the_manifest(tmp_path: Path) -> None:
    device = tmp_path / "device"
    make_run(device, "p/0_done_before")
    make_run(device, "p/1_was_running", status="running")
    before = st.manifest(device)
    assert sorted(before) == [f"{STUDY}/p/0_done_before", f"{STUDY}/p/1_was_running"]

    make_run(device, "p/1_was_running", **{"checkpoints/last.pt": "big"})  # finished in the session
    make_run(device, "q/0_new", **{"tensorboard/events": "e", ".lock": "123"})
    make_run(device, "q/1_diverged", status="failed", error="TrainingDiverged: loss became NaN")
    make_run(device, "q/2_cut_off", status="failed", error="KeyboardInterrupt: ")  # starts again later
    make_run(device, "q/3_still_running", status="running")
    (device / STUDY / "q" / ".pool").mkdir()
    (device / STUDY / "q" / ".pool" / "0.log").write_text("worker")
    (device / STUDY / ".claims").mkdir()
    (device / STUDY / ".claims" / "0123abcd.lock").write_text("pid 1 on device")
    assert st.finished_since(device, before) == [f"{STUDY}/p/1_was_running", f"{STUDY}/q/0_new",
                                                 f"{STUDY}/q/1_diverged"]

    out = tmp_path / "out"
    out.mkdir()
    parts = st.archive(device, before, out / st.ARCHIVE)
    assert [p.name for p in parts] == ["study.tar.gz.part-aa"]
    with tarfile.open(parts[0]) as tar:
        names = tar.getnames()
    assert not [n for n in names if "checkpoints" in n or ".pool" in n or "0_done_before" in n or ".lock" in n
                or ".claims" in n]
    assert f"{STUDY}/q/0_new/tensorboard/events" in names

    repo = tmp_path / "repo"
    make_run(repo, "p/0_done_before")
    make_run(repo, "p/1_was_running", status="running")
    st.pack(repo)
    make_run(repo, "q/0_new", predictions_test_csv_here="x")  # finished here meanwhile: kept, not replaced
    assert st.unpack(repo, [out]) == (2, 1)
    assert (repo / STUDY / "q" / "0_new" / "predictions_test_csv_here").is_file()
    got = tree(repo / STUDY)
    assert json.loads(got["p/1_was_running/summary.json"])["status"] == "completed"
    assert "q/1_diverged/summary.json" in got and "q/2_cut_off/summary.json" not in got
    assert "p/0_done_before/predictions_test.csv" in got  # the parked run came back too
    assert st.archive(device, st.manifest(device), out / "again.tar.gz") == []  # nothing new: no parts


def test_a_big_archive_comes_back_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = tmp_path / "device"
    for i in range(3):
        make_run(device, f"p/{i}_run", **{"predictions_test.csv": "".join(f"{i},{j * 7919 % 10007}\n"
                                                                            for j in range(3000))})
    monkeypatch.setattr(st, "PART_BYTES", 4096)
    (tmp_path / "out").mkdir()
    parts = st.archive(device, {}, tmp_path / "out" / st.ARCHIVE)
    assert len(parts) > 2 and parts[1].name == "study.tar.gz.part-ab"
    assert all(p.stat().st_size <= 4096 for p in parts)
    with pytest.raises(st.FmnistError, match=r"^.*part-aa, .* do not form an intact study.tar.gz .*: a part is "
                                             r"missing, truncated or damaged$"):
        st.unpack(tmp_path / "repo", parts[:-1])  # the last part did not come back
    assert not (tmp_path / "repo" / STUDY).exists()  # nothing half-extracted was added
    damaged = tmp_path / "damaged"  # one byte of a middle part flipped: tar alone would not notice
    damaged.mkdir()
    for part in parts:
        (damaged / part.name).write_bytes(part.read_bytes())
    middle = bytearray((damaged / parts[1].name).read_bytes())
    middle[len(middle) // 2] ^= 0xFF
    (damaged / parts[1].name).write_bytes(bytes(middle))
    with pytest.raises(st.FmnistError, match="do not form an intact study.tar.gz"):
        st.unpack(tmp_path / "repo", [damaged])
    assert not (tmp_path / "repo" / STUDY).exists()
    assert st.unpack(tmp_path / "repo", parts[::-1]) == (3, 0)  # part files named in any order
    assert tree(tmp_path / "repo" / STUDY) == tree(device / STUDY)


def test_an_archive_of_more_than_26_parts_names_each_part_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Part names go aa..az, ba, ...: no part overwrites another, and the parts join to the whole archive again."""
    device = tmp_path / "device"
    make_run(device, "p/0_run", **{"metrics.csv": "".join(f"{j},{j * 7919 % 10007}\n" for j in range(40))})
    monkeypatch.setattr(st, "PART_BYTES", 8)
    (tmp_path / "out").mkdir()
    parts = st.archive(device, {}, tmp_path / "out" / st.ARCHIVE)
    assert len(parts) > 26 and parts[26].name == "study.tar.gz.part-ba"
    assert len({p.name for p in parts}) == len(parts) == len(list((tmp_path / "out").iterdir()))
    assert st.unpack(tmp_path / "repo", [tmp_path / "out"]) == (1, 0)
    assert tree(tmp_path / "repo" / STUDY) == tree(device / STUDY)


def test_the_archives_of_two_device_calls_are_both_added(tmp_path: Path) -> None:
    """`make study-unpack PARTS="out1 out2"`: one archive per folder, each extracted (joined, tar would stop at
    the end of the first and drop the second call's runs)."""
    for call, run in (("call1", "p/0_seed=0"), ("call2", "p/1_seed=1")):
        make_run(tmp_path / f"device_{call}", run)
        (tmp_path / call).mkdir()
        st.archive(tmp_path / f"device_{call}", {}, tmp_path / call / st.ARCHIVE)
    assert st.unpack(tmp_path / "repo", [tmp_path / "call1", tmp_path / "call2"]) == (2, 0)
    assert sorted(p.name for p in (tmp_path / "repo" / STUDY / "p").iterdir()) == ["0_seed=0", "1_seed=1"]


def test_the_kit_copied_into_the_study_does_not_replace_the_parked_runs(tmp_path: Path) -> None:
    """A local rehearsal of the device script with STUDY_ROOT=. copies the kit's bare summaries into multirun/study
    while the study is parked: the unpack keeps the complete parked runs, not the finished-looking summaries."""
    make_run(tmp_path, "p/0_run", **{"metrics.csv": "epoch\n1\n"})
    before = tree(tmp_path / STUDY)
    st.pack(tmp_path)
    kit_run = tmp_path / ".devstudy" / STUDY / "p" / "0_run"
    (tmp_path / STUDY / "p" / "0_run").mkdir(parents=True)
    (tmp_path / STUDY / "p" / "0_run" / "summary.json").write_bytes((kit_run / "summary.json").read_bytes())
    st.unpack(tmp_path, [])
    assert tree(tmp_path / STUDY) == before


def test_a_run_finished_here_is_not_replaced_by_an_unfinished_parked_one_with_more_files(tmp_path: Path) -> None:
    """Unpack merges the parked study into what was written here since the pack: a run finished here stays, even when
    the parked attempt of it (interrupted) holds more files; only a finished run with more files may replace it."""
    make_run(tmp_path, "p/0_run", status="interrupted", **{"metrics.csv": "epoch\n1\n", "train.log": "epoch 1\n"})
    st.pack(tmp_path)
    finished = tree(make_run(tmp_path, "p/0_run"))  # finished here since: a summary and predictions, fewer files
    st.unpack(tmp_path, [])
    assert tree(tmp_path / STUDY / "p" / "0_run") == finished


def test_bad_parts_are_refused_before_anything_moves(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path, "p/0_run")
    st.pack(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert st.main(["unpack", "nowhere/study.tar.gz.part-aa"]) == 2
    assert capsys.readouterr().err.strip() == ("error: no such archive part (a file named study.tar.gz.part-xx): "
                                               "nowhere/study.tar.gz.part-aa")
    assert (tmp_path / ".aside" / STUDY / "p" / "0_run").is_dir()  # still parked, nothing lost

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"boom\n"))
    assert st.main(["unpack", str(evil)]) == 2
    assert "outside multirun/study/" in capsys.readouterr().err
    assert (tmp_path / STUDY / "p" / "0_run").is_dir() and not (tmp_path / "train.py").exists()
    assert st.main(["pack"]) == 0 and "carry .devstudy" in capsys.readouterr().out
    (tmp_path / "manifest.json").write_text("")  # the session's manifest step failed
    assert st.main(["archive", str(tmp_path), str(tmp_path / "manifest.json"), str(tmp_path / "a.tar.gz")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read the manifest")
    (tmp_path / "manifest.json").write_text("[]")
    assert st.main(["archive", str(tmp_path), str(tmp_path / "manifest.json"), str(tmp_path / "a.tar.gz")]) == 2
    assert "is not a manifest" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{}")
    assert st.main(["archive", str(tmp_path), str(tmp_path / "manifest.json"), str(tmp_path / "no" / "a.tar.gz")]) == 2
    assert "give the archive's file name in an existing folder" in capsys.readouterr().err
    assert st.main(["manifest", str(tmp_path / "no-such-root")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_first_pack_and_an_unpack_without_parts_say_what_they_did(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert st.main(["pack"]) == 0  # no study yet: the first device session starts it
    assert capsys.readouterr().out.startswith("no multirun/study/ yet: wrote an empty .devstudy/")
    assert st.main(["unpack"]) == 0  # e.g. the device call returned nothing
    assert capsys.readouterr().out.strip() == ("nothing was parked in .aside/ here; no archive parts given, so "
                                               "nothing was added")  # the first pack parked no study


def test_pack_carries_the_results_of_the_runs_other_presets_share(tmp_path: Path) -> None:
    """A session that reaches a shared cell finished in an earlier one copies it from the kit, not trains it."""
    from hydra import compose, initialize_config_dir

    from fmnist.config import CONF_DIR
    from fmnist.study import STUDY_DEFAULTS
    from fmnist.train.logging import to_container
    from fmnist.train.reuse import find_identical_run

    def config(preset: str, *job: str) -> dict:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return to_container(compose("train", overrides=[f"+experiment={preset}", *STUDY_DEFAULTS, *job]))

    results = {"metrics.csv": "epoch\n1\n", "dead_units.json": '{"dead_fraction": 0.0, "zero_fraction": 0.5}',
               "tensorboard/events": "e", "train.log": "log",
               "checkpoints/last.pt": "big"}

    def finished(rel: str, cfg: dict, **extra) -> Path:
        run = make_run(tmp_path, rel, **results)
        (run / "summary.json").write_text(json.dumps({"status": "completed", "config": cfg, "data_dir": "/home/data",
                                                      "data_fingerprint": "f00d", **extra}))
        return run

    base = config("stage2_skip", "model.skip=True", "seed=0")  # the base ResNet9 cell: 8 presets share it
    finished("stage2_skip/0_model.skip=True,seed=0", base)
    finished("stage2_skip/1_model.skip=False,seed=0", config("stage2_skip", "model.skip=False", "seed=0"))
    finished("stage1_models/0_model=resnet9,seed=0", base, reused_from="../../stage2_skip/0_model.skip=True,seed=0")
    assert st.pack(tmp_path) == 3
    kit = tree(tmp_path / ".devstudy" / STUDY)
    shared = "stage2_skip/0_model.skip=True,seed=0"
    assert sorted(k for k in kit if not k.endswith("summary.json")) == [
        f"{shared}/dead_units.json", f"{shared}/metrics.csv", f"{shared}/predictions_test.csv",
        f"{shared}/tensorboard/events"]  # no checkpoints, no log; the unshared run and the copy: summaries only

    # there, another preset's base cell finds it (the same data by fingerprint, in another folder)
    there = tmp_path / ".devstudy" / STUDY
    found = find_identical_run(there / "stage2_norm" / "0_norm=batchnorm,seed=0", config("stage2_norm",
                               "norm=batchnorm", "seed=0"), "/device/data", lambda: "f00d")
    assert found == there / shared


def test_a_run_the_session_renumbered_is_renamed_here_not_kept_twice(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """The session launched stage2_skip with all seeds where this study holds seed 0 alone: job 1 became job 3 there
    (fmnist.train.renumber), and its renamed summary came back. Here the run dir is renamed too, the link of a run
    that copied it follows, and the new seed comes back beside it."""
    old, new = "stage2_skip/1_model.skip=False,seed=0", "stage2_skip/3_model.skip=False,seed=0"
    repo = tmp_path / "repo"
    make_run(repo, old)
    copy = make_run(repo, "stage2_norm/0_norm=batchnorm,seed=0")
    (copy / "summary.json").write_text(json.dumps(
        {"status": "completed", "reused_from": "../../stage2_skip/1_model.skip=False,seed=0"}))
    st.pack(repo)
    device = tmp_path / "device"
    make_run(device, new)  # the kit's summary under its new name
    make_run(device, "stage2_skip/4_model.skip=False,seed=1")
    (tmp_path / "out").mkdir()
    parts = st.archive(device, {}, tmp_path / "out" / st.ARCHIVE)

    assert st.unpack(repo, parts) == (1, 1)
    assert f"renamed {old} to {new}" in capsys.readouterr().out
    runs = sorted(p.name for p in (repo / STUDY / "stage2_skip").iterdir())
    assert runs == ["3_model.skip=False,seed=0", "4_model.skip=False,seed=1"]
    assert (repo / STUDY / new / "predictions_test.csv").read_text() == f"id,pred\n1,{len(old)}\n"  # the run here
    link = json.loads((copy / "summary.json").read_text())["reused_from"]
    assert (copy / link).resolve() == (repo / STUDY / new).resolve()


def test_a_run_dir_being_trained_here_is_not_replaced_under_its_trainer(tmp_path: Path) -> None:
    """A sweep trains a run into multirun/study while the study is parked: unpacking then would put the parked run
    (or the archive's) where that process goes on writing, its files mixed into the finished run's. Refused, nothing
    moved; once the training ends, the unpack goes through."""
    from fmnist.train.run_dir import hold_run_dir

    make_run(tmp_path, "p/0_run", **{"metrics.csv": "epoch\n1\n"})
    st.pack(tmp_path)
    training = make_run(tmp_path, "p/0_run", status="running")
    with hold_run_dir(training):
        before = tree(training)
        with pytest.raises(st.FmnistError, match="being trained"):
            st.unpack(tmp_path, [])
        assert tree(training) == before
    assert (tmp_path / ".aside" / STUDY / "p" / "0_run" / "metrics.csv").is_file()  # still parked
    st.unpack(tmp_path, [])
    assert (tmp_path / STUDY / "p" / "0_run" / "metrics.csv").is_file() and not (tmp_path / ".aside").exists()
