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
