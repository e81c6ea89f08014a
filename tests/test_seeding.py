"""fmnist.train.seeding: the cuDNN flags that seed_everything sets (they are process-wide)."""

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
