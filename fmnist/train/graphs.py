"""`trainer.cuda_graphs`: replay the training forward and backward as CUDA graphs.

At small batches a GPU-resident loop is launch-bound (ResNet18 at batch 128: ~14.6 ms of kernel
launches per step on an H100, see shared performance notes). `torch.cuda.make_graphed_callables`
records the network's forward and backward kernels once and replays each as a single launch. The
optimizer step (fused kernels), the scheduler, augmentation, the loss and the metrics stay eager, so
a per-iteration learning rate, EMA and every other trainer option work unchanged.

Only full training batches of the captured shape replay the graph; a smaller last batch
(`trainer.drop_last=false`) and evaluation (eval mode) run the eager module. Capturing warms the
network up on a dummy batch; the BatchNorm statistics and CUDA RNG state it touches are restored, so
capturing does not change what is trained.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class _Forward(nn.Module):
    """The module whose forward is captured (a wrapper, so `model.forward` itself stays eager)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class CudaGraphModel(nn.Module):
    """Runs `model` through captured CUDA graphs for inputs of the captured shape, eagerly otherwise."""

    def __init__(self, model: nn.Module, captured: nn.Module, shape: torch.Size) -> None:
        super().__init__()
        self.model = model
        self.captured = captured
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape == self.shape:
            return self.captured(x)
        return self.model(x)


def capture_training_step(
    model: nn.Module,
    batch_size: int,
    image_shape: tuple[int, int, int],
    precision: str,
    channels_last: bool,
    warmup_iters: int = 3,
) -> CudaGraphModel:
    """Capture `model`'s training forward and backward at `batch_size` (autocast as `precision`).
    `model` must be on a CUDA device (the trainer checks `trainer.cuda_graphs` against the device)."""
    device = next(model.parameters()).device
    sample = torch.zeros((batch_size, *image_shape), device=device)
    if channels_last:
        sample = sample.contiguous(memory_format=torch.channels_last)
    saved_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_rng = torch.cuda.get_rng_state(device)
    was_training = model.training
    model.train()
    if precision == "fp32":
        amp = contextlib.nullcontext()
    else:  # make_graphed_callables refuses autocast's weight cache
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        amp = torch.autocast(device_type="cuda", dtype=dtype, cache_enabled=False)
    try:
        with amp:
            captured = torch.cuda.make_graphed_callables(_Forward(model), (sample,), num_warmup_iters=warmup_iters,
                                                         allow_unused_input=True)
    finally:  # also after a failed capture, so an eager fallback trains the untouched model
        with torch.no_grad():  # in place: the graphs hold these tensors' addresses
            for name, value in model.state_dict().items():
                value.copy_(saved_state[name])
        torch.cuda.set_rng_state(saved_rng, device)
        model.train(was_training)
    _quiet_accumulate_grad_stream_warning()
    return CudaGraphModel(model, captured, sample.shape)


def _quiet_accumulate_grad_stream_warning() -> None:
    """make_graphed_callables warms up and captures on a side stream, and its static outputs keep that autograd
    graph alive, with the parameters' AccumulateGrad nodes created there. Every replayed backward then runs on the
    default stream, and torch >= 2.10 warns at each run that the two streams differ. The autograd engine orders
    the streams itself (what the warning calls unnecessary synchronization), and the GPU tests compare replays with
    eager steps. So the warning says nothing new after the first step. It filled the H200 session's log."""
    quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
    if quiet is not None:
        quiet(False)
