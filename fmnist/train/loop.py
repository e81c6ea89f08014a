"""The inner loops: one training epoch and one evaluation pass. Metrics accumulate on the device,
so there is no host synchronisation per step; the caller reads them once per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from fmnist.data.loader import DeviceSplit, eval_batches

#: torch.compile modes that replay CUDA graphs and need each training iteration marked.
CUDAGRAPH_COMPILE_MODES = ("reduce-overhead", "max-autotune")


@dataclass
class EpochStats:
    loss: float
    acc: float
    n: int
    finite: bool


@dataclass
class EvalResult:
    loss: float | None  # None when the split has no labels
    acc: float | None
    probs: torch.Tensor  # [N, C] float32 on CPU


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    autocast: Callable[[], object],
    label_smoothing: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    after_step: Callable[[], None] | None = None,
    mark_cudagraph_steps: bool = False,
) -> EpochStats:
    """Run one epoch of optimisation; the scheduler (and `after_step`, e.g. an EMA update) runs every
    iteration. `mark_cudagraph_steps` tells torch.compile's CUDA graphs (modes reduce-overhead and
    max-autotune) where each training iteration begins, so one step's outputs are not taken for the last's."""
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)  # float32: whole counts are exact far beyond an epoch's images
    n = 0
    for x, targets, labels in batches:
        if mark_cudagraph_steps:
            torch.compiler.cudagraph_mark_step_begin()
        with autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        batch = labels.shape[0]
        loss_sum += loss.detach() * batch
        pred = logits.detach().argmax(1)
        if targets.ndim == 2:  # mixup / cutmix: the weight of the predicted class in each image's mixed label
            correct += targets.gather(1, pred[:, None]).sum()
        else:
            correct += (pred == labels).sum()
        n += batch
    total_loss = float(loss_sum)  # the one host sync of the epoch
    return EpochStats(
        loss=total_loss / max(n, 1),
        acc=float(correct) / max(n, 1),
        n=n,
        finite=bool(torch.isfinite(loss_sum)),
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: DeviceSplit,
    batch_size: int,
    autocast: Callable[[], object],
    channels_last: bool = False,
    tta_flip: bool = False,
) -> EvalResult:
    """Class probabilities for every image of `split` (in id order), and loss/accuracy when labelled.
    `tta_flip` averages the logits of each image and its mirror image."""
    model.eval()
    device = split.images.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    probs = []
    for x, y in eval_batches(split, batch_size, channels_last):
        with autocast():
            logits = model(x)
            if tta_flip:
                logits = (logits + model(torch.flip(x, dims=[3]))) / 2
        logits = logits.float()
        probs.append(logits.softmax(1))
        if y is not None:
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    all_probs = torch.cat(probs).cpu()
    if split.labels is None:
        return EvalResult(None, None, all_probs)
    n = len(split)
    return EvalResult(float(loss_sum) / n, int(correct) / n, all_probs)
