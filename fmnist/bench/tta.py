"""Time-to-accuracy: run a preset through the normal trainer and report test accuracy and time."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from fmnist.config import CONF_DIR, validate
from fmnist.errors import FmnistError, first_line
from fmnist.train.run import train



def compose_preset(preset: str, overrides: list[str]) -> DictConfig:
    """`train.py +experiment=preset` with `overrides`, composed and validated; a FmnistError naming the problem
    (a key or option that does not exist, an unparsable override, a bad value) instead of Hydra's traceback."""
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"+experiment={preset}", "logger=none", *overrides])
    except (HydraException, OmegaConfBaseException) as exc:
        raise FmnistError(f"--tta {preset} with {' '.join(overrides) or 'no overrides'}: "
                          f"{first_line(exc)}") from None
    validate(cfg)
    return cfg


def time_to_accuracy(preset: str, overrides: list[str], run_root: Path | None = None) -> dict[str, Any]:
    """Train `+experiment=preset` (plus overrides) once; training time excludes start-up and the test pass, and
    counts the CUDA-graph capture (`graph_capture_s`, before epoch 1), as torch.compile's compilation is counted in
    epoch 1. The result names what the preset trains (model, its width, batch size, training images). The run dir
    goes to `run_root`, or to a temporary folder that is removed afterwards. A run that fails (diverges, runs out of
    memory) is a result too (status failed, `error`), so the next preset still runs."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={preset}", "logger=none", *overrides])
        model = compose("train", overrides=[f"+experiment={preset}", *overrides],
                        return_hydra_config=True).hydra.runtime.choices.get("model")
    with tempfile.TemporaryDirectory(prefix="fmnist-tta-") as tmp:
        root = Path(run_root) if run_root else Path(tmp)
        try:
            summary = train(cfg, root / preset)
        except FmnistError as exc:
            summary = {"status": "failed", "error": first_line(exc)[:300]}
    epochs_s, capture_s = summary.get("train_time_s"), summary.get("graph_capture_s")
    return {
        "preset": preset, "overrides": overrides, "status": summary["status"],
        "test_acc": summary.get("test_acc"), "best_val_acc": summary.get("best_val_acc"),
        "train_time_s": None if epochs_s is None else epochs_s + (capture_s or 0.0),
        "graph_capture_s": capture_s, "cuda_graphs": summary.get("cuda_graphs"),
        "epochs": summary.get("epochs_completed"), "device_name": summary.get("device_name"),
        "model": model, "width": cfg.model.get("width"), "batch_size": int(cfg.trainer.batch_size),
        "n_train": summary.get("n_train"),
        "run_dir": str(root / preset) if run_root else None, "error": summary.get("error"),
    }
