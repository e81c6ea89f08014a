"""Every option of every config group composes through conf/train.yaml and instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fmnist.config import check_targets, describe_differences, differing_keys, safe_instantiate, validate
from fmnist.errors import ConfigError
from fmnist.models.factory import build_model
from fmnist.train.optim import build_optimizer

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("model", "norm", "activation", "optimizer", "scheduler", "augment", "data", "logger")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def compose_train(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert list((CONF / group).glob("*.yaml")), group


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group: str, option: str) -> None:
    cfg = compose_train(f"{group}={option}", "model.width=4")
    validate(cfg)
    model = build_model(cfg)
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10)
    optimizer = build_optimizer(safe_instantiate(cfg.optimizer, "optimizer"), model)
    scheduler = safe_instantiate(cfg.scheduler, "scheduler")(optimizer, epochs=2, steps_per_epoch=3)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    augment = safe_instantiate(cfg.augment, "augment")
    x, _ = augment(torch.rand(4, 1, 28, 28), torch.arange(4))
    assert x.shape == (4, 1, 28, 28)


def test_defaults_are_the_users_base_config() -> None:
    cfg = compose_train()
    assert cfg.trainer.epochs == 50 and cfg.trainer.batch_size == 128 and cfg.seed == 42
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9 and cfg.optimizer.weight_decay == 1e-4
    assert OmegaConf.select(cfg, "model._target_").endswith("ResNet9")


@pytest.mark.parametrize(
    "target", ["os.system", "subprocess.run", "builtins.eval", "torch.load", "fmnistx.evil"]
)
def test_foreign_targets_are_refused(target: str) -> None:
    cfg = compose_train(f"model._target_={target}")
    with pytest.raises(ConfigError, match="not allowed"):
        check_targets(cfg.model, "model")
    with pytest.raises(ConfigError, match="not allowed"):
        validate(cfg)


@pytest.mark.parametrize(
    "target", ["torch.nn.modules.module.torch.save", "torch.optim.optimizer.torch.load", "fmnist.study.subprocess.run",
               "fmnist.config.instantiate", "fmnist.study.Path", "fmnist.train.entry.os"]
)
def test_targets_reached_through_an_allowed_module_are_refused(target: str) -> None:
    """An allowed prefix is not enough: `torch.nn.modules.module.torch.save` is torch.save, reached through the
    `torch` that torch.nn.modules.module imports; what the target resolves to must be defined in an allowed module."""
    with pytest.raises(ConfigError, match="not allowed"):
        check_targets(OmegaConf.create({"_target_": target}), "x")


@pytest.mark.parametrize(("override", "message"), [
    ("model._target_=fmnist.models.resnet.ResNett", "model._target_='fmnist.models.resnet.ResNett' cannot be imported: "
                                                    "module fmnist.models.resnet has no 'ResNett'"),
    ("optimizer._target_=torch.optim.Adamw", "optimizer._target_='torch.optim.Adamw' cannot be imported: module "
                                             "torch.optim has no 'Adamw'"),
    ("model._target_=fmnist.mynets.Net", "model._target_='fmnist.mynets.Net' cannot be imported: module fmnist has no "
                                         "'mynets'"),
    ("activation._target_=torch.nn.", "activation._target_='torch.nn.' cannot be imported: 'torch.nn.' is not a "
                                      "dotted path (module.name)"),
])
def test_a_target_that_does_not_exist_is_one_line_naming_the_missing_part(override: str, message: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A typo in a `_target_` a user writes: one ConfigError naming the key and the missing name, and no three-line
    "Error getting object" that hydra.utils.get_object logged for every lookup (three times before the error)."""
    cfg = compose_train(override)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert str(info.value) == message
    group = override.split(".")[0]
    with pytest.raises(ConfigError) as info:
        safe_instantiate(cfg[group], group)
    assert str(info.value) == message
    assert "Error getting object" not in caplog.text and not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize(("group", "call"), [
    ("norm", "norm(channels)"), ("activation", "activation()"), ("optimizer", "optimizer(param_groups)"),
    ("scheduler", "scheduler(optimizer, epochs=..., steps_per_epoch=...)"),
])
def test_a_factory_config_without_partial_is_one_line_naming_the_fix(group: str, call: str) -> None:
    """An option a user adds without `_partial_: true`: before, e.g. "cannot build 'activation' ...: ReLU.forward()
    missing 1 required positional argument: 'input'" or "SGD.__init__() missing ... 'params'"."""
    with pytest.raises(ConfigError) as info:
        validate(compose_train(f"~{group}._partial_"))
    assert str(info.value) == (f"{group}._partial_ must be true (add `_partial_: true` to its config): {group} builds a "
                               f"factory that is called as {call}")
    with pytest.raises(ConfigError, match=r"^activation\._partial_ must be true"):
        validate(compose_train("activation._partial_=false"))


@pytest.mark.parametrize("group", ["model", "augment"])
def test_a_model_or_augment_config_with_partial_is_one_line_naming_the_fix(group: str) -> None:
    """`_partial_: true` copied into a model or augment option a user adds: before, a traceback ("'_DeferredTarget'
    object has no attribute 'to'", "Augment.__init__() got multiple values for argument 'crop_padding'")."""
    with pytest.raises(ConfigError) as info:
        validate(compose_train(f"+{group}._partial_=true"))
    assert str(info.value) == (f"{group}._partial_ must be false (remove `_partial_: true` from its config): {group} "
                               f"builds the {group} itself, not a factory")


def test_nested_foreign_target_is_refused() -> None:
    node = OmegaConf.create({"_target_": "torch.nn.Sequential", "inner": {"_target_": "os.system"}})
    with pytest.raises(ConfigError, match=r"x\.inner\._target_"):
        check_targets(node, "x")
    in_a_list = OmegaConf.create({"_target_": "torch.nn.Sequential", "layers": [{"_target_": "os.system"}]})
    with pytest.raises(ConfigError, match=r"^x\.layers\[0\]\._target_='os.system' is not allowed"):
        check_targets(in_a_list, "x")


def test_a_target_reached_through_an_interpolation_is_refused() -> None:
    """instantiate resolves `${...}` and builds a `_target_` it finds there: a node of another group (logger is
    never built or checked) interpolated into the model must be checked too."""
    cfg = compose_train("+logger.x._target_=builtins.print", "+logger.x._args_=[built]", "+model.extra=${logger.x}")
    with pytest.raises(ConfigError, match=r"^model\.extra\._target_='builtins.print' is not allowed"):
        check_targets(cfg.model, "model")
    with pytest.raises(ConfigError, match=r"^unknown key\(s\) logger\.x\._args_, logger\.x\._target_"):
        validate(cfg)  # the logger's keys are checked now too: refused before its targets are


def test_wrong_type_is_named() -> None:
    cfg = compose_train("trainer.epochs=ten")
    with pytest.raises(ConfigError, match="^trainer.epochs='ten' is invalid: must be an integer >= 1$"):
        validate(cfg)
    cfg = compose_train("model.width=wide")  # validate() names model.width; built without it: one ConfigError
    with pytest.raises(ConfigError, match="^cannot build 'model' from its config: "):
        build_model(cfg)


@pytest.mark.parametrize(("overrides", "message"), [
    (["trainer.force=flase"], "trainer.force='flase' is invalid: choose true or false"),
    (["model.skip=flase"], "model.skip='flase' is invalid: choose true or false"),
    (["trainer.drop_last=abc"], "trainer.drop_last='abc' is invalid: choose true or false"),
    (["data.auto_prepare=yes"], "data.auto_prepare='yes' is invalid: choose auto, true or false"),
    (["trainer.channels_last=abc"], "trainer.channels_last='abc' is invalid: choose auto, true or false"),
    (["model.width=abc"], "model.width='abc' is invalid: must be an integer"),
    (["model.width=4.5"], "model.width=4.5 is invalid: must be an integer"),
    (["activation=leaky_relu", "activation.negative_slope=abc"], "activation.negative_slope='abc' is invalid"),
    (["optimizer.lr=abc"], "optimizer.lr='abc' is invalid: must be a number"),
    (["optimizer.nesterov=1"], "optimizer.nesterov=1 is invalid: choose true or false"),
    (["trainer.grad_clip=-1"], "trainer.grad_clip=-1 is invalid: must be null (no clipping) or a number > 0"),
    (["trainer.grad_clip=abc"], "trainer.grad_clip='abc' is invalid"),
    (["trainer.grad_clip=0"], "trainer.grad_clip=0 is invalid: must be null (no clipping) or a number > 0"),  # falsy
    (["trainer.checkpoint_every=0"], "trainer.checkpoint_every=0 is invalid: must be an integer >= 1"),  # epoch % 0
    (["trainer.batch_size=1"], "trainer.batch_size=1 is invalid: must be an integer >= 2"),
    (["data.subset=1"], "data.subset=1 is invalid"),
    (["data.split_seed=-5"], "data.split_seed=-5 is invalid: must be an integer >= 0"),
    (["seed=99999999999999999999"], "seed=99999999999999999999 is invalid"),
    (["data.dir=null"], "data.dir=None is invalid: must be a folder path"),
    (["+data.subsett=5"], "unknown key(s) data.subsett"),
    (["trainer.early_stop_patience=2", "data.val_fraction=0"], "needs a validation split"),
    (["trainer.label_smoothing=1.0"], "trainer.label_smoothing=1.0 is invalid: must be in [0, 1)"),  # uniform targets
    (["trainer.label_smoothing=-0.1"], "trainer.label_smoothing=-0.1 is invalid: must be in [0, 1)"),
    (["data.val_fraction=1.0"], "data.val_fraction=1.0 is invalid: must be in [0, 1)"),  # nothing left to train on
    (["trainer.ema_decay=1.0"], "trainer.ema_decay=1.0 is invalid: must be null or a number in (0, 1)"),
    (["trainer.ema_decay=0.0"], "trainer.ema_decay=0.0 is invalid: must be null or a number in (0, 1)"),
    (["trainer.fused=abc"], "trainer.fused='abc' is invalid: choose auto, true or false"),
    (["optimizer.lr=true"], "optimizer.lr=True is invalid: must be a number"),  # a bool is no number here
    (["trainer.early_stop_patience=0"], "trainer.early_stop_patience=0 is invalid: must be null or an integer >= 1"),
    (["trainer.track_dead_images=0"], "trainer.track_dead_images=0 is invalid: must be an integer >= 1"),
    (["trainer.test_on=first"], "trainer.test_on='first' is invalid: choose best or last"),
    (["optimizer.lr=${trainer.nope}"], "the config cannot be resolved: Interpolation key 'trainer.nope' not found"),
    # list values: their constructors' errors named neither the key nor the fix ("invalid literal for int()...")
    (["model=resnet18", "model.depths=abc"], "model.depths='abc' is invalid: must be a list of integers, "
                                             "e.g. [2, 2, 2, 2]"),
    (["model=resnet18", "model.depths=5"], "model.depths=5 is invalid: must be a list of integers"),
    (["model=resnet18", "model.depths=[2,2.5]"], "model.depths=[2, 2.5] is invalid: must be a list of integers"),
    (["model=resnet18", "model.depths=[2,true]"], "model.depths=[2, True] is invalid: must be a list of integers"),
    (["optimizer=adam", "optimizer.betas=[a,b]"], "optimizer.betas=['a', 'b'] is invalid: must be a list of 2 "
                                                  "numbers, e.g. [0.9, 0.999]"),
    (["optimizer=adamw", "optimizer.betas=[0.9]"], "optimizer.betas=[0.9] is invalid: must be a list of 2 numbers"),
    (["optimizer=adam", "optimizer.betas=abc"], "optimizer.betas='abc' is invalid: must be a list of 2 numbers"),
    (["scheduler=multistep", "scheduler.milestones=[0.5,a]"], "scheduler.milestones=[0.5, 'a'] is invalid: must be "
                                                              "a list of numbers or a number, e.g. [0.5, 0.75]"),
    (["augment=standard", "augment.erasing_area=abc"], "augment.erasing_area='abc' is invalid: must be a list of "
                                                       "numbers"),
    (["norm.eps=null"], "norm.eps=None is invalid: must be a number"),  # else a TypeError at the first forward
    (["activation=leaky_relu", "activation.negative_slope=null"], "activation.negative_slope=None is invalid"),
])
def test_bad_types_and_values_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(compose_train(*overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("overrides", "message"), [
    (["norm=groupnorm", "norm.groups=0"], "norm.groups must be >= 1, got 0"),
    (["model=resnet18", "model.init=xavier"], "model.init must be one of ('kaiming', 'default'), got 'xavier'"),
    (["model.width=0"], "model.width must be >= 1, got 0"),
    (["model=vgg11", "model.dropout=1.5"], "model.dropout must be in [0, 1), got 1.5"),
    (["model=resnet18", "model.depths=[2,0,2,2]"], "model.depths must be a non-empty list of positive ints, "
                                                   "got [2, 0, 2, 2]"),
    # a norm or activation a user adds that the models cannot call: the error names that group, not the model
    (["norm._target_=torch.nn.GroupNorm", "+norm.num_groups=8", "~norm.eps", "~norm.momentum", "~norm.affine",
      "~norm.track_running_stats"], "cannot build 'norm' from its config: the models call it as norm(channels): "
                                    "GroupNorm.__init__() got multiple values for argument 'num_groups'"),
    (["activation._target_=torch.nn.Threshold"], "cannot build 'activation' from its config: the models call it as "
                                                 "activation(): Threshold.__init__() missing 2 required positional "
                                                 "arguments: 'threshold' and 'value'"),
])
def test_values_checked_when_the_model_is_built_are_named(overrides: list[str], message: str) -> None:
    """Values that pass validate() and are refused by the model's constructors, as one ConfigError line."""
    cfg = compose_train("model.width=4", *overrides)
    validate(cfg)
    with pytest.raises(ConfigError) as info:
        build_model(cfg)
    assert str(info.value) == message


def test_a_constructor_error_keeps_its_own_message() -> None:
    cfg = compose_train("augment.erasing=2")  # Hydra's InstantiationException says only "Error in call to target"
    with pytest.raises(ConfigError, match=r"^augment.erasing is a probability and must be in \[0, 1\], got 2.0$"):
        safe_instantiate(cfg.augment, "augment")
    with pytest.raises(ConfigError, match=r"cannot build 'model' from its config: .*unexpected keyword argument 'foo'"):
        safe_instantiate(compose_train("+model.foo=1").model, "model")


def test_the_edge_values_of_each_rule_pass() -> None:
    validate(compose_train("optimizer.lr=1", "trainer.test_on=last", "trainer.compile=max-autotune-no-cudagraphs",
                           "trainer.eval_batch_size=1", "trainer.ema_decay=0.5", "trainer.early_stop_patience=1",
                           "trainer.track_dead_images=1", "trainer.grad_clip=1", "data.subset=2", "seed=0"))
    # list values of the forms their constructors take: ints for depths (and a float list given ints), one milestone
    validate(compose_train("model=resnet18", "model.depths=[1,1]", "optimizer=adam", "optimizer.betas=[0,1]",
                           "scheduler=multistep", "scheduler.milestones=0.5", "augment.erasing_area=[0.1,0.2]"))
    validate(compose_train("+optimizer.foreach=null"))  # null where the constructor takes None


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.prepare_mode=oficial"], "data.prepare_mode='oficial' is invalid: choose official or random"),
    (["logger.tensorboard=flase"], "logger.tensorboard='flase' is invalid: choose true or false"),  # 'flase' logs
    (["logger.wandb.enabled=yes"], "logger.wandb.enabled='yes' is invalid: choose true or false"),
    (["logger=wandb", "logger.wandb.mode=onlin"], "logger.wandb.mode='onlin' is invalid: choose offline, online or "
                                                  "disabled"),
    (["trainer.label_smoothing=false"], "trainer.label_smoothing=False is invalid: must be in [0, 1)"),  # not 0
    (["data.val_fraction=true"], "data.val_fraction=True is invalid: must be in [0, 1)"),
    (["+logger.tensorbord=false"], "unknown key(s) logger.tensorbord: not part of conf/train.yaml, conf/data/ or "
                                   "conf/logger/ (python train.py --cfg job shows every key)"),
])
def test_data_and_logger_choices_are_checked(overrides: list[str], message: str) -> None:
    """Before, a mistyped prepare mode was ignored while the folder existed, a true/false logger key given
    anything else was taken as true, false was read as the number 0, and a mistyped logger key added with + was
    ignored."""
    with pytest.raises(ConfigError) as info:
        validate(compose_train(*overrides))
    assert str(info.value) == message


def test_the_prepare_modes_checked_are_the_builders() -> None:
    from fmnist.config import PREPARE_MODES
    from fmnist.data.prepare import MODES

    assert PREPARE_MODES == MODES
    for mode in MODES:
        validate(compose_train(f"data.prepare_mode={mode}"))
    for logger in ("none", "tensorboard", "wandb"):
        validate(compose_train(f"logger={logger}"))


@pytest.mark.parametrize(("override", "key"), [("+trainer.epochz=3", "trainer.epochz"), ("+lr=0.1", "lr")])
def test_keys_added_with_plus_must_exist(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown key\(s\) {key}"):
        validate(compose_train(override))


def test_bad_optimizer_value_is_one_config_error() -> None:
    """lr, weight_decay and betas are named by key; what only torch checks (momentum) is its one-line refusal."""
    cfg = compose_train("optimizer.lr=abc", "model.width=4")
    with pytest.raises(ConfigError, match="^optimizer.lr must be a number, got 'abc'$"):
        build_optimizer(safe_instantiate(cfg.optimizer, "optimizer"), build_model(cfg))
    cfg = compose_train("optimizer.momentum=-1", "model.width=4")
    with pytest.raises(ConfigError, match="^cannot build 'optimizer' from its config: Invalid momentum value: -1"):
        build_optimizer(safe_instantiate(cfg.optimizer, "optimizer"), build_model(cfg))


def test_differing_keys_compares_common_keys_below_the_ignored_ones() -> None:
    old = {"seed": 0, "trainer": {"epochs": 15, "force": False, "lr": [0.1, 0.2]}, "logger": {"a": 1}, "gone": 1}
    new = {"seed": 0, "trainer": {"epochs": 50, "force": True, "lr": [0.1, 0.3], "added": 2}, "logger": {"a": 2}}
    assert differing_keys(old, new) == ["logger.a", "trainer.epochs", "trainer.force", "trainer.lr"]
    assert differing_keys(old, new, ("logger", "trainer.force")) == ["trainer.epochs", "trainer.lr"]
    assert differing_keys(old, old) == [] and differing_keys({"x": 1.0}, {"x": 1}) == []
    described = describe_differences(old, new, ["trainer.epochs", "trainer.lr"], limit=1)
    assert described == "trainer.epochs 15 -> 50 and 1 more"
    assert describe_differences(old, new, ["trainer.epochs"], limit=1) == "trainer.epochs 15 -> 50"


def test_neutral_keys_stay_out_of_run_dir_names() -> None:
    """Keys that may change without making another run (resume, skip, reuse) must not rename its run dir."""
    from fmnist.train.run_dir import NEUTRAL_KEYS

    excluded = set(OmegaConf.load(CONF / "train.yaml").hydra.job.config.override_dirname.exclude_keys)
    assert set(NEUTRAL_KEYS) <= excluded, set(NEUTRAL_KEYS) - excluded


def _leaves(node: dict, prefix: str) -> list[str]:
    """The dotted keys of the values below `node`."""
    found = []
    for key, value in node.items():
        found += _leaves(value, f"{prefix}.{key}") if isinstance(value, dict) else [f"{prefix}.{key}"]
    return found


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "logger").glob("*.yaml")))
def test_keys_below_a_neutral_group_stay_out_of_run_dir_names(option: str) -> None:
    """`logger` is neutral as a whole, but Hydra leaves out of override_dirname only the exact keys it lists: a
    rerun with `logger.tensorboard=false` must find the same run dir, not train the run again in another."""
    leaves = _leaves(OmegaConf.to_container(OmegaConf.load(CONF / "logger" / f"{option}.yaml")), "logger")
    overrides = [f"{key}=x" for key in leaves]  # a string is fine for the name; nothing is validated
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"logger={option}", *overrides, "seed=3"], return_hydra_config=True)
    assert cfg.hydra.job.override_dirname == "seed=3"
