"""Build the model a run config describes (the trainer and the analysis share this one path)."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from fmnist.config import safe_instantiate


def build_model(cfg: DictConfig) -> nn.Module:
    """Instantiate `cfg.model` with the `cfg.norm` and `cfg.activation` factories (allow-listed targets)."""
    norm = safe_instantiate(cfg.norm, "norm")
    activation = safe_instantiate(cfg.activation, "activation")
    return safe_instantiate(cfg.model, "model", norm=norm, activation=activation)
