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
        def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
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


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: each tag's (step, value) after the purges the files ask for."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _attempt(run_dir: Path, resumed_epoch: int, epochs: range, loss: float, final: float | None = None) -> None:
    sinks = MetricSinks(OmegaConf.create({"tensorboard": True}), run_dir, {}, resumed_epoch)
    for epoch in epochs:
        sinks.log_epoch({"epoch": epoch, "train_loss": loss + epoch})
    if final is not None:
        sinks.log_final({"test_acc": final})
    sinks.close()


def test_tensorboard_shows_each_epoch_once_after_a_resume_or_a_fresh_start(tmp_path: Path) -> None:
    """An attempt interrupted after logging epochs 1-3 (checkpointed at 2) resumes after epoch 2: epoch 3 is
    the resumed run's, once. A forced rerun (from scratch) of that finished run shows only its own epochs and
    final scalars, not both runs' interleaved."""
    _attempt(tmp_path, 0, range(1, 4), 0.0)
    _attempt(tmp_path, 2, range(3, 5), 10.0, final=0.9)
    assert _scalars(tmp_path / "tensorboard") == {"train_loss": [(1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0)],
                                                  "final/test_acc": [(0, 0.9)]}
    _attempt(tmp_path, 0, range(1, 3), 100.0, final=0.5)
    assert _scalars(tmp_path / "tensorboard") == {"train_loss": [(1, 101.0), (2, 102.0)],
                                                  "final/test_acc": [(0, 0.5)]}


def test_progress_auto_is_off_when_stderr_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run started with stderr closed (`2>&-`, a daemon or cron job) has `sys.stderr = None`: `auto` shows no
    bars; it used to fail the run with AttributeError ('NoneType' object has no attribute 'isatty')."""
    from fmnist.train.logging import progress_enabled

    monkeypatch.setattr(sys, "stderr", None)
    assert progress_enabled("auto") is False
