"""fmnist.train.graphs on CPU: the capture is replaced by a stand-in that warms the network up the way
torch.cuda.make_graphed_callables does (train-mode forward passes that move BatchNorm statistics), so
the state restore and the routing between captured and eager forward are checked without a GPU. The
real capture is checked on a GPU in tests/test_gpu.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fmnist.train import graphs


class _Spy(nn.Module):
    """Stands in for the graphed wrapper: counts calls and runs the wrapped module eagerly."""

    def __init__(self, wrapper: nn.Module) -> None:
        super().__init__()
        self.wrapper, self.calls = wrapper, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.wrapper(x)


@pytest.fixture
def fake_capture(monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {"rng_set": 0}

    def make_graphed_callables(wrapper, sample_args, num_warmup_iters=3, allow_unused_input=False):
        seen["sample"] = sample_args[0]
        seen["autocast"] = torch.is_autocast_enabled("cuda")
        for _ in range(num_warmup_iters):  # what the real warm-up does to BatchNorm
            wrapper(torch.randn_like(sample_args[0]) * 3 + 1)
        seen["spy"] = _Spy(wrapper)
        return seen["spy"]

    def set_rng_state(state, device=None):
        seen["rng_set"] += 1

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", make_graphed_callables)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: torch.zeros(1))
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    return seen


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))


def test_capture_restores_weights_and_batchnorm_statistics(fake_capture: dict) -> None:
    model = _net()
    model(torch.zeros(2, 1, 28, 28))  # materialise the lazy layer
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graphed = graphs.capture_training_step(model, 16, (1, 28, 28), "fp32", channels_last=True)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "warm-up changed the model's state"
    assert fake_capture["rng_set"] == 1 and not model.training  # RNG restored, mode given back
    sample = fake_capture["sample"]
    assert sample.shape == (16, 1, 28, 28) and sample.is_contiguous(memory_format=torch.channels_last)
    assert graphed.shape == sample.shape and not fake_capture["autocast"]


def test_a_failed_capture_leaves_the_model_as_it_was(fake_capture: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up moved the BatchNorm statistics, then the capture failed: the eager fallback must train the
    model as it was before (graphs.py restores it in a finally)."""
    real = torch.cuda.make_graphed_callables  # the fixture's stand-in: warms up, then we fail

    def warm_up_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", warm_up_then_fail)
    model = _net()
    model(torch.zeros(2, 1, 28, 28))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="stream is capturing"):
        graphs.capture_training_step(model, 16, (1, 28, 28), "fp32", channels_last=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert fake_capture["rng_set"] == 1 and not model.training


def test_only_full_training_batches_replay_the_graph(fake_capture: dict) -> None:
    model = _net()
    model(torch.zeros(2, 1, 28, 28))
    graphed = graphs.capture_training_step(model, 8, (1, 28, 28), "fp32", channels_last=False)
    spy = fake_capture["spy"]
    graphed.train()
    full = graphed(torch.randn(8, 1, 28, 28))
    graphed(torch.randn(5, 1, 28, 28))  # a smaller last batch: eager
    assert spy.calls == 1 and full.shape == (8, 10)
    graphed.eval()
    graphed(torch.randn(8, 1, 28, 28))  # evaluation: eager
    assert spy.calls == 1
    assert {id(p) for p in graphed.parameters()} == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("setting", ["auto", True])
def test_failed_capture_falls_back_to_eager_only_under_auto(monkeypatch: pytest.MonkeyPatch, setting) -> None:
    from types import SimpleNamespace

    from fmnist.train import run

    def broken(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(graphs, "capture_training_step", broken)
    model, summary = _net(), {}
    t = SimpleNamespace(cuda_graphs=setting, batch_size=8)
    if setting is True:
        with pytest.raises(RuntimeError, match="stream is capturing"):
            run._capture(model, t, 100, (1, 28, 28), "bf16", True, summary)
    else:
        assert run._capture(model, t, 100, (1, 28, 28), "bf16", True, summary) is model
        assert summary == {"cuda_graphs": "failed: operation not permitted when stream is capturing"}


def test_capture_uses_the_batch_the_split_gives_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A training split smaller than trainer.batch_size trains in one batch of the whole split: that is the shape
    captured (a graph of the configured size would never replay). An AssertionError from the capture falls back too
    under auto."""
    from types import SimpleNamespace

    from fmnist.train import run

    asked: list = []

    def capture(model, batch_size, image_shape, precision, channels_last):
        asked.append(batch_size)
        return "graphed"

    monkeypatch.setattr(graphs, "capture_training_step", capture)
    model, summary = _net(), {}
    t = SimpleNamespace(cuda_graphs="auto", batch_size=128)
    assert run._capture(model, t, 100, (1, 28, 28), "fp32", False, summary) == "graphed" and asked == [100]
    assert summary["cuda_graphs"] == "captured" and summary["graph_capture_s"] >= 0
    assert run._capture(model, t, 1000, (1, 28, 28), "fp32", False, {}) == "graphed" and asked == [100, 128]

    def assertion(*args, **kwargs):
        raise AssertionError("capture check failed")

    monkeypatch.setattr(graphs, "capture_training_step", assertion)
    summary = {}
    assert run._capture(model, t, 100, (1, 28, 28), "fp32", False, summary) is model
    assert summary == {"cuda_graphs": "failed: capture check failed"}
