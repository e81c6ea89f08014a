"""Two training pipelines timed on the same model, data and device:

* naive — what users usually write: per-sample PIL decode of the PNG bytes, torchvision transforms
  (RandomCrop(28, padding=4), RandomHorizontalFlip, ToTensor, Normalize), a DataLoader with worker
  processes, fp32, host-side metrics every step;
* ours — fmnist's trainer path: uint8 data resident on the device, batched on-device augmentation,
  autocast (bf16 on CUDA), channels_last (on CUDA, and on a CPU with oneDNN), fused optimizer on CUDA, metrics
  kept on the device; the network run in one of the step MODES: eager, CUDA graphs (`graphs`) or a torch.compile
  mode (`compile-default`, `compile-reduce-overhead`, `compile-max-autotune`).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fmnist.data.augment import Augment
from fmnist.data.loader import MEAN, STD, DeviceSplit, train_batches
from fmnist.train.device import autocast
from fmnist.train.loop import CUDAGRAPH_COMPILE_MODES, train_one_epoch

#: Ways of running the network in our pipeline (`python -m fmnist.bench --modes ...`).
MODES = ("eager", "graphs", "compile-default", "compile-reduce-overhead", "compile-max-autotune")


@dataclass
class Timing:
    """Seconds for `steps` timed optimizer steps (after warm-up), and the per-epoch extrapolation."""

    steps: int
    seconds: float
    batch_size: int
    epoch_images: int
    setup_s: float = 0.0  # capture / compilation and warm-up steps, before timing

    @property
    def images_per_s(self) -> float:
        return self.steps * self.batch_size / self.seconds

    @property
    def s_per_epoch(self) -> float:
        return self.epoch_images / self.images_per_s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class PngDataset(torch.utils.data.Dataset):
    """Per-sample decode of PNG bytes with PIL, then torchvision transforms (the usual tutorial path)."""

    def __init__(self, pngs: list[bytes], labels: np.ndarray) -> None:
        from torchvision import transforms

        self.pngs, self.labels = pngs, labels
        self.transform = transforms.Compose([
            transforms.RandomCrop(28, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((MEAN,), (STD,)),
        ])

    def __len__(self) -> int:
        return len(self.pngs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        image = Image.open(io.BytesIO(self.pngs[i])).convert("L")
        return self.transform(image), int(self.labels[i])


def time_naive(model: nn.Module, pngs: list[bytes], labels: np.ndarray, batch_size: int, steps: int,
               warmup: int, workers: int, device: torch.device, lr: float = 0.1) -> Timing:
    """Time `steps` SGD steps of the naive pipeline after `warmup` untimed ones."""
    loader = torch.utils.data.DataLoader(
        PngDataset(pngs, labels), batch_size=batch_size, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    model.train()
    done, start, running_loss, correct = 0, None, 0.0, 0
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()  # the usual per-step host sync for metrics
            correct += int((logits.argmax(1) == y).sum().item())
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return Timing(steps, time.perf_counter() - start, batch_size, len(pngs))


def step_model(model: nn.Module, mode: str, batch_size: int, precision: str, channels_last: bool) -> nn.Module:
    """The module our training step calls in `mode` (see MODES)."""
    if mode == "eager":
        return model
    if mode == "graphs":
        from fmnist.train.graphs import capture_training_step

        return capture_training_step(model, batch_size, (1, 28, 28), precision, channels_last)
    if mode.startswith("compile-") and mode in MODES:
        name = mode.removeprefix("compile-")
        return torch.compile(model, mode=None if name == "default" else name)
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def time_ours(model: nn.Module, split: DeviceSplit, batch_size: int, steps: int, warmup: int,
              device: torch.device, precision: str, channels_last: bool, lr: float = 0.1,
              mode: str = "eager") -> Timing:
    """Time `steps` steps of fmnist's training path (the trainer's own loop) after `warmup` ones; the
    capture or compilation of `mode` and the warm-up steps are timed separately (`setup_s`)."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4, **fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    augment = Augment(crop_padding=4, flip=True)

    def limited(n: int):
        # the trainer's batch stream, cut to n steps (new permutations as epochs run out)
        made = 0
        while made < n:
            for batch in train_batches(split, batch_size, augment, True, channels_last):
                yield batch
                made += 1
                if made == n:
                    return

    def amp():
        return autocast(device, precision)

    _sync(device)
    tic = time.perf_counter()
    runner = step_model(model, mode, batch_size, precision, channels_last)
    mark = mode.removeprefix("compile-") in CUDAGRAPH_COMPILE_MODES
    if warmup:
        train_one_epoch(runner, limited(warmup), optimizer, scheduler, amp, mark_cudagraph_steps=mark)
    _sync(device)
    start = time.perf_counter()
    train_one_epoch(runner, limited(steps), optimizer, scheduler, amp, mark_cudagraph_steps=mark)
    _sync(device)
    return Timing(steps, time.perf_counter() - start, batch_size, len(split), setup_s=start - tic)
