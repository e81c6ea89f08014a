"""Atomic checkpoints: `last.pt` (everything needed to resume) and `best.pt` (weights at best val acc)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch

from fmnist.errors import FmnistError
from fmnist.train.run_dir import CHECKPOINT_DIR, atomic_write_bytes

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"


def checkpoint_path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / name


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Serialise to memory first, then write atomically: a crash never leaves a half-written file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with weights_only=True; a damaged file raises FmnistError naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise FmnistError(
            f"checkpoint {path} is unreadable or corrupt ({type(exc).__name__}); delete it to start the "
            f"run afresh, or restore it from a backup"
        ) from exc
