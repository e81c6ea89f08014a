"""fmnist.train.logging: the metric sinks."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fmnist.train.logging import MetricSinks


def test_a_sink_that_fails_to_open_closes_the_ones_already_open(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorBoard opens, then W&B fails to start: the TensorBoard writer (its file and thread) is closed, not
    left behind by the failed run (in a sweep run in one process, by every failed job)."""
    import torch.utils.tensorboard as tb

    closed: list[bool] = []

    class Writer:
        def __init__(self, log_dir: str) -> None:
            pass

        def close(self) -> None:
            closed.append(True)

    def init(**kwargs):
        raise RuntimeError("wandb cannot start")

    monkeypatch.setattr(tb, "SummaryWriter", Writer)
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    cfg = OmegaConf.create({"tensorboard": True, "wandb": {"enabled": True}})
    with pytest.raises(RuntimeError, match="wandb cannot start"):
        MetricSinks(cfg, tmp_path, {})
    assert closed == [True]
