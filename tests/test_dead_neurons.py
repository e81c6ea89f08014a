"""Dead units (never > 0) and sparsity (exact zeros), measured with hooks on every activation module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from runs import compose_train
from torch import nn

from fmnist.analysis.collect import run_config
from fmnist.analysis.dead_neurons import (DEAD_UNITS_FILE, DeadStats, activation_modules, dead_unit_stats,
                                          measure_run, run_dead_stats)
from fmnist.models.factory import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
#: (norm module index in its Sequential, channels to kill): prep conv_norm_act, layer1's conv, layer3's res2.
PLANTS = {"prep.1": [0, 2], "layer1.1": [5], "layer3.4.res2.1": [1, 7, 30]}


def tiny_resnet9(activation: str, width: int = 4) -> nn.Module:
    cfg = OmegaConf.create({"model": OmegaConf.load(CONF / "model" / "resnet9.yaml"),
                            "norm": OmegaConf.load(CONF / "norm" / "batchnorm.yaml"),
                            "activation": OmegaConf.load(CONF / "activation" / f"{activation}.yaml")})
    cfg.model.width = width
    return build_model(cfg)


def plant_dead_channels(model: nn.Module, images: torch.Tensor) -> None:
    """Calibrate BatchNorm on `images`, then make every channel alive (small gain, bias +3: the norm output
    stays > 0 unless an input lies 60 std below its mean) except the planted ones (gain 0, large negative
    bias -10: the norm outputs exactly -10 for every input)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for chunk in images.split(100):
            model(chunk)
    norms = dict(model.named_modules())
    with torch.no_grad():
        for name, m in norms.items():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(0.05)
                m.bias.fill_(3.0)
        for name, channels in PLANTS.items():
            norms[name].weight[channels] = 0.0
            norms[name].bias[channels] = -10.0
    model.eval()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "silu"])
def test_planted_dead_channels_are_counted_exactly(activation: str) -> None:
    torch.manual_seed(0)
    model = tiny_resnet9(activation)
    images = torch.randn(300, 1, 28, 28)
    plant_dead_channels(model, images)
    stats = dead_unit_stats(model, images, batch_size=128)  # 300 = 128 + 128 + 44: batches are combined

    layers = {layer["layer"]: layer for layer in stats.per_layer}
    assert len(layers) == 8  # every activation module of ResNet9, nested ones included
    planted_by_act = {name[: -len(".1")] + ".2": len(ch) for name, ch in PLANTS.items()}  # norm i -> act i+1
    for name, layer in layers.items():
        assert layer["dead_units"] == planted_by_act.get(name, 0), name
        assert layer["dead_fraction"] == layer["dead_units"] / layer["units"]
    assert [layer["units"] for layer in stats.per_layer] == [4, 8, 8, 8, 16, 32, 32, 32]
    assert stats.dead_units == 6 and stats.units == 140
    assert stats.dead_fraction == 6 / 140
    assert stats.negative_capable == (activation != "relu")
    assert stats.n_images == 300

    # sparsity: only planted channels can be exactly 0, and they are iff act(-10) == 0 in float32
    act = activation_modules(model)[0][1]
    planted_zero = bool(act(torch.tensor([-10.0])) == 0)
    positions = dict(zip(layers, (784, 784, 196, 196, 196, 49, 9, 9)))  # H*W at each activation
    total = sum(layer["units"] * positions[name] * 300 for name, layer in layers.items())
    zeros = sum(n * positions[name] * 300 for name, n in planted_by_act.items()) if planted_zero else 0
    assert layers["layer3.4.res2.2"]["zero_fraction"] == (3 / 32 if planted_zero else 0.0)
    assert stats.zero_fraction == zeros / total


def test_one_positive_value_anywhere_keeps_a_unit_alive() -> None:
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.0]).view(3, 1, 1, 1))
        conv.bias.zero_()
    model = nn.Sequential(conv, nn.ReLU())
    images = torch.zeros(50, 1, 28, 28)
    images[37, 0, 27, 3] = 1.0  # one positive pixel in one image, in the last batch
    stats = dead_unit_stats(model, images, batch_size=16)
    assert [stats.per_layer[0]["dead_units"], stats.dead_fraction] == [2, 2 / 3]  # channel 0 lives
    total = 3 * 50 * 28 * 28
    assert stats.zero_fraction == (total - 1) / total  # dead (2 channels) and sparse (almost all zeros) differ


def test_units_are_measured_in_eval_mode_without_touching_the_norm_statistics() -> None:
    """A model handed over in train mode (the trainer's, each epoch) is measured as it is evaluated: BatchNorm
    with its running statistics, which the measurement leaves as they were (train mode would normalise each
    batch by itself and overwrite them with the probe images')."""
    torch.manual_seed(0)
    model = tiny_resnet9("relu")
    images = torch.randn(64, 1, 28, 28)
    plant_dead_channels(model, images)  # calibrated running statistics, 6 dead units, eval mode
    expected = dead_unit_stats(model, images)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = dead_unit_stats(model, images + 5.0, batch_size=16)  # shifted images: batch statistics would differ
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert stats.dead_units == expected.dead_units == 6  # running statistics: the planted units stay dead


def test_model_mode_is_restored_and_hooks_removed() -> None:
    model = tiny_resnet9("relu")
    model.train()
    model.layer2.eval()  # a mixed state is restored module by module
    dead_unit_stats(model, torch.randn(8, 1, 28, 28))
    assert model.training and not model.layer2.training and model.layer3.training
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="no activation module"):
        dead_unit_stats(nn.Linear(784, 10), torch.randn(2, 784))


@pytest.mark.slow
def test_trained_run_on_its_validation_split(tiny_analysis) -> None:
    runs = tiny_analysis.result.dead_runs
    assert len(runs) == 4 and set(runs["activation"]) == {"relu"}  # the completed runs; the failed one has none
    run_dir = Path(runs["run_dir"].iloc[0])
    stats = run_dead_stats(run_config(run_dir), run_dir, tiny_analysis.sweep.data_dir)
    assert stats.n_images == 3000  # data.val_fraction=0.05 of 60,000
    assert runs["dead_fraction"].iloc[0] == stats.dead_fraction
    assert runs["zero_fraction"].iloc[0] == stats.zero_fraction
    assert 0.2 < stats.zero_fraction < 0.9  # a trained ReLU net is about half sparse
    layers = tiny_analysis.result.dead_layers
    assert len(layers) == 4 * 8 and set(layers["module"]) == {"ReLU"}
    assert run_dead_stats(run_config(run_dir), run_dir / "missing", tiny_analysis.sweep.data_dir) is None


@pytest.mark.slow
def test_the_trainers_dead_units_file_matches_a_measurement_from_best_pt(tiny_analysis, tmp_path: Path) -> None:
    """dead_units.json (written by the trainer) holds what analysis would measure from best.pt; a run dir
    without checkpoints (as committed) still has its result, one without either has none."""
    import shutil

    source = Path(tiny_analysis.result.dead_runs["run_dir"].iloc[0])
    saved = DeadStats.load(source)
    assert saved is not None and saved.n_images == 3000
    measured_dir = shutil.copytree(source, tmp_path / "measured")
    (measured_dir / DEAD_UNITS_FILE).unlink()
    measured = run_dead_stats(run_config(measured_dir), measured_dir, tiny_analysis.sweep.data_dir)
    assert [l["dead_units"] for l in measured.per_layer] == [l["dead_units"] for l in saved.per_layer]
    assert measured.zero_fraction == pytest.approx(saved.zero_fraction, abs=1e-6)
    assert measured.dead_fraction == saved.dead_fraction and measured.n_images == saved.n_images

    committed = shutil.copytree(source, tmp_path / "committed")
    shutil.rmtree(committed / "checkpoints")
    assert run_dead_stats(run_config(committed), committed, tiny_analysis.sweep.data_dir) == saved
    (committed / DEAD_UNITS_FILE).unlink()
    assert run_dead_stats(run_config(committed), committed, tiny_analysis.sweep.data_dir) is None


# ------------------------------------------------------------------------------------------ damaged run files
def saved_stats() -> DeadStats:
    return DeadStats(0.25, 0.5, [{"layer": "prep.2", "activation": "ReLU", "units": 4, "dead_units": 1,
                                  "dead_fraction": 0.25, "zero_fraction": 0.5}], False, 10)


@pytest.mark.parametrize("content", ['{"dead_fraction": 0.1, "zero_fr', "{}", "[]", '{"dead_fraction": 0.1, '
                                     '"zero_fraction": 0.2, "per_layer": [{"layer": "a", "units": 3}]}',
                                     '{"dead_fraction": "x", "zero_fraction": 0.2}',
                                     '{"dead_fraction": NaN, "zero_fraction": 0.2}',
                                     '{"dead_fraction": 1.5, "zero_fraction": 0.2}',
                                     '{"dead_fraction": 0.1, "zero_fraction": 0.2, "per_layer": [{"layer": 5, '
                                     '"activation": "ReLU", "units": 3, "dead_units": 0, "dead_fraction": 0.0, '
                                     '"zero_fraction": 0.2}]}',
                                     '{"dead_fraction": 0.1, "zero_fraction": 0.2, "per_layer": [{"layer": "a", '
                                     '"activation": "ReLU", "units": 0, "dead_units": 2, "dead_fraction": 0.1, '
                                     '"zero_fraction": 0.2}]}'])
def test_unreadable_or_incomplete_dead_units_file_is_not_used(tmp_path: Path, content: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    saved_stats().save(tmp_path)
    assert DeadStats.load(tmp_path) == saved_stats()
    (tmp_path / DEAD_UNITS_FILE).write_text(content)
    assert DeadStats.load(tmp_path) is None
    assert f"{tmp_path / DEAD_UNITS_FILE} is unreadable or incomplete" in caplog.text


def test_a_dead_units_file_at_the_ends_of_its_ranges_is_used(tmp_path: Path) -> None:
    """No zero at all (a GELU net), no dead unit, or every unit of a layer dead (a diverged run) are valid results;
    the file holds the best weights' statistics, so another checkpoint is measured, never read from it."""
    from fmnist.train.checkpoint import LAST

    for stats in (DeadStats(0.0, 0.0, [{"layer": "prep.2", "activation": "GELU", "units": 4, "dead_units": 0,
                                        "dead_fraction": 0.0, "zero_fraction": 0.0}], True, 10),
                  DeadStats(1.0, 1.0, [{"layer": "prep.2", "activation": "ReLU", "units": 4, "dead_units": 4,
                                        "dead_fraction": 1.0, "zero_fraction": 1.0}], False, 10)):
        stats.save(tmp_path)
        assert DeadStats.load(tmp_path) == stats
    assert run_dead_stats({}, tmp_path, tmp_path, checkpoint=LAST) is None  # no last.pt to measure


def test_an_activation_that_never_ran_is_left_out_and_the_next_ones_counted() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.ReLU()  # registered first, never called
            self.conv = nn.Conv2d(1, 2, 1)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.conv(x))

    model = Branchy()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        model.conv.bias.zero_()
    stats = dead_unit_stats(model, torch.ones(3, 1, 28, 28))  # channel 1 is -1 everywhere: dead
    assert [(layer["layer"], layer["dead_units"]) for layer in stats.per_layer] == [("act", 1)]
    assert (stats.dead_fraction, stats.zero_fraction) == (0.5, 0.5)


def fake_trained_run(root: Path) -> Path:
    """A completed run dir of a width-4 ResNet9 whose best.pt is damaged and that has no dead_units.json."""
    run = root / "sweep" / "0_seed=0"
    (run / "checkpoints").mkdir(parents=True)
    config = OmegaConf.to_container(compose_train(root, "model.width=4", "name=fake"), resolve=True)
    (run / "summary.json").write_text(json.dumps({"status": "completed", "seed": 0, "config": config}))
    (run / "checkpoints" / "best.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    return run


def test_corrupt_best_pt_skips_the_run_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fmnist.analysis.collect import collect
    from fmnist.analysis.errors import AnalysisError
    from fmnist.analysis.pipeline import dead_neuron_tables

    run = fake_trained_run(tmp_path)
    with pytest.raises(AnalysisError, match=r"best.pt is unreadable or corrupt \(") as info:
        measure_run(run_config(run), run, tmp_path)
    assert "delete" not in str(info.value) and "afresh" not in str(info.value)  # no advice meant for training
    runs, layers = dead_neuron_tables(OmegaConf.create({"data_dir": str(tmp_path)}), collect(tmp_path / "sweep"))
    assert runs.empty and layers.empty
    assert f"dead neurons: {run.name} skipped: {run / 'checkpoints' / 'best.pt'} is unreadable" in caplog.text


def test_weights_of_another_model_or_a_run_without_config_are_named(tmp_path: Path) -> None:
    """best.pt of a width-8 net in a width-4 run (a run dir copied over another), or a run whose config cannot be
    read: one AnalysisError each, which the pipeline turns into a skipped run."""
    from fmnist.analysis.errors import AnalysisError
    from fmnist.train.checkpoint import save_checkpoint

    run = fake_trained_run(tmp_path)
    other = build_model(compose_train(tmp_path, "model.width=8"))
    save_checkpoint(run / "checkpoints" / "best.pt", {"model": other.state_dict(), "epoch": 1})
    with pytest.raises(AnalysisError, match=r"best.pt does not hold weights of the run's model \(RuntimeError\)$"):
        measure_run(run_config(run), run, tmp_path)
    with pytest.raises(AnalysisError, match=f"^run {run} has no readable config"):
        measure_run({"model": {"width": 4}}, run, tmp_path)


@pytest.mark.parametrize("target", ["torch.nn.Mish", "torch.nn.PReLU", "torch.nn.Hardswish", "torch.nn.Tanh"])
def test_an_activation_a_user_adds_from_torch_nn_is_measured(target: str) -> None:
    """An option added to conf/activation/ (a torch.nn activation the built-in options do not name) is hooked like
    the built-in ones: its units are counted, and "dead" is "never positive" for it."""
    cfg = OmegaConf.create({"model": OmegaConf.load(CONF / "model" / "resnet9.yaml"),
                            "norm": OmegaConf.load(CONF / "norm" / "batchnorm.yaml"),
                            "activation": {"_target_": target, "_partial_": True}})
    cfg.model.width = 4
    model = build_model(cfg)
    stats = dead_unit_stats(model, torch.randn(16, 1, 28, 28))
    assert [layer["activation"] for layer in stats.per_layer] == [target.rsplit(".", 1)[1]] * 8
    assert stats.units == 140 and stats.negative_capable


def test_a_model_without_activation_modules_is_skipped_with_a_warning(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """activation=torch.nn.Identity: analyze.py names the run as not measured instead of stopping on a ValueError."""
    from fmnist.analysis.collect import collect
    from fmnist.analysis.errors import AnalysisError
    from fmnist.analysis.pipeline import dead_neuron_tables
    from fmnist.train.checkpoint import save_checkpoint

    run = fake_trained_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["config"]["activation"] = {"_target_": "torch.nn.Identity", "_partial_": True}
    (run / "summary.json").write_text(json.dumps(summary))
    save_checkpoint(run / "checkpoints" / "best.pt", {"model": build_model(OmegaConf.create(summary["config"]))
                                                       .state_dict(), "epoch": 1})
    with pytest.raises(AnalysisError, match=r"^ResNet9 has no activation module to measure$"):
        measure_run(run_config(run), run, tmp_path)
    runs, layers = dead_neuron_tables(OmegaConf.create({"data_dir": str(tmp_path)}), collect(tmp_path / "sweep"))
    assert runs.empty and layers.empty
    assert f"dead neurons: {run.name} skipped: ResNet9 has no activation module to measure" in caplog.text


def test_an_activation_module_the_network_calls_twice_counts_as_two_layers() -> None:
    """A user's net that reuses one `self.relu` (as torchvision's BasicBlock does), here after 4 and then 8 channels:
    each call is a layer of its own. Before, both calls fed one running maximum: the final dead-unit pass of a run
    that had trained every epoch failed ("The size of tensor a (4) must match the size of tensor b (8)")."""
    relu = nn.ReLU()
    conv1, conv2 = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 8, 1)
    with torch.no_grad():
        for conv, bias in ((conv1, [-1.0, 1, 1, 1]), (conv2, [-1.0, -1, -1, 1, 1, 1, 1, 1])):
            conv.weight.zero_()
            conv.bias.copy_(torch.tensor(bias))  # a negative bias: that channel is 0 everywhere, dead
    model = nn.Sequential(conv1, relu, conv2, relu, nn.Flatten(), nn.LazyLinear(10))
    stats = dead_unit_stats(model, torch.randn(40, 1, 28, 28), batch_size=16)  # 3 batches: calls counted per pass
    assert [(layer["layer"], layer["units"], layer["dead_units"]) for layer in stats.per_layer] == [
        ("1#1", 4, 1), ("1#2", 8, 3)]
    assert stats.dead_fraction == 4 / 12 and stats.zero_fraction == 4 / 12
