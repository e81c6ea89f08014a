"""fmnist.train.seeding: the generators seed_everything seeds and a checkpoint restores, and the cuDNN flags it sets."""

from __future__ import annotations

import pytest
import torch

from fmnist.train.seeding import seed_everything


@pytest.fixture
def cudnn_flags():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.usefixtures("cudnn_flags")
def test_a_fast_run_after_a_deterministic_one_gets_fast_kernels() -> None:
    """`trainer.deterministic=false` after a deterministic run in the same process (python -m fmnist.bench runs the
    time-to-accuracy presets after its own deterministic seeding) must not keep cuDNN deterministic."""
    seed_everything(0, deterministic=True)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    seed_everything(0, deterministic=False)
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    seed_everything(0, deterministic=True)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_the_apple_gpu_generator_is_checkpointed_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """On MPS the on-device augmentation draws from the MPS generator: a resume restores it too (faked here: no
    Apple GPU on this machine)."""
    from fmnist.train import seeding

    generator = {"state": torch.tensor([1, 2, 3], dtype=torch.uint8)}
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: generator["state"].clone())
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: generator.update(state=state.clone()))
    saved = seeding.rng_state()
    assert torch.equal(saved["mps"], torch.tensor([1, 2, 3], dtype=torch.uint8))
    generator["state"] = torch.tensor([9, 9, 9], dtype=torch.uint8)  # the generator moved on
    seeding.set_rng_state(saved)
    assert torch.equal(generator["state"], torch.tensor([1, 2, 3], dtype=torch.uint8))


def _draws() -> tuple:
    import random

    import numpy as np

    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@pytest.mark.usefixtures("cudnn_flags")
def test_a_seed_fixes_every_generator_a_run_draws_from() -> None:
    seed_everything(7)
    first = _draws()
    seed_everything(7)
    assert _draws() == first
    seed_everything(8)
    other = _draws()
    assert all(a != b for a, b in zip(other, first))  # each generator follows the seed


def test_a_resumed_run_draws_what_the_uninterrupted_one_would_have() -> None:
    """rng_state / set_rng_state (kept in last.pt): Python, NumPy and torch continue where they were saved."""
    from fmnist.train.seeding import rng_state, set_rng_state

    torch.manual_seed(0)
    saved = rng_state()
    expected = _draws()
    _draws()  # the generators move on (the interrupted epoch)
    set_rng_state(saved)
    assert _draws() == expected
