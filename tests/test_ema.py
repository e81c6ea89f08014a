"""ModelEMA: the average it keeps, warm-up, integer buffers, and exact state round-trips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fmnist.train.ema import ModelEMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(3))


def test_ema_follows_the_formula() -> None:
    model = nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.step(model)  # warm-up decay: min(0.5, 2/11) = 2/11
    d = 2 / 11
    expected = d * start + (1 - d) * (start + 1.0)
    assert torch.allclose(ema.shadow.weight, expected)
    assert ema.shadow.weight.requires_grad is False


def test_integer_buffers_are_copied_and_every_skips() -> None:
    model = _model()
    model(torch.randn(4, 1, 5, 5))
    ema = ModelEMA(model, decay=0.9, every=2)
    model(torch.randn(4, 1, 5, 5))  # BN counter 2 -> ema still 1 after the skipped step
    ema.step(model)
    assert int(ema.shadow[1].num_batches_tracked) == 1
    ema.step(model)
    assert int(ema.shadow[1].num_batches_tracked) == 2 and ema.updates == 1


def test_state_round_trip_is_exact() -> None:
    model = _model()
    model(torch.randn(4, 1, 5, 5))
    a = ModelEMA(model, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)
        a.step(model)
    b = ModelEMA(model, decay=0.99)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    a.step(model)
    b.step(model)
    for (ka, va), (kb, vb) in zip(a.shadow.state_dict().items(), b.shadow.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_warm_up_counts_updates_and_a_resume_keeps_the_every_phase() -> None:
    model = nn.Linear(1, 1, bias=False)
    start = model.weight.detach().clone()
    ema = ModelEMA(model, decay=0.9, every=2)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.step(model)  # step 1 of 2: no update
    resumed = ModelEMA(model, decay=0.9, every=2)
    resumed.load_state_dict(ema.state_dict())
    for e in (ema, resumed):
        e.step(model)  # step 2: the first update, warm-up decay min(0.9, 2/11) from the update count, not the step
        d = 2 / 11
        assert e.updates == 1 and torch.allclose(e.shadow.weight, d * start + (1 - d) * (start + 1.0))


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_bad_decay(decay: float) -> None:
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        ModelEMA(nn.Linear(1, 1), decay=decay)
