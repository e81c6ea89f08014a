"""Build the model a run config describes (the trainer and the analysis share this one path)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from fmnist.config import FACTORY_CALLS, safe_instantiate
from fmnist.data.resplit import NUM_CLASSES
from fmnist.errors import ConfigError, first_line

#: What every model maps: a batch of [1, 28, 28] images to [batch, NUM_CLASSES] logits.
IMAGE_SHAPE = (1, 28, 28)


def build_model(cfg: DictConfig) -> nn.Module:
    """Instantiate `cfg.model` with the `cfg.norm` and `cfg.activation` factories (allow-listed targets)."""
    norm = _group_factory(cfg.norm, "norm")
    activation = _group_factory(cfg.activation, "activation")
    return safe_instantiate(cfg.model, "model", norm=norm, activation=activation)


def _group_factory(node: DictConfig, group: str) -> Callable[..., nn.Module]:
    """The factory built from `group`'s config; an error the models get calling it names `group` and how the models
    call it (a norm a user adds, `_target_: torch.nn.GroupNorm` with `num_groups: 8`, fails inside the model's
    constructor: the error named the model)."""
    factory = safe_instantiate(node, group)

    def make(*args: Any) -> nn.Module:
        try:
            return factory(*args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot build {group!r} from its config: the models call it as {FACTORY_CALLS[group]}: "
                              f"{first_line(exc)}") from exc

    return make


def check_logits(model: nn.Module) -> None:
    """A ConfigError unless `model` maps two [1, 28, 28] images to [2, NUM_CLASSES] logits: a model a user adds with
    another number of classes would train and write predictions of classes the data does not have, one whose layers
    do not fit 28x28 images would fail later with a traceback. Runs a CPU copy in eval mode under no_grad, so the
    model's weights, norm statistics and random state are untouched."""
    probe = copy.deepcopy(model).to("cpu").eval()
    try:
        with torch.no_grad():
            out = probe(torch.zeros(2, *IMAGE_SHAPE))
    except Exception as exc:  # the user's layers do not fit the images
        raise ConfigError(f"model: {type(model).__name__} fails on a batch of [1, 28, 28] images: "
                          f"{type(exc).__name__}: {first_line(exc)}") from exc
    shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != [2, NUM_CLASSES]:
        raise ConfigError(f"model: {type(model).__name__} maps a batch of 2 images to {shape}, not [2, {NUM_CLASSES}]"
                          f" logits (Fashion-MNIST has {NUM_CLASSES} classes: check model.num_classes)")
