"""Exponential moving average of model weights (evaluated instead of the raw weights when enabled)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps `shadow` = EMA of `model`'s floating-point parameters and buffers, updated every `every`
    steps with decay `decay` (warmed up as min(decay, (1+n)/(10+n)) so early averages are not stale).
    Integer buffers (BatchNorm's num_batches_tracked) are copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999, every: int = 1) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.every = decay, max(1, int(every))
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)
        self.updates = 0
        self._steps = 0
        shadow_state = self.shadow.state_dict()
        self._float_names = [k for k, v in shadow_state.items() if v.dtype.is_floating_point]
        self._other_names = [k for k, v in shadow_state.items() if not v.dtype.is_floating_point]
        self._float_shadow = [shadow_state[k] for k in self._float_names]

    @torch.no_grad()
    def step(self, model: nn.Module) -> None:
        """Call after every optimizer step."""
        self._steps += 1
        if self._steps % self.every:
            return
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        # one fused kernel for all float tensors (a per-tensor loop is launch-bound on a GPU)
        torch._foreach_lerp_(self._float_shadow, [src[k].detach() for k in self._float_names], 1.0 - d)
        shadow_state = self.shadow.state_dict()
        for k in self._other_names:
            shadow_state[k].copy_(src[k])

    def state_dict(self) -> dict:
        return {"shadow": {k: v.detach().cpu() for k, v in self.shadow.state_dict().items()},
                "updates": self.updates, "steps": self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state["shadow"])
        self.updates, self._steps = int(state["updates"]), int(state["steps"])
