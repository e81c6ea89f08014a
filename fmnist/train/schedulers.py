"""Learning-rate schedules that step PER ITERATION.

The trainer calls ``scheduler.step()`` after every optimiser step and builds the scheduler with
``instantiate(cfg.scheduler)(optimizer, epochs=E, steps_per_epoch=S)``; every factory here converts its
epoch-based arguments to steps, so per-epoch schedules stay exact.

Conventions (T = epochs · steps_per_epoch total steps, t = number of ``scheduler.step()`` calls so far):

* Every factory returns a :class:`ScheduleLR` (a :class:`torch.optim.lr_scheduler.LambdaLR`) whose multiplier ``f(t)`` scales
  each parameter group's *configured* lr (``initial_lr``), so groups with different lrs keep their ratio.
  Iteration ``i`` (0-based) trains with ``f(i)``; after the last step of the run the lr is ``f(T)``, which
  is exactly the schedule's end value (cosine → ``min_lr_ratio``·lr, onecycle → lr/(div·final_div),
  multistep → lr·gamma^len(milestones)). For ``t > T`` the end value is held.
* Linear warmup (``warmup_epochs``) uses ``f(t) = (t+1)/(W+1)`` for ``t < W`` (starts near 0, never 0,
  and reaches the peak 1 at ``t = W``), with ``W = round(warmup_epochs·S)`` clamped to at most half of
  the run (``T // 2``), so ``warmup_epochs >= epochs`` (short test runs) still works and still leaves
  the main schedule room to act; the clamp is logged.
* The multiplier is a small picklable callable object, so ``scheduler.state_dict()`` stores the schedule
  parameters together with the step count and ``load_state_dict()`` resumes the *same* curve (and also
  writes the restored lr into the optimizer, so the load order of optimizer/scheduler states is free).

All arguments are validated; a bad one raises :class:`fmnist.errors.ConfigError` naming it.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

from fmnist.errors import ConfigError

__all__ = ["ScheduleLR", "constant", "multistep", "cosine", "warmup_cosine", "onecycle"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- validation helpers
def _int_at_least(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"scheduler argument {name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, numbers.Integral):
        ivalue = int(value)
    elif float(value).is_integer():
        ivalue = int(value)
    else:
        raise ConfigError(f"scheduler argument {name} must be an integer >= {minimum}, got {value!r}")
    if ivalue < minimum:
        raise ConfigError(f"scheduler argument {name} must be an integer >= {minimum}, got {value!r}")
    return ivalue


def _real(name: str, value: object, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    lo_b, hi_b = "(" if lo_open else "[", ")" if hi_open else "]"
    msg = f"scheduler.{name} must be a number in {lo_b}{lo}, {hi}{hi_b}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(msg)
    x = float(value)
    if math.isnan(x) or x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
        raise ConfigError(msg)
    return x


def _total_steps(epochs: object, steps_per_epoch: object) -> tuple[int, int]:
    e = _int_at_least("epochs", epochs, 1)
    s = _int_at_least("steps_per_epoch", steps_per_epoch, 1)
    return e * s, s


def _warmup_steps(warmup_epochs: object, steps_per_epoch: int, total: int) -> int:
    we = _real("warmup_epochs", warmup_epochs, 0.0, math.inf, hi_open=True)
    wanted = int(math.floor(we * steps_per_epoch + 0.5))
    limit = total // 2
    if wanted > limit:
        log.info("warmup of %d steps clamped to %d (half of the run's %d steps)", wanted, limit, total)
        return limit
    return wanted


def _check_optimizer(optimizer: object) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"scheduler needs a torch.optim.Optimizer, got {type(optimizer).__name__}")


# --------------------------------------------------------------------------- multipliers (picklable)
class _Multiplier:
    """Base class: ``f(step)`` = warmup(step) · main(step), with step clamped to ``total``."""

    def __init__(self, total: int, warmup: int = 0) -> None:
        self.total = total
        self.warmup = warmup

    def main(self, t: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        t = min(max(int(step), 0), self.total)
        w = (t + 1) / (self.warmup + 1) if t < self.warmup else 1.0
        return w * self.main(t)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class _Constant(_Multiplier):
    def main(self, t: int) -> float:
        return 1.0


class _MultiStep(_Multiplier):
    def __init__(self, total: int, warmup: int, milestone_steps: list[int], gamma: float) -> None:
        super().__init__(total, warmup)
        self.milestone_steps = milestone_steps
        self.gamma = gamma

    def main(self, t: int) -> float:
        return self.gamma ** sum(1 for m in self.milestone_steps if t >= m)


class _Cosine(_Multiplier):
    """Linear warmup over ``warmup`` steps, then cosine from 1 at t = warmup to ``min_ratio`` at t = total."""

    def __init__(self, total: int, warmup: int, min_ratio: float) -> None:
        super().__init__(total, warmup)
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        t = min(max(int(step), 0), self.total)
        if t < self.warmup:
            return (t + 1) / (self.warmup + 1)
        progress = (t - self.warmup) / (self.total - self.warmup)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _OneCycle(_Multiplier):
    """Anneal from ``start`` to 1 over [0, peak_step], then from 1 to ``end`` over [peak_step, total]."""

    def __init__(self, total: int, peak_step: int, start: float, end: float, anneal_strategy: str) -> None:
        super().__init__(total, 0)
        self.peak_step = peak_step
        self.start = start
        self.end = end
        self.anneal_strategy = anneal_strategy

    def _anneal(self, a: float, b: float, frac: float) -> float:
        if self.anneal_strategy == "cos":
            return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * frac))
        return a + (b - a) * frac

    def __call__(self, step: int) -> float:
        t = min(max(int(step), 0), self.total)
        if t <= self.peak_step:
            return self._anneal(self.start, 1.0, t / self.peak_step) if self.peak_step > 0 else 1.0
        return self._anneal(1.0, self.end, (t - self.peak_step) / (self.total - self.peak_step))


class ScheduleLR(LambdaLR):
    """:class:`LambdaLR` whose :meth:`load_state_dict` also puts the restored lr into the optimizer.

    Plain ``LambdaLR.load_state_dict`` only restores the step count; the optimizer keeps whatever lr the
    scheduler's constructor wrote (``f(0)``) until the next ``step()``. Re-applying ``f(last_epoch)`` makes
    resume exact whichever order the trainer loads the optimizer and scheduler states in.
    """

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        lrs = [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = lrs


# --------------------------------------------------------------------------- public factories
def constant(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
             warmup_epochs: float = 0.0) -> ScheduleLR:
    """Constant lr (each group's configured lr), after an optional linear warmup of ``warmup_epochs``."""
    _check_optimizer(optimizer)
    total, s = _total_steps(epochs, steps_per_epoch)
    return ScheduleLR(optimizer, _Constant(total, _warmup_steps(warmup_epochs, s, total)))


def multistep(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
              milestones: Sequence[float] | float = (0.5, 0.75), gamma: float = 0.1,
              warmup_epochs: float = 0.0) -> ScheduleLR:
    """Step decay: multiply the lr by ``gamma`` at each milestone.

    ``milestones`` are FRACTIONS of the run in (0, 1] (so they follow ``trainer.epochs``): a milestone
    ``m`` falls at step ``round(m · epochs · steps_per_epoch)``, i.e. exactly at an epoch boundary
    whenever ``m · epochs`` is an integer (the default 0.5, 0.75 with epochs a multiple of 4), otherwise
    at the nearest step. The lr from that step on is ``lr · gamma^k`` for the k milestones passed. A single
    number is one milestone (``scheduler.milestones=0.5``).
    """
    _check_optimizer(optimizer)
    total, s = _total_steps(epochs, steps_per_epoch)
    if isinstance(milestones, numbers.Real) and not isinstance(milestones, bool):
        milestones = [milestones]
    if isinstance(milestones, (str, bytes)):
        raise ConfigError(f"scheduler.milestones must be a list of fractions, got {milestones!r}")
    try:
        items = list(milestones)
    except TypeError:
        raise ConfigError(f"scheduler.milestones must be a list of fractions, got {milestones!r}") from None
    fracs = [_real("milestones", m, 0.0, 1.0, lo_open=True) for m in items]
    if fracs != sorted(fracs):
        raise ConfigError(f"scheduler.milestones must be increasing, got {items!r}")
    g = _real("gamma", gamma, 0.0, 1.0, lo_open=True)
    steps = [int(math.floor(f * total + 0.5)) for f in fracs]
    return ScheduleLR(optimizer, _MultiStep(total, _warmup_steps(warmup_epochs, s, total), steps, g))


def cosine(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
           min_lr_ratio: float = 0.0) -> ScheduleLR:
    """Cosine annealing over the run's total steps, from lr to ``min_lr_ratio`` · lr (no warmup)."""
    _check_optimizer(optimizer)
    total, _ = _total_steps(epochs, steps_per_epoch)
    r = _real("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
    return ScheduleLR(optimizer, _Cosine(total, 0, r))


def warmup_cosine(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
                  warmup_epochs: float = 2.0, min_lr_ratio: float = 0.0) -> ScheduleLR:
    """Linear warmup from ~0 to lr over ``warmup_epochs`` (clamped to half the run), then cosine to
    ``min_lr_ratio`` · lr at the end of the run."""
    _check_optimizer(optimizer)
    total, s = _total_steps(epochs, steps_per_epoch)
    r = _real("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
    return ScheduleLR(optimizer, _Cosine(total, _warmup_steps(warmup_epochs, s, total), r))


def onecycle(optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
             pct_start: float = 0.25, div_factor: float = 25.0, final_div_factor: float = 1e4,
             anneal_strategy: str = "cos") -> ScheduleLR:
    """One-cycle lr (Smith & Topin), lr only — no momentum cycling, so any optimiser works.

    Starts at lr / ``div_factor``, rises to the peak = each group's configured lr at step
    ``round(pct_start · T)``, then falls to lr / (``div_factor`` · ``final_div_factor``) at the end of the
    run (the same start/end values as ``torch.optim.lr_scheduler.OneCycleLR``). ``anneal_strategy`` is
    ``"cos"`` (half-cosine ramps, torch's default) or ``"linear"``.
    """
    _check_optimizer(optimizer)
    total, _ = _total_steps(epochs, steps_per_epoch)
    pct = _real("pct_start", pct_start, 0.0, 1.0, lo_open=True, hi_open=True)
    div = _real("div_factor", div_factor, 1.0, math.inf, hi_open=True)
    final_div = _real("final_div_factor", final_div_factor, 1.0, math.inf, hi_open=True)
    if anneal_strategy not in ("cos", "linear"):
        raise ConfigError(f"scheduler.anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
    # The peak needs a step after it to anneal towards the end value: keep it in [0, T - 1].
    peak = min(int(math.floor(pct * total + 0.5)), total - 1)
    return ScheduleLR(optimizer, _OneCycle(total, peak, 1.0 / div, 1.0 / (div * final_div), anneal_strategy))
