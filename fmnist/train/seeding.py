"""Seeding and RNG state capture (for exact resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices), and set cuDNN to deterministic kernels (`deterministic`) or to
    the fastest ones it finds (benchmark mode). Both flags are set either way: they are process-wide, and a run after
    a deterministic one in the same process (the benchmark's time-to-accuracy runs) must not inherit them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def _numpy_state_to_torch(state: tuple) -> tuple:
    # tensors instead of ndarrays, so checkpoints load with torch.load(weights_only=True)
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def rng_state() -> dict[str, Any]:
    """Every RNG state a training run consumes, for checkpoints."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state_to_torch(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _mps_available():  # on Apple GPUs the on-device augmentation draws from this generator
        state["mps"] = torch.mps.get_rng_state()
    return state


def _mps_available() -> bool:
    return hasattr(torch, "mps") and torch.backends.mps.is_available()


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() captured."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and _mps_available():
        torch.mps.set_rng_state(state["mps"])
