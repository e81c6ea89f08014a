"""Dead units and sparsity, measured with forward hooks on every activation module.

A *unit* is one channel of one activation module's output. It is **dead** when its output is never > 0
at any position of any image fed through the network. For ReLU that means it only ever outputs 0. For
activations that can go negative (LeakyReLU, ELU, GELU, SiLU, and torch.nn's others a user adds: Mish, PReLU, ...)
the same *never-positive* statistic is reported (``negative_capable`` says so): such a unit still passes a
gradient, so "dead" there means "never positive", not "silent".

**Sparsity** (``zero_fraction``) is a different quantity: the fraction of all post-activation values
that are exactly 0 (over every unit, position and image). A net can be sparse without any dead unit.

``dead_unit_stats`` is what the trainer calls each epoch (``trainer.track_dead``) on a fixed probe batch,
and once at the end of every run on the whole validation split with the best weights, written to the run
dir as ``dead_units.json`` (so the result outlives the checkpoints, which are not committed);
``run_dead_stats`` reads that file, or measures a trained run dir's ``best.pt`` (``measure_run``) when the file is
absent, unreadable or incomplete.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from fmnist.analysis.errors import AnalysisError
from fmnist.data.loader import load_splits, normalize, to_unit_float
from fmnist.models.factory import build_model
from fmnist.train.checkpoint import BEST, CheckpointError, checkpoint_path, load_checkpoint
from fmnist.train.run_dir import read_json, write_json

log = logging.getLogger(__name__)

#: In a run dir: the DeadStats of the best weights on the validation split, written by the trainer.
DEAD_UNITS_FILE = "dead_units.json"

#: The numbers of each per_layer entry of DeadStats.
LAYER_NUMBERS = ("units", "dead_units", "dead_fraction", "zero_fraction")

#: The activation modules hooked: torch.nn's element-wise ones, so that an activation a user adds to conf/activation/
#: (torch.nn.Mish, PReLU, Hardswish, ...) is measured like the built-in ones (every activation in the models is its
#: own instance of one of these).
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.PReLU, nn.RReLU, nn.Hardtanh, nn.ReLU6, nn.CELU, nn.SELU,
    nn.Mish, nn.Hardswish, nn.Softplus, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh, nn.LogSigmoid, nn.Softsign,
    nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.Threshold,
)
#: Those whose output is never negative; for every other one "dead" is "never positive".
NON_NEGATIVE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.Softplus, nn.Sigmoid, nn.Hardsigmoid)


@dataclass
class DeadStats:
    """Dead units (never > 0) and sparsity (exact zeros) of one network on one set of images."""

    dead_fraction: float           # dead units / units, whole network (units = channels of every activation)
    zero_fraction: float           # exactly-zero post-activation values / all post-activation values
    per_layer: list[dict[str, Any]] = field(default_factory=list)  # layer, activation, units, dead_units,
    #                                                                 dead_fraction, zero_fraction
    negative_capable: bool = False  # some hooked activation can output negative values
    n_images: int = 0

    @property
    def units(self) -> int:
        return sum(layer["units"] for layer in self.per_layer)

    @property
    def dead_units(self) -> int:
        return sum(layer["dead_units"] for layer in self.per_layer)

    def save(self, run_dir: Path) -> None:
        write_json(Path(run_dir) / DEAD_UNITS_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> "DeadStats | None":
        """The run's dead_units.json; None when it has none, or one that is unreadable or incomplete (a warning)."""
        path = Path(run_dir) / DEAD_UNITS_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_dict(read_json(path))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("%s is unreadable or incomplete (%s: %s): not used", path, type(exc).__name__, exc)
            return None

    @classmethod
    def from_dict(cls, data: Any) -> "DeadStats":
        """The DeadStats `save` wrote; TypeError/KeyError/ValueError when `data` is not one."""
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object expected, got {type(data).__name__}")
        stats = cls(**data)
        numbers = [stats.dead_fraction, stats.zero_fraction, stats.n_images]
        numbers += [layer[key] for layer in stats.per_layer for key in LAYER_NUMBERS]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            raise ValueError("a statistic that is not a finite number")
        fractions = [stats.dead_fraction, stats.zero_fraction] + [layer[key] for layer in stats.per_layer
                                                                  for key in ("dead_fraction", "zero_fraction")]
        if not all(0 <= f <= 1 for f in fractions) or any(
                not 0 <= layer["dead_units"] <= layer["units"] for layer in stats.per_layer):
            raise ValueError("a fraction outside [0, 1], or more dead units than units")
        if not all(isinstance(layer["layer"], str) and isinstance(layer["activation"], str)
                   for layer in stats.per_layer):
            raise ValueError("a layer without its name or activation")
        return stats


class _Recorder:
    """Per activation layer: running channel maximum, count of exact zeros and of values (on the device,
    so recording needs no host synchronisation)."""

    def __init__(self) -> None:
        self.max: torch.Tensor | None = None
        self.zeros: torch.Tensor | int = 0
        self.values = 0

    def record(self, output: torch.Tensor) -> None:
        out = output.detach()
        channel_max = out.amax(dim=[d for d in range(out.dim()) if d != 1]).float()  # dim 1 = channels
        self.max = channel_max if self.max is None else torch.maximum(self.max, channel_max)
        self.zeros = self.zeros + (out == 0).sum()
        self.values += out.numel()


class _ModuleRecorder:
    """The forward hook of one activation module: one :class:`_Recorder` per call within a forward pass of the
    network, so that a module the network calls several times (a user's net that reuses one ``self.relu``, as
    torchvision's BasicBlock does) counts as that many layers, whatever their channel counts."""

    def __init__(self) -> None:
        self.calls: list[_Recorder] = []
        self.call = 0  # calls so far in the current forward pass of the network

    def __call__(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if self.call == len(self.calls):
            self.calls.append(_Recorder())
        self.calls[self.call].record(output)
        self.call += 1


def activation_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every activation module, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ACTIVATIONS)]


@torch.no_grad()
def dead_unit_stats(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> DeadStats:
    """Dead-unit fraction and sparsity of `model` on `images` (normalised float [N,1,28,28] on the model's
    device), in eval mode; the model's train/eval mode is restored and the hooks removed afterwards."""
    layers = activation_modules(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no activation module of type "
                         f"{', '.join(t.__name__ for t in ACTIVATIONS)}")
    modes = {m: m.training for m in model.modules()}
    recorders = [_ModuleRecorder() for _ in layers]
    handles = [m.register_forward_hook(r) for (_, m), r in zip(layers, recorders)]

    def new_pass(*_: Any) -> None:  # each forward pass of the network numbers the calls from 0 again
        for r in recorders:
            r.call = 0

    handles.append(model.register_forward_pre_hook(new_pass))
    try:
        model.eval()
        for start in range(0, images.shape[0], batch_size):
            model(images[start:start + batch_size])
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return _summarise(layers, recorders, int(images.shape[0]))


def _summarise(layers: list[tuple[str, nn.Module]], recorders: list[_ModuleRecorder], n_images: int) -> DeadStats:
    per_layer, used = [], []
    for (name, module), module_recorder in zip(layers, recorders):
        calls = module_recorder.calls  # none: the module never ran (an unused branch), nothing to count
        for i, rec in enumerate(calls):
            dead = int((rec.max <= 0).sum())
            per_layer.append({
                "layer": name if len(calls) == 1 else f"{name}#{i + 1}", "activation": type(module).__name__,
                "units": int(rec.max.numel()), "dead_units": dead, "dead_fraction": dead / rec.max.numel(),
                "zero_fraction": int(rec.zeros) / max(rec.values, 1),
            })
            used.append(rec)
    units = sum(layer["units"] for layer in per_layer)
    return DeadStats(
        dead_fraction=sum(layer["dead_units"] for layer in per_layer) / max(units, 1),
        zero_fraction=sum(int(r.zeros) for r in used) / max(sum(r.values for r in used), 1),
        per_layer=per_layer,
        negative_capable=any(not isinstance(m, NON_NEGATIVE) for _, m in layers),
        n_images=n_images,
    )


# ------------------------------------------------------------------------------------------ trained runs
@functools.lru_cache(maxsize=4)
def _validation_images(data_dir: str, device: str, val_fraction: float, subset: int | None,
                       split_seed: int) -> torch.Tensor | None:
    splits = load_splits(data_dir, torch.device(device), val_fraction, subset, split_seed)
    if splits.val is None:
        return None
    return normalize(to_unit_float(splits.val.images))


def run_dead_stats(config: dict[str, Any], run_dir: Path, data_dir: str | Path, device: str = "cpu",
                   checkpoint: str = BEST) -> DeadStats | None:
    """Dead-unit statistics of a trained run's best weights on its own validation split: the trainer's
    dead_units.json when the run has a readable one (and `checkpoint` is best), else measured from the
    `checkpoint` weights (:func:`measure_run`); None when the run has neither or no validation split. Reads only."""
    if checkpoint == BEST:
        saved = DeadStats.load(run_dir)
        if saved is not None:
            return saved
    return measure_run(config, run_dir, data_dir, device, checkpoint)


def measure_run(config: dict[str, Any], run_dir: Path, data_dir: str | Path, device: str = "cpu",
                checkpoint: str = BEST) -> DeadStats | None:
    """Measure the `checkpoint` weights of a trained run on its validation split; None when the run has no such
    checkpoint or no validation split. An AnalysisError when its config or checkpoint cannot be used."""
    path = checkpoint_path(run_dir, checkpoint)
    if not path.is_file():
        return None
    if not all(isinstance(config.get(key), dict) for key in ("model", "data", "trainer")):
        raise AnalysisError(f"run {run_dir} has no readable config (summary.json or .hydra/config.yaml)")
    cfg = OmegaConf.create(config)
    model = build_model(cfg)
    if not activation_modules(model):  # e.g. activation=torch.nn.Identity: nothing to measure
        raise AnalysisError(f"{type(model).__name__} has no activation module to measure")
    try:
        model.load_state_dict(load_checkpoint(path)["model"])
    except CheckpointError as exc:
        raise AnalysisError(f"{path} is unreadable or corrupt ({type(exc.__cause__ or exc).__name__})") from exc
    except (KeyError, RuntimeError) as exc:
        raise AnalysisError(f"{path} does not hold weights of the run's model ({type(exc).__name__})") from exc
    model.to(device)
    data = cfg.data
    images = _validation_images(str(data_dir), device, float(data.val_fraction),
                                None if data.subset is None else int(data.subset), int(data.split_seed))
    if images is None:
        return None
    return dead_unit_stats(model, images, int(cfg.trainer.get("eval_batch_size", 1024)))
