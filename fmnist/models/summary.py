"""Parameter and FLOP counts.

``count_flops`` never touches the model it is given: it runs a deep copy (made with the
model's hooks temporarily detached, so analysis hooks neither fire nor get copied) in eval
mode under ``no_grad``, on the meta device when possible (no memory, no compute) and on the
CPU otherwise. FLOPs are those of ``torch.utils.flop_counter.FlopCounterMode`` (convs and
matmuls; a multiply-add counts as 2 FLOPs; norms, activations and pools are not counted),
for ONE image.
"""

from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from typing import Iterator, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_flops", "model_summary"]

_HOOK_ATTRS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextlib.contextmanager
def _hooks_detached(model: nn.Module) -> Iterator[None]:
    saved = []
    for m in model.modules():
        for attr in _HOOK_ATTRS:
            hooks = getattr(m, attr, None)
            if hooks:
                saved.append((m, attr, hooks))
                setattr(m, attr, OrderedDict())
    try:
        yield
    finally:
        for m, attr, hooks in saved:
            setattr(m, attr, hooks)


def _flops_on(model: nn.Module, device: torch.device, input_shape: Sequence[int]) -> int:
    model = model.to(device).eval()
    x = torch.zeros(tuple(input_shape), device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 1, 28, 28)) -> int:
    """Forward FLOPs for one image of shape ``input_shape[1:]`` (divided by the batch size)."""
    batch = int(input_shape[0]) if len(input_shape) > 0 else 1
    with _hooks_detached(model):
        clone = copy.deepcopy(model)
    try:
        flops = _flops_on(clone, torch.device("meta"), input_shape)
    except Exception:  # an op without a meta kernel: fall back to a real CPU run
        with _hooks_detached(model):
            clone = copy.deepcopy(model)
        flops = _flops_on(clone, torch.device("cpu"), input_shape)
    return flops // max(batch, 1)


def model_summary(model: nn.Module, input_shape: Sequence[int] = (1, 1, 28, 28)) -> dict:
    """``{"params": trainable parameters, "flops": forward FLOPs per image}``."""
    return {"params": count_parameters(model), "flops": count_flops(model, input_shape)}
