"""Optimiser construction: parameter groups (optional weight-decay exemption) and fused kernels.

Optimiser configs (``conf/optimizer/*.yaml``) name torch classes directly and are instantiated with
``_partial_: true``, so Hydra hands us a ``functools.partial(torch.optim.X, lr=..., weight_decay=...)``.
:func:`build_optimizer` only adds the parameters (and, when asked and possible, ``fused=True``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fmnist.config import call_factory, check_optimizer_values
from fmnist.errors import ConfigError

__all__ = ["param_groups", "build_optimizer"]

log = logging.getLogger(__name__)


def param_groups(model: nn.Module, weight_decay: float, exempt_norm_and_bias: bool) -> list[dict]:
    """Split the trainable parameters of ``model`` into optimiser parameter groups.

    * ``exempt_norm_and_bias=False``: one group ``{"params": all, "weight_decay": weight_decay}``.
    * ``exempt_norm_and_bias=True``: ``[{"params": weights (ndim >= 2: conv / linear kernels),
      "weight_decay": weight_decay}, {"params": every param with ndim <= 1 (norm weights and biases,
      all biases), "weight_decay": 0.0}]``.

    Empty groups are dropped; parameters with ``requires_grad=False`` are left out; a parameter shared
    between modules appears once. Order follows ``model.named_parameters()`` (deterministic, so optimiser
    state dicts line up on resume).
    """
    params = [p for _, p in model.named_parameters() if p.requires_grad]
    if not exempt_norm_and_bias:
        groups = [{"params": params, "weight_decay": weight_decay}]
    else:
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim <= 1]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
    return [g for g in groups if g["params"]]


def _optimizer_class(factory: Callable[..., Any]) -> Any:
    """The callable a (possibly nested) functools.partial ends up calling."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def _supports_kwarg(func: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins / C callables without a signature
        return False


def _needs_closure(cls: Any) -> bool:
    """Whether the optimiser class's step() requires a closure (torch.optim.LBFGS re-evaluates the loss)."""
    try:
        closure = inspect.signature(cls.step).parameters.get("closure")
    except (AttributeError, TypeError, ValueError):  # not a class with a step() we can read
        return False
    return closure is not None and closure.default is inspect.Parameter.empty


def build_optimizer(
    factory: Callable[..., torch.optim.Optimizer],
    model: nn.Module,
    exempt_norm_and_bias: bool = False,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """Instantiate the optimiser for ``model`` from the partial built from ``conf/optimizer/*.yaml``.

    Args:
        factory: ``hydra.utils.instantiate(cfg.optimizer)``, i.e. ``functools.partial(torch.optim.X, ...)``.
            Its ``weight_decay`` keyword (default 0.0) is applied per parameter group.
        model: the model whose trainable parameters are optimised.
        exempt_norm_and_bias: put norm weights and biases (all 1-D params) in a ``weight_decay=0`` group.
        fused: request the fused (single-kernel) implementation. It is passed (``fused=True``) only when
            requested, every parameter is on CUDA, the optimiser class accepts ``fused`` and the config does
            not already ask for ``foreach``; otherwise torch's defaults are kept.
    """
    keywords = dict(getattr(factory, "keywords", None) or {})
    check_optimizer_values(keywords)
    weight_decay = float(keywords.get("weight_decay", 0.0))

    groups = param_groups(model, weight_decay, exempt_norm_and_bias)
    if not groups:
        raise ConfigError("the model has no trainable parameters for the optimizer")
    cls = _optimizer_class(factory)
    name = getattr(cls, "__name__", repr(cls))
    if _needs_closure(cls):
        raise ConfigError(f"optimizer {name}: its step() needs a closure that evaluates the loss again, which the "
                          f"trainer's step() does not pass; choose an optimizer whose step() takes none")
    if isinstance(cls, type) and issubclass(cls, torch.optim.SparseAdam):
        raise ConfigError(f"optimizer {name}: it only takes sparse gradients (nn.Embedding(sparse=True)), and the "
                          f"models' layers give dense ones; use adam or adamw")

    extra: dict[str, Any] = {}
    if fused:
        params = [p for g in groups for p in g["params"]]
        if not all(p.is_cuda for p in params):
            log.warning("trainer.fused=true: fused optimizer kernels are used on CUDA only; %s uses torch's default "
                        "here", name)
        elif not _supports_kwarg(cls, "fused"):
            log.info("%s has no fused implementation; using the default", name)
        elif keywords.get("foreach"):
            log.info("%s: foreach=true in the config, so fused is not requested", name)
        else:
            extra["fused"] = True
    return call_factory(factory, "optimizer", groups, **extra)
