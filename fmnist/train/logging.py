"""One place for every metric sink: the console/log file, TensorBoard and (optionally) W&B."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("fmnist")


def progress_enabled(setting: str | bool) -> bool:
    """tqdm bars only on an interactive terminal (`auto`), never in Slurm logs or CI, nor with stderr closed."""
    if isinstance(setting, bool):
        return setting
    return setting == "auto" and sys.stderr is not None and sys.stderr.isatty()


def format_epoch(row: Mapping[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"lr {row['lr']:.4g}",
             f"train_loss {row['train_loss']:.4f}", f"train_acc {row['train_acc']:.4f}"]
    if row.get("val_acc") is not None:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_acc {row['val_acc']:.4f}"]
    parts += [f"{row['epoch_time_s']:.2f}s", f"{row['images_per_s']:.0f} img/s"]
    return " | ".join(parts)


class MetricSinks:
    """Fans epoch rows and final results out to TensorBoard and W&B, as configured in `logger`. `resumed_epoch`:
    the epoch the run resumes after (0: it starts from scratch). TensorBoard hides what an earlier attempt in the
    run dir logged from the next epoch on (all of it for a fresh start: a run started again or forced), so its
    curves show each epoch once, as metrics.csv does."""

    def __init__(self, cfg: DictConfig, run_dir: Path, resolved_config: dict[str, Any], resumed_epoch: int = 0) -> None:
        self.tb = None
        self.wandb_run = None
        if cfg.get("tensorboard", False):
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when used

            # purge_step: events of earlier files in log_dir at this step or later are dropped by TensorBoard
            purge_step = resumed_epoch + 1 if resumed_epoch else 0  # 0 also drops the final/* scalars (step 0)
            self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step)
        wb = cfg.get("wandb")
        if wb is not None and wb.get("enabled", False):
            try:
                self.wandb_run = self._start_wandb(wb, run_dir, resolved_config)
            except BaseException:  # the writer opened above would outlive the failed run
                self.close()
                raise

    @staticmethod
    def _start_wandb(wb: DictConfig, run_dir: Path, resolved_config: dict[str, Any]) -> Any:
        """A W&B run in `run_dir`, as `logger.wandb` configures it."""
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        return wandb.init(
            project=wb.get("project", "fmnist"),
            entity=wb.get("entity"),
            group=wb.get("group"),
            mode=wb.get("mode", "offline"),
            dir=str(run_dir),
            name=Path(run_dir).name,
            config=resolved_config,
            resume="allow",
            id=wb.get("id"),
        )

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        step = int(row["epoch"])
        scalars = {k: v for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))}
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, step)
            self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(dict(scalars, epoch=step), step=step)

    def log_final(self, results: Mapping[str, Any]) -> None:
        finals = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.tb is not None:
            for key, value in finals.items():
                self.tb.add_scalar(f"final/{key}", value, 0)
            self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.summary.update(finals)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
