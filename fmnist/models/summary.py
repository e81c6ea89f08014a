"""Parameter and FLOP counts.

``count_flops`` never touches the model it is given: it runs a deep copy (made with the
model's hooks temporarily detached, so analysis hooks neither fire nor get copied) on the CPU
in eval mode under ``no_grad`` (a model built on the meta device gets uninitialised CPU memory:
the counts depend on shapes only). FLOPs are those of convolution and linear layers, counted by
forward hooks (a multiply-add counts as 2 FLOPs; norms, activations, pools and biases are not
counted), for ONE image: what ``torch.utils.flop_counter.FlopCounterMode`` counts for these
models (tests/test_models.py checks every model against it). The hooks, not FlopCounterMode,
because its first use imports torch._dynamo (1.2-1.5 s on the development machine). A training
run pays that import anyway when it builds its optimizer; the analysis, which counts the
architectures of the report's table, no longer does.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections import OrderedDict
from typing import Iterator, Sequence

import torch
import torch.nn as nn

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


def _layer_flops(module: nn.Module, output: torch.Tensor) -> int:
    """Forward FLOPs of one convolution or linear layer's call (2 per multiply-add), 0 for other modules."""
    if isinstance(module, nn.modules.conv._ConvNd):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return 2 * output.numel() * per_output
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    return 0


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 1, 28, 28)) -> int:
    """Forward FLOPs for one image of shape ``input_shape[1:]`` (divided by the batch size)."""
    batch = int(input_shape[0]) if len(input_shape) > 0 else 1
    with _hooks_detached(model):
        clone = copy.deepcopy(model)
    on_meta = any(t.is_meta for t in (*clone.parameters(), *clone.buffers()))  # built there: shapes only
    clone = (clone.to_empty(device="cpu") if on_meta else clone.to("cpu")).eval()
    total = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_flops(module, output)

    for module in clone.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        clone(torch.zeros(tuple(input_shape)))
    return total // max(batch, 1)


def model_summary(model: nn.Module, input_shape: Sequence[int] = (1, 1, 28, 28)) -> dict:
    """``{"params": trainable parameters, "flops": forward FLOPs per image}``."""
    return {"params": count_parameters(model), "flops": count_flops(model, input_shape)}
