"""Study presets: what each expands to, and that each one really runs (tiny, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import fmnist.study
import fmnist.train.entry  # noqa: F401  (registers the resolver the configs use)
from fmnist.study import main as study_main
from fmnist.study import SWEEPS_AT_ONCE_ENV, preset_jobs, stage_presets

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ["seed=0", "seed=1", "seed=2"]

EXPECTED_CELLS = {
    "stage1_models": [f"model={m}" for m in
                      ("resnet9", "resnet18", "resnet50", "preact_resnet18", "plain18", "vgg11")],
    "stage2_skip": ["model.skip=True", "model.skip=False"],
    "stage2_norm": [f"norm={n}" for n in ("batchnorm", "groupnorm", "layernorm", "none")],
    "stage2_optimizer": [f"optimizer={o}" for o in ("sgd", "adam", "adamw", "rmsprop")],
    "stage2_activation": [f"activation={a}" for a in ("relu", "leaky_relu", "elu", "gelu", "silu")],
    "stage3_augment": [f"augment={a}" for a in ("none", "standard", "strong", "mixup", "cutmix")],
}


def test_every_stage_has_a_preset() -> None:
    assert stage_presets() == sorted([
        "stage1_models", "stage1_capacity", "stage2_skip", "stage2_norm", "stage2_optimizer", "stage2_lr",
        "stage2_activation", "stage3_augment", "stage3_regularization",
    ])


@pytest.mark.parametrize("name", sorted(EXPECTED_CELLS))
def test_single_axis_presets_expand_to_cells_times_seeds(name: str) -> None:
    jobs = preset_jobs(name)
    assert jobs == [[cell, seed] for cell in EXPECTED_CELLS[name] for seed in SEEDS]


def test_grid_presets_expand_to_the_full_product() -> None:
    lr = preset_jobs("stage2_lr")
    assert len(lr) == 4 * 5 * 3
    assert {j[0] for j in lr} == {f"optimizer.lr={v}" for v in ("0.01", "0.03", "0.1", "0.3")}
    assert {j[1] for j in lr} == {f"scheduler={s}" for s in
                                  ("constant", "multistep", "cosine", "warmup_cosine", "onecycle")}
    capacity = preset_jobs("stage1_capacity")
    assert capacity == [[f"model={m}", f"model.width={w}", s] for m in ("resnet18", "resnet34")
                        for w in (16, 32, 64) for s in SEEDS]
    reg = preset_jobs("stage3_regularization")
    assert len(reg) == 3 * 2 * 2 * 3 and len({tuple(j) for j in reg}) == len(reg)


def test_every_preset_trains_on_the_study_protocol_and_shares_its_base_cells() -> None:
    """Every stage preset holds the base recipe of study_protocol.yaml (15 epochs) unless the command line
    says otherwise, and its cells differ only in its swept keys (a controlled comparison); per seed, 64 jobs
    are 56 distinct computations: the base ResNet9 cell of 8 presets and ResNet18 at width 64 of 2 are
    trained once under trainer.reuse_identical."""
    from fmnist.config import differing_keys
    from fmnist.train.reuse import IDENTITY_IGNORED_KEYS

    distinct: list[dict] = []
    jobs = [(name, job) for name in stage_presets() for job in preset_jobs(name, ["seed=0"])]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        assert compose("train", overrides=["+experiment=study_protocol"]).trainer.epochs == 15
        assert compose("train", overrides=["+experiment=stage2_skip", "trainer.epochs=3"]).trainer.epochs == 3
        by_preset: dict[str, list[dict]] = {}
        for name, job in jobs:
            config = OmegaConf.to_container(compose("train", overrides=[f"+experiment={name}", *job]), resolve=True)
            assert (config["trainer"]["epochs"], config["trainer"]["batch_size"]) == (15, 128), (name, job)
            by_preset.setdefault(name, []).append(flatten(config))
            if all(differing_keys(config, seen, IDENTITY_IGNORED_KEYS) for seen in distinct):
                distinct.append(config)
    assert len(jobs) == 64 and len(distinct) == 56
    for name, flat in by_preset.items():
        swept = {o.split("=", 1)[0] for o in preset_jobs(name)[0]} - {"seed"}
        differing = {k for k in set().union(*flat) if len({repr(f.get(k)) for f in flat}) > 1}
        uncontrolled = {k for k in differing if not any(k == s or k.startswith(s + ".") for s in swept)}
        assert not uncontrolled, f"{name}: cells differ in keys that are not swept: {sorted(uncontrolled)}"


def test_command_line_narrows_a_preset() -> None:
    assert preset_jobs("stage2_skip", ["seed=0"]) == [["model.skip=True", "seed=0"], ["model.skip=False", "seed=0"]]


def test_each_preset_file_states_its_whole_grid() -> None:
    """preset_params (the file alone, for use inside analyze.py) gives the jobs that composing the preset gives."""
    from fmnist.study import expand_grid, preset_params

    for name in stage_presets():
        assert expand_grid(preset_params(name)) == preset_jobs(name), name


def test_study_list_and_unknown_preset(capsys: pytest.CaptureFixture) -> None:
    assert study_main(["--list", "--presets", "stage2_skip"]) == 0
    assert "stage2_skip: 6 jobs" in capsys.readouterr().out
    assert study_main(["--presets", "stage9_nothing"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert study_main(["--presets", "stage2_skip", "trainer.epochs=1"]) == 2  # the `--` forgotten
    assert capsys.readouterr().err.strip().endswith("(overrides go after --: python -m fmnist.study --presets "
                                                    "stage2_skip -- trainer.epochs=1)")
    assert study_main(["--list", "--presets", "stage2_skip", "stage2_skip"]) == 0  # named twice, listed once
    assert capsys.readouterr().out.count("stage2_skip: 6 jobs") == 1
    assert study_main(["--list", "--presets", "stage2_skip", "--", "seed=["]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot parse the overrides after --:") and err.count("\n") == 1
    assert study_main(["--list", "--concurrent", "0"]) == 2
    assert capsys.readouterr().err == "error: --concurrent must be >= 1, got 0\n"


def test_study_list_counts_the_trainings(capsys: pytest.CaptureFixture) -> None:
    """Presets share their base cell: listed with the jobs, the trainings it takes (the rest are copies)."""
    assert study_main(["--list", "--presets", "stage2_skip", "stage2_norm", "--", "seed=0,1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "total: 12 jobs, 10 trainings (the other 2 copy a cell that another job trains: trainer.reuse_identical)")
    assert study_main(["--list", "--presets", "stage2_skip", "stage2_norm", "--", "seed=0",
                       "trainer.reuse_identical=false"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "total: 6 jobs"
    assert study_main(["--list", "--presets", "stage2_skip", "--", "trainer.epoch=3"]) == 2  # before listing
    out, err = capsys.readouterr()
    assert not out and err.startswith("error: stage2_skip with the overrides after --: Could not override")



@pytest.mark.parametrize(("extra", "message"), [
    (["trainer.epoch=3"], "error: stage2_skip with the overrides after --: Could not override 'trainer.epoch'."),
    (["model=resnet1000"], "error: stage2_skip with the overrides after --: In 'train': Could not find "
                           "'model/resnet1000'"),
])
def test_a_mistyped_override_after_the_dashes_stops_the_study_before_any_preset(
        extra: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """One line, before any sweep starts, instead of the same Hydra error from every preset in turn."""
    (tmp_path / "train.py").write_text("import pathlib\npathlib.Path(__file__).with_name('ran').write_text('')\n")
    monkeypatch.setattr(fmnist.study, "TRAIN_SCRIPT", tmp_path / "train.py")
    assert study_main(["--presets", "stage2_skip", "stage2_norm", "--", *extra]) == 2
    assert capsys.readouterr().err == message + "\n" and not (tmp_path / "ran").exists()

#: A stand-in train.py: says which preset is up, then waits; Ctrl-C makes it record `interrupted` and exit 130.
FAKE_TRAIN = """import pathlib, sys, time
out = pathlib.Path(__file__).parent / sys.argv[2].split("=")[1]
out.with_suffix(".up").write_text("")
try:
    time.sleep(60)
except KeyboardInterrupt:
    out.with_suffix(".interrupted").write_text("")
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_study_stopped_passes_one_ctrl_c_to_its_sweep(sig: signal.Signals, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Ctrl-C (or SIGTERM) of the study: the running preset's sweep gets one SIGINT (its runs record
    `interrupted`), no further preset starts, and the study ends with one line and status 130."""
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    monkeypatch.setattr(fmnist.study, "TRAIN_SCRIPT", tmp_path / "train.py")

    def stop_when_up() -> None:
        end = time.monotonic() + 30
        while not list(tmp_path.glob("*.up")) and time.monotonic() < end:
            time.sleep(0.02)
        os.kill(os.getpid(), sig)

    threading.Thread(target=stop_when_up, daemon=True).start()
    try:
        code: object = study_main(["--presets", "stage2_skip", "stage2_norm"])
    except BaseException as exc:  # noqa: B036 - what the study raises is the point
        code = exc
    assert code == 130
    assert sorted(p.name for p in tmp_path.glob("stage*")) == ["stage2_skip.interrupted", "stage2_skip.up"]
    out = capsys.readouterr().out
    assert "interrupted: the study stopped 1 running preset(s) (stage2_skip) and did not start 1" in out


def test_a_preset_whose_sweep_fails_is_named_and_the_study_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """A stand-in train.py that fails stage2_skip's sweep: the next preset still runs, the study names the failed
    one and exits 1."""
    (tmp_path / "train.py").write_text("import pathlib, sys\npreset = sys.argv[2].split('=')[1]\n"
                                       "pathlib.Path(__file__).with_name(preset + '.ran').write_text('')\n"
                                       "sys.exit(1 if preset == 'stage2_skip' else 0)\n")
    monkeypatch.setattr(fmnist.study, "TRAIN_SCRIPT", tmp_path / "train.py")
    assert study_main(["--presets", "stage2_skip", "stage2_norm"]) == 1
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == ["stage2_norm.ran", "stage2_skip.ran"]
    assert capsys.readouterr().out.endswith("study: 1 preset completed, 1 with failed or unstarted jobs "
                                            "(stage2_skip)\n")


def test_overrides_after_the_dashes_come_last_a_preset_runs_once_and_a_killed_sweep_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A stand-in train.py that notes its arguments: the overrides after -- follow the study's defaults, so that
    `-- trainer.reuse_identical=false` wins; a preset named twice runs once; and a preset whose sweep was killed by a
    signal (a negative exit status) counts as failed, not as completed."""
    (tmp_path / "train.py").write_text(
        "import os, pathlib, signal, sys\npreset = sys.argv[2].split('=')[1]\n"
        "with open(pathlib.Path(__file__).with_name(preset + '.argv'), 'a') as f:\n"
        "    f.write(' '.join(sys.argv[3:]) + '\\n')\n"
        "if preset == 'stage2_skip':\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    monkeypatch.setattr(fmnist.study, "TRAIN_SCRIPT", tmp_path / "train.py")
    monkeypatch.setattr(fmnist.study, "override_error", lambda presets, extra: None)  # composing takes seconds
    args = ["--presets", "stage2_norm", "stage2_skip", "stage2_norm", "--", "trainer.reuse_identical=false", "seed=0"]
    assert study_main(args) == 1
    noted = (tmp_path / "stage2_norm.argv").read_text()  # one line: it ran once
    assert noted == "trainer.reuse_identical=true trainer.reuse_identical=false seed=0\n"
    assert capsys.readouterr().out.endswith("study: 1 preset completed, 1 with failed or unstarted jobs "
                                            "(stage2_skip)\n")


#: Narrower grids for the tiny runs of the two big presets (the compose test checks every cell's config).
TINY_GRIDS = {"stage2_lr": ["optimizer.lr=0.1,0.3"], "stage3_regularization": ["optimizer.weight_decay=0,5e-4"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", stage_presets())
def test_each_preset_runs_tiny_on_cpu(name: str, real_resplit_dir: Path, tmp_path: Path) -> None:
    """One seed of every cell, 1 epoch, width 4, 256 images: every job completes. The two grids with more
    than 10 cells run every value of their code-path keys (schedulers; label smoothing, dropout) at two
    values of the numeric one."""
    sweep = tmp_path / name
    swept = {o.split("=", 1)[0] for o in preset_jobs(name)[0]}
    narrow = ["model.width=4,8" if "model.width" in swept else "model.width=4"]  # a width sweep still sweeps
    narrow += TINY_GRIDS.get(name, [])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", f"+experiment={name}", "seed=0", "trainer.epochs=1",
         *narrow, "data.subset=256", "data.val_fraction=0.02", "logger=none",
         f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=900,
    )
    summaries = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))]
    n_cells = len(preset_jobs(name, ["seed=0", *narrow]))
    assert len(summaries) == n_cells, proc.stdout[-3000:] + proc.stderr[-3000:]
    statuses = {s["run_dir"]: s["status"] for s in summaries}
    # Without normalisation ResNet9 at lr 0.1 may legitimately diverge; everything else must complete.
    assert all(v == "completed" for k, v in statuses.items() if "norm=none" not in k), statuses
    assert all(s["config"]["name"] == name for s in summaries)


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@pytest.mark.slow
def test_concurrent_presets_into_fixed_folders_resume_as_a_study(real_resplit_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """--concurrent 2 runs two presets at once, each into multirun/study/<preset>-style fixed folders; a cell
    that an earlier preset completed is copied, not trained; the same command again (a later session) skips
    every completed run."""
    tiny = ["seed=0", "trainer.epochs=1", "model.width=4", "data.subset=256", "data.val_fraction=0.02",
            "logger=none", f"data.dir={real_resplit_dir}", f"hydra.sweep.dir={tmp_path}/study/${{name}}"]
    args = ["--concurrent", "2", "--presets", "stage2_skip", "stage2_optimizer", "stage2_norm", "--", *tiny]
    assert study_main(args) == 0
    assert "study: 3 presets completed, 0 with failed or unstarted jobs" in capsys.readouterr().out
    runs: dict[str, dict[str, dict]] = {}
    for p in (tmp_path / "study").glob("*/*/summary.json"):
        runs.setdefault(p.parent.parent.name, {})[p.parent.name] = json.loads(p.read_text())
    assert {k: len(v) for k, v in runs.items()} == {"stage2_skip": 2, "stage2_optimizer": 4, "stage2_norm": 4}
    assert all(s["status"] == "completed" for v in runs.values() for s in v.values())
    # stage2_norm starts when a preset before it has ended, so its base cell (batchnorm) exists by then
    [(name, base)] = [(n, s) for n, s in runs["stage2_norm"].items() if "norm=batchnorm" in n]
    source = (tmp_path / "study" / "stage2_norm" / name / base["reused_from"]).resolve()
    assert source.parent.name in ("stage2_skip", "stage2_optimizer") and source.name.startswith("0_")
    assert base["test_acc"] == runs[source.parent.name][source.name]["test_acc"]
    assert not [s for name, s in runs["stage2_norm"].items() if s.get("reused_from") and not name.startswith("0_")]
    started = {s["run_dir"]: s["started_at"] for v in runs.values() for s in v.values()}

    assert study_main(args) == 0  # the next session: nothing is trained again
    again = {json.loads(p.read_text())["run_dir"]: json.loads(p.read_text())["started_at"]
             for p in (tmp_path / "study").glob("*/*/summary.json")}
    assert again == started
    assert study_main(["--concurrent", "0"]) == 2 and "--concurrent must be >= 1" in capsys.readouterr().err


def test_presets_run_at_once_are_told_how_many_share_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each preset's sweep sees how many sweeps run at once (gpu_pool divides the CPU threads among them)."""
    (tmp_path / "train.py").write_text(f"import os, pathlib, sys\npreset = sys.argv[2].split('=')[1]\n"
                                       f"pathlib.Path(__file__).with_name(preset + '.env').write_text("
                                       f"os.environ['{SWEEPS_AT_ONCE_ENV}'])\n")
    monkeypatch.setattr(fmnist.study, "TRAIN_SCRIPT", tmp_path / "train.py")
    assert study_main(["--concurrent", "3", "--presets", "stage2_skip", "stage2_norm"]) == 0
    assert {p.name: p.read_text() for p in tmp_path.glob("*.env")} == {"stage2_skip.env": "2", "stage2_norm.env": "2"}
    assert study_main(["--presets", "stage2_skip"]) == 0
    assert (tmp_path / "stage2_skip.env").read_text() == "1"


def test_list_into_a_reader_that_stops_early() -> None:
    """`python -m fmnist.study --list | head -1` ends quietly (status 0), not with a BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "fmnist.study", "--list", "--presets", "stage2_skip"],
                            cwd=Path(fmnist.study.__file__).parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0 and "Traceback" not in err, err
