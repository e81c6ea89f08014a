"""Tests for fmnist.train.optim (parameter groups, optimiser construction) and fmnist.train.schedulers."""

from __future__ import annotations

import functools
import io
import logging
import math
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from fmnist.errors import ConfigError
from fmnist.train import schedulers
from fmnist.train.optim import build_optimizer, param_groups

ROOT = Path(__file__).resolve().parents[1] / "conf"
OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop"]
SCHEDULERS = ["constant", "multistep", "cosine", "onecycle", "warmup_cosine"]
E, S = 4, 5  # tiny run: 4 epochs x 5 steps
T = E * S


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.GroupNorm(2, 4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.LayerNorm(4),
        nn.Linear(4, 10),
    )
    return model


def load_opt(name: str):
    return instantiate(OmegaConf.load(ROOT / "optimizer" / f"{name}.yaml"))


def load_sched(name: str):
    return instantiate(OmegaConf.load(ROOT / "scheduler" / f"{name}.yaml"))


def ids(params) -> list[int]:
    return [id(p) for p in params]


# ----------------------------------------------------------------------------- param_groups
def test_param_groups_single_group():
    model = tiny_model()
    groups = param_groups(model, 5e-4, exempt_norm_and_bias=False)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 5e-4
    assert ids(groups[0]["params"]) == ids(model.parameters())


def test_param_groups_exempt_norm_and_bias():
    model = tiny_model()
    groups = param_groups(model, 5e-4, exempt_norm_and_bias=True)
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    decay, no_decay = (set(ids(g["params"])) for g in groups)
    every = ids(model.parameters())
    assert sorted(ids(groups[0]["params"]) + ids(groups[1]["params"])) == sorted(every), "each param exactly once"
    assert not decay & no_decay
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            assert id(m.weight) in no_decay and id(m.bias) in no_decay
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert id(m.weight) in decay
            if m.bias is not None:
                assert id(m.bias) in no_decay


def test_param_groups_skips_frozen_shared_and_empty():
    model = tiny_model()
    model[0].weight.requires_grad_(False)
    groups = param_groups(model, 1e-4, exempt_norm_and_bias=True)
    assert id(model[0].weight) not in {id(p) for g in groups for p in g["params"]}
    # shared parameter appears once
    lin = nn.Linear(3, 3)
    shared = nn.Sequential(lin, nn.ReLU(), lin)
    groups = param_groups(shared, 1e-4, exempt_norm_and_bias=False)
    assert len(groups[0]["params"]) == 2
    # only 1-D params: the decay group is dropped
    only_norm = nn.Sequential(nn.LayerNorm(4))
    groups = param_groups(only_norm, 1e-4, exempt_norm_and_bias=True)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0


# ----------------------------------------------------------------------------- build_optimizer
def test_optimizer_confs():
    assert sorted(p.stem for p in (ROOT / "optimizer").glob("*.yaml")) == sorted(OPTIMIZERS)
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                "rmsprop": torch.optim.RMSprop}
    for name in OPTIMIZERS:
        cfg = OmegaConf.load(ROOT / "optimizer" / f"{name}.yaml")
        assert cfg._partial_ is True and "weight_decay" in cfg and "lr" in cfg
        assert isinstance(cfg.weight_decay, float) and isinstance(cfg.lr, float), "1e-4 must parse as a float"
        factory = instantiate(cfg)
        for exempt in (False, True):
            model = tiny_model()
            opt = build_optimizer(factory, model, exempt_norm_and_bias=exempt)
            assert type(opt) is expected[name]
            assert all(g["lr"] == cfg.lr for g in opt.param_groups)
            wds = [g["weight_decay"] for g in opt.param_groups]
            assert wds == ([cfg.weight_decay, 0.0] if exempt else [cfg.weight_decay])
            n = sum(len(g["params"]) for g in opt.param_groups)
            assert n == len(list(model.parameters()))
            # one real step works and the state dict round-trips through a weights-only load
            model(torch.rand(2, 1, 8, 8)).sum().backward()
            opt.step()
            buf = io.BytesIO()
            torch.save(opt.state_dict(), buf)
            buf.seek(0)
            torch.load(buf, weights_only=True)
    sgd = OmegaConf.load(ROOT / "optimizer" / "sgd.yaml")
    assert (sgd.lr, sgd.momentum, sgd.weight_decay, sgd.nesterov) == (0.1, 0.9, 1e-4, False)


def test_weight_decay_defaults_to_zero_and_cli_override():
    import functools

    opt = build_optimizer(functools.partial(torch.optim.SGD, lr=0.1), tiny_model())
    assert opt.param_groups[0]["weight_decay"] == 0.0
    cfg = OmegaConf.load(ROOT / "optimizer" / "adamw.yaml")
    cfg.merge_with_dotlist(["weight_decay=0.1", "lr=0.003"])
    opt = build_optimizer(instantiate(cfg), tiny_model(), exempt_norm_and_bias=True)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert opt.param_groups[0]["lr"] == 0.003


def test_fused_only_on_cuda_when_supported(caplog: pytest.LogCaptureFixture):
    """trainer.fused=true off CUDA trains unfused and says so in a warning (it was a debug line nobody saw)."""
    for name in OPTIMIZERS:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fmnist.train.optim"):
            opt = build_optimizer(load_opt(name), tiny_model(), fused=True)  # CPU params: never fused
        assert not opt.defaults.get("fused")
        assert "trainer.fused=true: fused optimizer kernels are used on CUDA only" in caplog.text
    if torch.cuda.is_available():
        model = tiny_model().cuda()
        assert build_optimizer(load_opt("adamw"), model, fused=True).defaults.get("fused") is True
        assert not build_optimizer(load_opt("adamw"), model, fused=None).defaults.get("fused")
        assert not build_optimizer(load_opt("rmsprop"), model, fused=True).defaults.get("fused")


def test_fused_is_asked_for_only_when_every_parameter_is_on_cuda_and_the_config_has_no_foreach():
    """The decision of the CUDA branch, without a GPU: stand-in parameters say where they are, and a stand-in
    optimizer returns the `fused` it was given."""
    class Param:
        def __init__(self, ndim: int, is_cuda: bool) -> None:
            self.ndim, self.is_cuda, self.requires_grad = ndim, is_cuda, True

    class Model:
        def __init__(self, *params: Param) -> None:
            self.params = params

        def named_parameters(self):
            return [(str(i), p) for i, p in enumerate(self.params)]

    def optimizer(params, lr=0.1, weight_decay=0.0, foreach=None, fused=None):
        return fused

    def without_fused(params, lr=0.1, weight_decay=0.0):
        return "no fused argument"

    on_cuda, mixed = Model(Param(2, True), Param(1, True)), Model(Param(2, True), Param(1, False))
    assert build_optimizer(functools.partial(optimizer, lr=0.1), on_cuda, fused=True) is True
    assert build_optimizer(functools.partial(optimizer, lr=0.1), on_cuda, fused=None) is None
    assert build_optimizer(functools.partial(optimizer, lr=0.1), mixed, fused=True) is None
    assert build_optimizer(functools.partial(optimizer, lr=0.1, foreach=True), on_cuda, fused=True) is None
    assert build_optimizer(functools.partial(without_fused, lr=0.1), on_cuda, fused=True) == "no fused argument"


def test_no_trainable_params_is_config_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="^the model has no trainable parameters for the optimizer$"):
        build_optimizer(load_opt("sgd"), model)


def test_an_optimizer_whose_step_needs_a_closure_is_one_config_error():
    """`_target_: torch.optim.LBFGS` in an optimizer a user adds: one line when it is built, not a TypeError
    traceback ("LBFGS.step() missing 1 required positional argument: 'closure'") at the first training step."""
    with pytest.raises(ConfigError, match=r"^optimizer LBFGS: its step\(\) needs a closure that evaluates the loss"):
        build_optimizer(functools.partial(torch.optim.LBFGS, lr=1.0), tiny_model())
    build_optimizer(functools.partial(torch.optim.NAdam, lr=1e-3), tiny_model())  # closure optional: built


def test_sparse_adam_is_one_config_error():
    """`_target_: torch.optim.SparseAdam`: one line when it is built, not torch's RuntimeError traceback
    ("SparseAdam does not support dense gradients") at the first training step."""
    with pytest.raises(ConfigError, match=r"^optimizer SparseAdam: it only takes sparse gradients"):
        build_optimizer(functools.partial(torch.optim.SparseAdam, lr=1e-3), tiny_model())


@pytest.mark.parametrize(("value", "message"), [
    (-1e-4, "optimizer.weight_decay must be >= 0, got -0.0001"),  # conf/ does not check it: the optimizer does
    ("abc", "optimizer.weight_decay must be a number, got 'abc'"),
    (True, "optimizer.weight_decay must be a number, got True"),
])
def test_bad_weight_decay_is_named(value, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        build_optimizer(functools.partial(torch.optim.SGD, lr=0.1, weight_decay=value), tiny_model())


@pytest.mark.parametrize("betas", [[0.9], [0.9, 0.99, 0.999], 0.9, "0.9"])
def test_betas_that_are_not_a_pair_are_named(betas):
    """`optimizer=adam optimizer.betas=[0.9]`: torch's own message was "list index out of range"."""
    factory = instantiate(OmegaConf.merge(OmegaConf.load(ROOT / "optimizer" / "adam.yaml"), {"betas": betas}))
    with pytest.raises(ConfigError, match="^" + re.escape("optimizer.betas must be a pair [beta1, beta2], e.g. "
                                                          "[0.9, 0.999]; got ")):
        build_optimizer(factory, tiny_model())
    build_optimizer(load_opt("adamw"), tiny_model())  # the presets' pairs pass


# ----------------------------------------------------------------------------- schedulers
def make_opt(lrs=(0.1,)) -> torch.optim.Optimizer:
    params = [{"params": [nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(params, lr=lrs[0], momentum=0.9)


def curve(sched_factory, epochs=E, steps_per_epoch=S, lrs=(0.1,), **kw) -> list[list[float]]:
    """lr of every group at t = 0..T (t = number of scheduler.step() calls, as the trainer does)."""
    opt = make_opt(lrs)
    sched = sched_factory(opt, epochs=epochs, steps_per_epoch=steps_per_epoch, **kw)
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(epochs * steps_per_epoch):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return out


def lr0(c):
    return [row[0] for row in c]


def test_scheduler_confs_instantiate():
    assert sorted(p.stem for p in (ROOT / "scheduler").glob("*.yaml")) == sorted(SCHEDULERS)
    for name in SCHEDULERS:
        cfg = OmegaConf.load(ROOT / "scheduler" / f"{name}.yaml")
        assert cfg._target_ == f"fmnist.train.schedulers.{name}" and cfg._partial_ is True
        sched = instantiate(cfg)(make_opt(), epochs=E, steps_per_epoch=S)
        assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)


def test_constant_curve():
    assert lr0(curve(load_sched("constant"))) == [0.1] * (T + 1)
    c = lr0(curve(schedulers.constant, warmup_epochs=1.0))  # 5 warmup steps
    assert c[:6] == pytest.approx([0.1 * k / 6 for k in range(1, 6)] + [0.1])
    assert c[5:] == pytest.approx([0.1] * (T - 4))


def test_multistep_curve():
    c = lr0(curve(load_sched("multistep")))  # milestones 0.5, 0.75 of 4 epochs -> steps 10, 15
    assert c[:10] == pytest.approx([0.1] * 10)
    assert c[10:15] == pytest.approx([0.01] * 5)
    assert c[15:] == pytest.approx([0.001] * 6)
    # milestones follow the run length: 8 epochs -> steps 20 and 30
    c8 = lr0(curve(load_sched("multistep"), epochs=8))
    assert c8[19] == pytest.approx(0.1) and c8[20] == pytest.approx(0.01)
    assert c8[29] == pytest.approx(0.01) and c8[30] == pytest.approx(0.001)
    # with warmup
    cw = lr0(curve(schedulers.multistep, milestones=[0.5], gamma=0.5, warmup_epochs=1.0))
    assert cw[0] == pytest.approx(0.1 / 6) and cw[5] == pytest.approx(0.1) and cw[10] == pytest.approx(0.05)
    # a scalar milestone (CLI: scheduler.milestones=0.5) is accepted
    assert lr0(curve(schedulers.multistep, milestones=0.5))[-1] == pytest.approx(0.01)


def test_cosine_curve():
    c = lr0(curve(load_sched("cosine")))
    assert c[0] == pytest.approx(0.1)
    assert c[T // 2] == pytest.approx(0.05)
    assert c[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(c, c[1:])), "monotone decreasing"
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * t / T)) for t in range(T + 1)]
    assert c == pytest.approx(expected)
    cm = lr0(curve(schedulers.cosine, min_lr_ratio=0.1))
    assert cm[-1] == pytest.approx(0.01) and cm[0] == pytest.approx(0.1)


def test_warmup_cosine_curve():
    c = lr0(curve(schedulers.warmup_cosine, epochs=8, warmup_epochs=2.0))  # T = 40, W = 10
    t_total, w = 40, 10
    assert c[0] == pytest.approx(0.1 / 11) and c[0] > 0
    assert c[:w] == pytest.approx([0.1 * (t + 1) / (w + 1) for t in range(w)])
    assert max(c) == pytest.approx(0.1) and c.index(max(c)) == w
    assert c[w + (t_total - w) // 2] == pytest.approx(0.05)
    assert c[-1] == pytest.approx(0.0, abs=1e-12)
    # default yaml on the tiny run: warmup 2 epochs = 10 steps = T/2 (no clamp needed)
    d = lr0(curve(load_sched("warmup_cosine")))
    assert d.index(max(d)) == 10 and d[-1] == pytest.approx(0.0, abs=1e-12)
    floor = lr0(curve(schedulers.warmup_cosine, min_lr_ratio=0.1))  # ends at min_lr_ratio * lr, peaks at lr
    assert floor[-1] == pytest.approx(0.01) and max(floor) == pytest.approx(0.1)


@pytest.mark.parametrize("epochs, spe", [(1, 5), (1, 1), (2, 3)])
def test_warmup_clamped_for_short_runs(epochs, spe):
    total = epochs * spe
    c = lr0(curve(load_sched("warmup_cosine"), epochs=epochs, steps_per_epoch=spe))  # warmup 2 >= epochs
    assert c[-1] == pytest.approx(0.0, abs=1e-12)
    assert max(c) == pytest.approx(0.1) and c.index(max(c)) <= total // 2
    k = lr0(curve(schedulers.constant, epochs=epochs, steps_per_epoch=spe, warmup_epochs=5.0))
    assert k[-1] == pytest.approx(0.1)
    m = lr0(curve(schedulers.multistep, epochs=epochs, steps_per_epoch=spe, warmup_epochs=5.0))
    assert m[-1] == pytest.approx(0.001)


def test_onecycle_curve():
    c = lr0(curve(load_sched("onecycle")))  # peak at round(0.25 * 20) = step 5
    assert c[0] == pytest.approx(0.1 / 25)
    assert max(c) == pytest.approx(0.1) and c.index(max(c)) == 5
    assert all(a <= b for a, b in zip(c[:6], c[1:6])) and all(a >= b for a, b in zip(c[5:], c[6:]))
    assert c[-1] == pytest.approx(0.1 / 25 / 1e4)
    lin = lr0(curve(schedulers.onecycle, anneal_strategy="linear"))
    assert lin[0] == pytest.approx(0.004) and lin[5] == pytest.approx(0.1)
    mid = 0.004 + (0.1 - 0.004) * 2 / 5
    assert lin[2] == pytest.approx(mid) and lin[-1] == pytest.approx(0.1 / 25 / 1e4)
    # works with optimizers without momentum (no momentum cycling)
    opt = torch.optim.Adagrad([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = schedulers.onecycle(opt, epochs=1, steps_per_epoch=1)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 25 / 1e4)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_end_value_is_held_after_the_last_step(name):
    sched = load_sched(name)(make_opt(), epochs=E, steps_per_epoch=S)
    f = sched.lr_lambdas[0]
    assert [f(T + k) for k in (1, 5, T)] == pytest.approx([f(T)] * 3)


def test_fractional_warmup_milestones_and_peak_round_to_the_nearest_step():
    c = lr0(curve(schedulers.constant, warmup_epochs=0.75))  # 0.75 * 5 = 3.75 -> W = 4
    assert c[:5] == pytest.approx([0.1 * k / 5 for k in range(1, 5)] + [0.1])
    m = lr0(curve(schedulers.multistep, milestones=[0.33]))  # 0.33 * 20 = 6.6 -> step 7
    assert m[6] == pytest.approx(0.1) and m[7] == pytest.approx(0.01)
    o = lr0(curve(schedulers.onecycle, pct_start=0.33))  # the peak at step 7 too
    assert o.index(max(o)) == 7


def test_integral_float_epochs_are_accepted():
    def as_floats(opt, epochs, steps_per_epoch):  # e.g. `trainer.epochs=4.0` from the command line
        return schedulers.cosine(opt, epochs=float(epochs), steps_per_epoch=float(steps_per_epoch))

    assert lr0(curve(as_floats)) == pytest.approx(lr0(curve(schedulers.cosine)))


def test_onecycle_peak_stays_before_the_last_step():
    c = lr0(curve(schedulers.onecycle, pct_start=0.99))  # round(0.99 * 20) = 20 is clamped to T - 1
    assert c.index(max(c)) == T - 1 and max(c) == pytest.approx(0.1)
    assert c[-1] == pytest.approx(0.1 / 25 / 1e4)
    # a peak rounded to step 0 is the first step's lr (no ramp up)
    s = lr0(curve(schedulers.onecycle, epochs=1, steps_per_epoch=4, pct_start=0.1))  # round(0.4) = 0
    assert s[0] == pytest.approx(0.1) and s[-1] == pytest.approx(0.1 / 25 / 1e4)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_group_scaled_from_its_own_lr(name):
    c = curve(load_sched(name), lrs=(0.1, 0.02))
    for a, b in c:
        assert b == pytest.approx(a * 0.2)


@pytest.mark.parametrize("opt_first", [True, False])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_round_trip_resumes_same_curve(name, opt_first):
    lrs = (0.1, 0.02)  # two groups: every group's lr is restored, not only the first
    full = curve(load_sched(name), lrs=lrs)
    opt = make_opt(lrs)
    sched = load_sched(name)(opt, epochs=E, steps_per_epoch=S)
    for _ in range(7):
        opt.step()
        sched.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    opt2 = make_opt(lrs)
    if opt_first:  # optimizer state loaded before the scheduler is built
        opt2.load_state_dict(state["opt"])
        sched2 = load_sched(name)(opt2, epochs=E, steps_per_epoch=S)
    else:  # build both, then load both (the usual torch order)
        sched2 = load_sched(name)(opt2, epochs=E, steps_per_epoch=S)
        opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    assert sched2.get_last_lr() == pytest.approx(full[7])
    resumed = [[g["lr"] for g in opt2.param_groups]]
    for _ in range(T - 7):
        opt2.step()
        sched2.step()
        resumed.append([g["lr"] for g in opt2.param_groups])
    assert [lr for row in resumed for lr in row] == pytest.approx([lr for row in full[7:] for lr in row])


def test_a_tensor_lr_is_restored_in_place_on_resume():
    """An lr held as a tensor (capturable/fused optimisers, CUDA graphs read its address) keeps its object."""
    def tensor_lr_sgd():
        return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=torch.tensor(0.1))

    opt = tensor_lr_sgd()
    sched = schedulers.cosine(opt, epochs=E, steps_per_epoch=S)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = tensor_lr_sgd()
    sched2 = schedulers.cosine(opt2, epochs=E, steps_per_epoch=S)
    lr = opt2.param_groups[0]["lr"]
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 7 / T)))


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (schedulers.constant, {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        (schedulers.constant, {"epochs": 2.5}, "epochs must be an integer >= 1, got 2.5"),
        (schedulers.constant, {"epochs": "2"}, "epochs must be an integer >= 1, got '2'"),
        (schedulers.constant, {"epochs": True}, "epochs must be an integer >= 1, got True"),
        (schedulers.cosine, {"steps_per_epoch": 0}, "steps_per_epoch must be an integer >= 1, got 0"),
        (schedulers.constant, {"warmup_epochs": -1.0}, "warmup_epochs must be a number in [0.0, inf), got -1.0"),
        (schedulers.multistep, {"milestones": [0.75, 0.5]}, "milestones must be increasing, got [0.75, 0.5]"),
        (schedulers.multistep, {"milestones": [0.5, 1.5]}, "milestones must be a number in (0.0, 1.0], got 1.5"),
        (schedulers.multistep, {"milestones": [0.0]}, "milestones must be a number in (0.0, 1.0], got 0.0"),
        (schedulers.multistep, {"milestones": "0.5"}, "milestones must be a list of fractions, got '0.5'"),
        (schedulers.multistep, {"milestones": None}, "milestones must be a list of fractions, got None"),
        (schedulers.multistep, {"gamma": 0.0}, "gamma must be a number in (0.0, 1.0], got 0.0"),
        (schedulers.multistep, {"gamma": 2.0}, "gamma must be a number in (0.0, 1.0], got 2.0"),
        (schedulers.multistep, {"gamma": "0.1"}, "gamma must be a number in (0.0, 1.0], got '0.1'"),
        (schedulers.multistep, {"gamma": float("nan")}, "gamma must be a number in (0.0, 1.0], got nan"),
        (schedulers.cosine, {"min_lr_ratio": 1.5}, "min_lr_ratio must be a number in [0.0, 1.0], got 1.5"),
        (schedulers.warmup_cosine, {"min_lr_ratio": -0.1}, "min_lr_ratio must be a number in [0.0, 1.0], got -0.1"),
        (schedulers.warmup_cosine, {"warmup_epochs": float("inf")}, "warmup_epochs must be a number in [0.0, inf)"),
        (schedulers.onecycle, {"pct_start": 1.0}, "pct_start must be a number in (0.0, 1.0), got 1.0"),
        (schedulers.onecycle, {"pct_start": 0.0}, "pct_start must be a number in (0.0, 1.0), got 0.0"),
        (schedulers.onecycle, {"div_factor": 0.5}, "div_factor must be a number in [1.0, inf), got 0.5"),
        (schedulers.onecycle, {"final_div_factor": 0.0}, "final_div_factor must be a number in "),
        (schedulers.onecycle, {"final_div_factor": 0.5}, "final_div_factor must be a number in [1.0, inf), got 0.5"),
        (schedulers.onecycle, {"anneal_strategy": "exp"}, "anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    ],
)
def test_bad_scheduler_args_raise_config_error(factory, kwargs, message):
    args = {"epochs": E, "steps_per_epoch": S, **kwargs}
    with pytest.raises(ConfigError) as info:
        factory(make_opt(), **args)
    # epochs and steps_per_epoch come from the trainer; the other arguments are the scheduler group's keys
    prefix = "scheduler argument " if message.startswith(("epochs", "steps_per_epoch")) else "scheduler."
    assert str(info.value).startswith(prefix + message), str(info.value)


def test_a_scheduler_that_does_not_take_the_trainers_arguments_says_how_it_is_called():
    """`_target_: torch.optim.lr_scheduler.StepLR` in a scheduler a user adds: the line says what the trainer passes,
    not only that `epochs` is unexpected."""
    from fmnist.config import call_factory

    optimizer = torch.optim.SGD(tiny_model().parameters(), lr=0.1)
    factory = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=10)
    with pytest.raises(ConfigError) as info:
        call_factory(factory, "scheduler", optimizer, epochs=E, steps_per_epoch=S)
    assert str(info.value) == ("cannot build 'scheduler' from its config: StepLR.__init__() got an unexpected keyword "
                               "argument 'epochs' (the trainer calls it as scheduler(optimizer, epochs=..., "
                               "steps_per_epoch=...))")


def test_scheduler_needs_an_optimizer():
    with pytest.raises(ConfigError, match="^scheduler needs a torch.optim.Optimizer, got Linear$"):
        schedulers.cosine(nn.Linear(2, 2), epochs=E, steps_per_epoch=S)
