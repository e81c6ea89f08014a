"""Config safety: allow-listed `_target_` instantiation and value checks that run before training."""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fmnist.errors import ConfigError, first_line

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: The config groups built from their `_target_`.
BUILT_GROUPS: tuple[str, ...] = ("model", "norm", "activation", "optimizer", "scheduler", "augment")

#: The built groups whose config builds a factory (`_partial_: true`), and how the models or the trainer call it.
FACTORY_CALLS: dict[str, str] = {
    "norm": "norm(channels)", "activation": "activation()", "optimizer": "optimizer(param_groups)",
    "scheduler": "scheduler(optimizer, epochs=..., steps_per_epoch=...)",
}

#: Import paths a config's `_target_` may resolve to. Anything else (e.g. `os.system`) is refused.
ALLOWED_TARGET_PREFIXES: tuple[str, ...] = ("fmnist.", "torch.nn.", "torch.optim.")


def hydra_quoted(value: str) -> str:
    """`value` as a single-quoted Hydra override value (Hydra reads `=`, `,`, `~`, brackets... inside it as text)."""
    return "'" + value.replace("'", "\\'") + "'"


def unquoted_path_error(arg: str, several: str | None = "") -> str | None:
    """The one-line error for a command-line `key=<path>` that Hydra cannot read unquoted, else None: `~/data`
    (the shell expands `~` only at a word's start), a sweep's run dir (`0_model.skip=True,seed=0`), a non-ASCII
    letter, `#`, `(`, `&`... (a value that is no path: only for a non-ASCII letter, `name=café`; under a sweep each of
    its values quoted). Hydra's own answer is a lexer error that names neither the key nor the fix. A path
    with a `,` (`/data/a,b`) reads as several values: without `-m` Hydra answers in five lines; here one line with
    the quoted form and `several`, the caller's hint for meaning several values (None: the caller runs a sweep,
    where several values are a sweep over them)."""
    key, sep, value = arg.partition("=")
    path = "/" in value or value.startswith("~")
    if not sep or value[:1] in ("'", '"', "[", "{") or not (path or not value.isascii()):
        return None
    values = value.split(",") if several is None and not path else [value]
    quoted = f"\"{key}={','.join(map(hydra_quoted, values))}\""
    try:
        [override] = OverridesParser.create().parse_overrides([arg])
    except OverrideParseException:
        what = "path" if path else "value"
        return f"error: {arg}: Hydra cannot read this {what} unquoted; quote it, inside the shell's quotes: {quoted}"
    if several is not None and override.is_sweep_override():
        return (f"error: {arg}: Hydra reads the ',' as separating several values; for one path quote it, inside the "
                f"shell's quotes: {quoted}" + (f"; {several}" if several else ""))
    return None


def locate(name: str) -> Any:
    """The object the dotted path `name` names, found as instantiate finds it (module by module, then attributes);
    an ImportError naming the missing part (hydra.utils.get_object also logs three lines for each failure)."""
    parts = name.split(".")
    if not all(parts):
        raise ImportError(f"{name!r} is not a dotted path (module.name)")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        parent = ".".join(parts[:i])
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif not isinstance(obj, types.ModuleType):
            raise ImportError(f"{parent} has no attribute {part!r}")
        else:
            try:
                obj = importlib.import_module(f"{parent}.{part}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{parent}.{part}":  # a module that one imports is missing: its own message
                    raise
                raise ImportError(f"module {parent} has no {part!r}") from exc
    return obj


def _allowed_target(name: str) -> bool:
    """`name` starts with an allowed prefix and what it resolves to is defined in an allowed module: a prefix alone
    would let `torch.nn.modules.module.torch.save` (torch.save, through a module's own `import torch`) pass. An
    ImportError (from :func:`locate`) when an allowed name does not resolve."""
    if not name.startswith(ALLOWED_TARGET_PREFIXES):
        return False
    obj = locate(name)
    origin = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
    return isinstance(origin, str) and f"{origin}.".startswith(ALLOWED_TARGET_PREFIXES)


def check_targets(node: Any, path: str = "") -> None:
    """Raise ConfigError if any `_target_` below `node` lies outside ALLOWED_TARGET_PREFIXES, by its name or by
    the module that defines what it resolves to. Interpolations are resolved first: instantiate builds a `_target_`
    that `${...}` brings in from another node (one never checked, e.g. `logger`)."""
    if isinstance(node, (DictConfig, ListConfig)):
        try:
            node = OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as exc:
            raise ConfigError(f"{path or 'the config'} cannot be resolved: {first_line(exc)}") from exc
    _check_resolved_targets(node, path)


def _check_resolved_targets(node: Any, path: str) -> None:
    """check_targets on a resolved container (dicts and lists)."""
    if isinstance(node, dict):
        target = node.get("_target_")
        where = f"{path}._target_" if path else "_target_"
        try:
            allowed = target is None or _allowed_target(str(target))
        except Exception as exc:  # not importable: a typo'd name, or a module that fails to import
            raise ConfigError(f"{where}={str(target)!r} cannot be imported: {first_line(exc)}") from exc
        if not allowed:
            raise ConfigError(f"{where}={str(target)!r} is not allowed: targets must start with one of "
                              f"{', '.join(ALLOWED_TARGET_PREFIXES)} and be defined there")
        for key, value in node.items():
            if key != "_target_":
                _check_resolved_targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_resolved_targets(item, f"{path}[{i}]")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain, or the first ConfigError in it (one that names its own cause): Hydra wraps
    a constructor's error in an InstantiationException whose own message is only "Error in call to target ...:"."""
    while exc.__cause__ is not None and not isinstance(exc, ConfigError):
        exc = exc.__cause__
    return exc


def safe_instantiate(node: DictConfig, name: str, **kwargs: Any) -> Any:
    """Instantiate the config group `name` after checking its targets; errors name the group and give the
    constructor's own message (e.g. `augment.erasing is a probability ...`)."""
    check_targets(node, name)
    try:
        return instantiate(node, **kwargs)
    except Exception as exc:  # Hydra wraps constructor errors; surface one clear line
        cause = _root_cause(exc)
        if isinstance(cause, ConfigError):
            raise ConfigError(str(cause)) from exc
        raise ConfigError(f"cannot build {name!r} from its config: {first_line(cause)}") from exc


def differing_keys(a: Mapping[str, Any], b: Mapping[str, Any], ignore: Iterable[str] = (),
                   _prefix: str = "") -> list[str]:
    """The dotted keys that two resolved configs both have and give different values, except `ignore`d ones
    (a dotted key ignores everything below it). Keys only one of them has are not compared, so a key added
    to conf/ since a run was made does not make that run a different computation."""
    skip = ignore if isinstance(ignore, frozenset) else frozenset(ignore)
    found: list[str] = []
    for key in sorted(set(a) & set(b), key=str):
        dotted = f"{_prefix}{key}"
        if dotted in skip:
            continue
        va, vb = a[key], b[key]
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            found += differing_keys(va, vb, skip, dotted + ".")
        elif va != vb:
            found.append(dotted)
    return found


def describe_differences(old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str], limit: int = 3) -> str:
    """`key old -> new` for the first `limit` of `keys` (from differing_keys), e.g. for an error message."""
    def get(config: Mapping[str, Any], dotted: str) -> Any:
        for part in dotted.split("."):
            config = config[part]
        return config

    shown = [f"{key} {get(old, key)!r} -> {get(new, key)!r}" for key in keys[:limit]]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


@lru_cache(maxsize=1)
def _schema() -> tuple[frozenset[str], dict[str, dict[str, Any]]]:
    """Top-level keys of conf/train.yaml, and the defaults of its `trainer` node and of conf/data/: the schema a
    `+key=value` override must not leave and whose true/false keys must stay true or false."""
    base = OmegaConf.load(CONF_DIR / "train.yaml")
    groups = {str(next(iter(d))) for d in base.get("defaults", []) if isinstance(d, DictConfig)}
    top = {str(k) for k in base.keys() if k != "defaults"} | groups | {"hydra"}
    data: dict[str, Any] = {}
    for path in sorted((CONF_DIR / "data").glob("*.yaml")):
        data.update(OmegaConf.to_container(OmegaConf.load(path)))
    return frozenset(top), {"trainer": OmegaConf.to_container(base.trainer), "data": data}


def check_structure(cfg: DictConfig) -> None:
    """The sections and keys the trainer reads are there: `trainer=fast` (a value where the trainer section goes)
    or `~trainer.epochs` (a key removed) is one line naming it, not an AttributeError deep in validation."""
    top, nodes = _schema()
    for node in (*nodes, *BUILT_GROUPS):
        if node in cfg and not isinstance(cfg[node], DictConfig):
            raise ConfigError(f"{node}={cfg[node]!r} is invalid: {node} is a section of the config, not a value "
                              f"(set its keys instead: {node}.<key>=...)")
    removed = sorted(k for k in top if k != "hydra" and k not in cfg)  # keys of train.yaml and its groups
    removed += [f"{node}.{k}" for node, defaults in nodes.items() if node in cfg
                for k in defaults if k not in cfg[node]]
    if removed:
        raise ConfigError(f"required key(s) {', '.join(sorted(removed))} removed (with ~?): the trainer needs "
                          f"them (python train.py --cfg job shows every key)")


@lru_cache(maxsize=1)
def _logger_defaults() -> dict[str, Any]:
    """Dotted key -> default of the keys of every conf/logger/ option (logger.wandb.mode: offline, ...)."""
    return {k: v for path in sorted((CONF_DIR / "logger").glob("*.yaml"))
            for k, v in _dotted(OmegaConf.to_container(OmegaConf.load(path)), "logger.").items()}


def _dotted(node: Any, prefix: str) -> dict[str, Any]:
    """The leaves of a nested mapping by dotted key (an empty mapping is a leaf)."""
    if not isinstance(node, Mapping) or not node:
        return {prefix.rstrip("."): node}
    return {k: v for key, value in node.items() for k, v in _dotted(value, f"{prefix}{key}.").items()}


def _logger_values(cfg: DictConfig) -> dict[str, Any]:
    """The run's logger settings by dotted key ({} without a logger section, which check_structure reports)."""
    logger = cfg.get("logger")
    return _dotted(OmegaConf.to_container(logger), "logger.") if isinstance(logger, DictConfig) else {}


def check_unknown_keys(cfg: DictConfig) -> None:
    """Refuse keys added with `+` that the trainer would silently ignore (e.g. `+trainer.epochz=3`,
    `+logger.tensorbord=false`)."""
    top, nodes = _schema()
    unknown = [str(k) for k in cfg.keys() if str(k) not in top]
    for node, defaults in nodes.items():
        unknown += [f"{node}.{k}" for k in cfg[node].keys() if str(k) not in defaults]
    unknown += [k for k in _logger_values(cfg) if k not in _logger_defaults()]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(sorted(unknown))}: not part of conf/train.yaml, conf/data/ or conf/logger/ "
            f"(python train.py --cfg job shows every key)"
        )


#: true/false keys whose default is `auto`
_AUTO_FLAGS = frozenset({"trainer.channels_last", "trainer.fused", "trainer.progress", "trainer.cuda_graphs",
                         "data.auto_prepare"})


def check_flags(cfg: DictConfig) -> None:
    """A true/false key of trainer or data must get true or false (`trainer.force=flase` is not true)."""
    for node, defaults in _schema()[1].items():
        for key, default in defaults.items():
            dotted, value = f"{node}.{key}", cfg[node].get(key)
            if dotted in _AUTO_FLAGS:
                _require(isinstance(value, bool) or value == "auto", dotted, value, "choose auto, true or false")
            elif isinstance(default, bool):
                _require(isinstance(value, bool), dotted, value, "choose true or false")


#: data.prepare_mode's values (fmnist.data.prepare.MODES, not imported here: it loads torch)
PREPARE_MODES = ("official", "random")
#: logger.wandb.mode's values that wandb.init takes
WANDB_MODES = ("offline", "online", "disabled")


def check_logger(cfg: DictConfig) -> None:
    """The logger's true/false keys (those conf/logger/ gives a true/false default) get true or false
    (`logger.tensorboard=flase` would log), W&B a mode it knows."""
    values = _logger_values(cfg)
    for key, default in _logger_defaults().items():
        if isinstance(default, bool) and key in values:
            _require(isinstance(values[key], bool), key, values[key], "choose true or false")
    if values.get("logger.wandb.enabled"):
        mode = values.get("logger.wandb.mode", "offline")
        _require(mode in WANDB_MODES, "logger.wandb.mode", mode,
                 f"choose {', '.join(WANDB_MODES[:-1])} or {WANDB_MODES[-1]}")


_SCALARS: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float)}
_NAMES = {bool: ("true or false", "true/false values"), int: ("an integer", "integers"), float: ("a number", "numbers")}


def _accepted_types(annotation: Any) -> tuple[type, ...] | None:
    """The config value types a parameter annotated `annotation` takes: bool, int and float (ints too) are
    checked, alone or in a union with None or a Tensor; anything else (str, sequences, callables) is not."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        accepted: tuple[type, ...] = ()
        for arg in typing.get_args(annotation):
            if arg is type(None) or getattr(arg, "__name__", "") == "Tensor":
                continue
            if arg not in _SCALARS:
                return None
            accepted += _SCALARS[arg]
        return accepted or None
    return None


@dataclass(frozen=True)
class _Shape:
    """One form a config value may take: a value of `types`, or (`is_list`) a list of them, of `length` items when
    that is set."""

    types: tuple[type, ...]
    is_list: bool = False
    length: int | None = None

    def fits(self, value: Any) -> bool:
        if not self.is_list:
            return isinstance(value, self.types) and (bool in self.types or not isinstance(value, bool))
        if not isinstance(value, (ListConfig, list, tuple)):
            return False
        items = list(value)
        return (self.length is None or len(items) == self.length) and all(_Shape(self.types).fits(v) for v in items)

    def describe(self) -> str:
        shown = [t for t in self.types if not (t is int and float in self.types)]
        if not self.is_list:
            return " or ".join(dict.fromkeys(_NAMES[t][0] for t in shown))
        items = " or ".join(dict.fromkeys(_NAMES[t][1] for t in shown))
        return f"a list of {items}" if self.length is None else f"a list of {self.length} {items}"


def _accepted_shapes(annotation: Any) -> tuple[_Shape, ...] | None:
    """The forms (:class:`_Shape`) a parameter annotated `annotation` takes: a bool, int or float (or None, or a
    Tensor), a list of them (``Sequence[int]``, ``list[float]``, ``tuple[float, ...]``), a fixed-length tuple
    of one such type (``tuple[float, float]``: a list of 2), or a union of those; None (not checked) for anything
    else (str, callables, mixed item types)."""
    scalar = _accepted_types(annotation)
    if scalar is not None:
        return (_Shape(scalar),)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        shapes: list[_Shape] = []
        for arg in args:
            if arg is type(None) or getattr(arg, "__name__", "") == "Tensor":
                continue
            if (sub := _accepted_shapes(arg)) is None:
                return None
            shapes += sub
        # a list of any length makes a fixed-length list of the same items redundant (tuple[float, float] | Sequence)
        shapes = [s for s in shapes if not (s.length is not None and _Shape(s.types, True) in shapes)]
        return tuple(dict.fromkeys(shapes)) or None
    if origin not in (list, tuple, collections.abc.Sequence) or not args:
        return None
    fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
    items = {_accepted_types(a) for a in (args if fixed else args[:1])}
    if len(items) != 1 or None in items:
        return None
    return (_Shape(items.pop(), True, len(args) if fixed else None),)


@dataclass(frozen=True)
class _Rule:
    """What a constructor parameter accepts, its default (shown as an example for a list), and whether it takes
    None."""

    shapes: tuple[_Shape, ...]
    default: Any = None
    nullable: bool = False

    def fits(self, value: Any) -> bool:
        return any(shape.fits(value) for shape in self.shapes)

    def describe(self) -> str:
        if all(not s.is_list and s.types == (bool,) for s in self.shapes):
            return "choose true or false"
        example = ""
        if any(s.is_list for s in self.shapes) and isinstance(self.default, (list, tuple)) and self.default:
            example = f", e.g. {list(self.default)!r}"
        return "must be " + " or ".join(s.describe() for s in self.shapes) + example


def _parameter_rules(target: str) -> dict[str, _Rule]:
    """Parameter name -> what the callable `target` accepts there (from its type hints; {} when they cannot be
    read)."""
    try:
        obj = locate(target)
        fn = obj.__init__ if inspect.isclass(obj) else obj
        hints = typing.get_type_hints(fn)
        defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()
                    if p.default is not inspect.Parameter.empty}
    except Exception:  # an unresolvable annotation: nothing to check against
        return {}
    return {name: _Rule(shapes, defaults.get(name), type(None) in typing.get_args(hint)) for name, hint in hints.items()
            if (shapes := _accepted_shapes(hint)) is not None}


def check_group_types(cfg: DictConfig, groups: Iterable[str]) -> None:
    """Each value of a built group (model, optimizer, ...) must have the type its constructor's signature asks
    for: `model.skip=flase`, `model.width=abc`, `model.depths=abc` or `optimizer.betas=[a,b]` is refused, naming
    the key, before anything is built, instead of being read as true or failing deep inside training with a
    message that names neither the key nor the fix; null only where the signature takes None (`norm.eps=null`)."""
    for group in groups:
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        for key, rule in _parameter_rules(str(node._target_)).items():
            value = node.get(key)
            if key not in node or (value is None and rule.nullable):
                continue
            shown = list(value) if isinstance(value, ListConfig) else value
            _require(rule.fits(value), f"{group}.{key}", shown, rule.describe())


def check_partials(cfg: DictConfig) -> None:
    """A norm, activation, optimizer or scheduler config must build a factory, a model or augment config the object
    itself: one a user adds without `_partial_: true` (a common slip with Hydra), or a model with it, otherwise fails
    as the object is built or called, with a message such as "ReLU.forward() missing 1 required positional argument:
    'input'" (or a traceback) that names neither the key nor the fix."""
    for group in BUILT_GROUPS:
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        partial = node.get("_partial_") is True
        if group in FACTORY_CALLS and not partial:
            raise ConfigError(f"{group}._partial_ must be true (add `_partial_: true` to its config): {group} builds a "
                              f"factory that is called as {FACTORY_CALLS[group]}")
        if group not in FACTORY_CALLS and partial:
            raise ConfigError(f"{group}._partial_ must be false (remove `_partial_: true` from its config): {group} "
                              f"builds the {group} itself, not a factory")


def call_factory(factory: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a partial built from a config (optimizer, scheduler); a bad value in the config
    (e.g. `optimizer.lr=abc`) becomes one ConfigError naming the group instead of a traceback. A TypeError (a
    scheduler a user adds that does not take the trainer's arguments: torch's StepLR and `epochs`) also says how the
    trainer calls it."""
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError, IndexError, KeyError, OmegaConfBaseException) as exc:
        called = isinstance(exc, TypeError) and name in FACTORY_CALLS
        how = f" (the trainer calls it as {FACTORY_CALLS[name]})" if called else ""
        raise ConfigError(f"cannot build {name!r} from its config: {first_line(exc)}{how}") from exc


def _require(cond: bool, key: str, value: Any, rule: str) -> None:
    if not cond:
        raise ConfigError(f"{key}={value!r} is invalid: {rule}")


def check_optimizer_values(values: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the key for an optimizer lr or weight_decay that is not a number >= 0 (lr 0 freezes
    the weights: a control), or betas that are not a pair (torch names neither the key nor the fix, and only once
    the data has loaded). Keys the optimizer does not have are not checked."""
    for key in ("lr", "weight_decay"):
        if key not in values:
            continue
        value = values[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or isinstance(value, (bool, str)):
            raise ConfigError(f"optimizer.{key} must be a number, got {value!r}")
        if not number >= 0:  # NaN too
            raise ConfigError(f"optimizer.{key} must be >= 0, got {value!r}")
    betas = values.get("betas")
    if betas is not None and (isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2):
        shown = list(betas) if isinstance(betas, ListConfig) else betas
        raise ConfigError(f"optimizer.betas must be a pair [beta1, beta2], e.g. [0.9, 0.999]; got {shown!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(cfg: DictConfig) -> None:
    """Check the values a run depends on before anything is loaded or trained."""
    try:
        missing = OmegaConf.missing_keys(cfg)
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:  # e.g. optimizer.lr=${trainer.nope}
        raise ConfigError(f"the config cannot be resolved: {first_line(exc)}") from exc
    if missing:
        raise ConfigError(f"missing required value(s): {', '.join(sorted(missing))}")
    check_structure(cfg)
    check_unknown_keys(cfg)
    check_flags(cfg)
    check_logger(cfg)
    for group in BUILT_GROUPS:  # before check_group_types imports them to read their signatures
        check_targets(cfg[group], group)
    check_partials(cfg)
    check_group_types(cfg, BUILT_GROUPS)
    check_optimizer_values(cfg.optimizer)
    t, d = cfg.trainer, cfg.data
    _require(isinstance(d.dir, str) and d.dir.strip() != "", "data.dir", d.dir, "must be a folder path")
    _require(d.prepare_mode in PREPARE_MODES, "data.prepare_mode", d.prepare_mode, "choose official or random")
    _require(_is_int(d.split_seed) and d.split_seed >= 0, "data.split_seed", d.split_seed,
             "must be an integer >= 0")
    _require(
        t.grad_clip is None or (_is_number(t.grad_clip) and t.grad_clip > 0),
        "trainer.grad_clip", t.grad_clip, "must be null (no clipping) or a number > 0",
    )
    _require(_is_int(t.epochs) and t.epochs > 0, "trainer.epochs", t.epochs, "must be an integer >= 1")
    _require(_is_int(t.batch_size) and t.batch_size > 1, "trainer.batch_size", t.batch_size,
             "must be an integer >= 2 (BatchNorm cannot train on one image)")
    _require(
        _is_int(t.eval_batch_size) and t.eval_batch_size > 0,
        "trainer.eval_batch_size", t.eval_batch_size, "must be an integer >= 1",
    )
    _require(
        t.precision in ("auto", "fp32", "bf16", "fp16"),
        "trainer.precision", t.precision, "choose auto, fp32, bf16 or fp16",
    )
    _require(
        _is_number(t.label_smoothing) and 0.0 <= t.label_smoothing < 1.0,
        "trainer.label_smoothing", t.label_smoothing, "must be in [0, 1)",
    )
    _require(
        t.compile in (None, False, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        "trainer.compile", t.compile, "choose null, default, reduce-overhead or max-autotune",
    )
    _require(isinstance(t.cuda_graphs, bool) or t.cuda_graphs == "auto", "trainer.cuda_graphs", t.cuda_graphs,
             "choose auto, true or false")
    _require(not (t.cuda_graphs is True and t.compile), "trainer.cuda_graphs", t.cuda_graphs,
             "cannot be combined with trainer.compile; choose one")
    _require(isinstance(t.reuse_identical, bool), "trainer.reuse_identical", t.reuse_identical, "choose true or false")
    _require(t.test_on in ("best", "last"), "trainer.test_on", t.test_on, "choose best or last")
    _require(
        t.early_stop_patience is None or (_is_int(t.early_stop_patience) and t.early_stop_patience > 0),
        "trainer.early_stop_patience", t.early_stop_patience, "must be null or an integer >= 1",
    )
    _require(
        _is_number(d.val_fraction) and 0.0 <= d.val_fraction < 1.0,
        "data.val_fraction", d.val_fraction, "must be in [0, 1)",
    )
    _require(
        d.subset is None or (_is_int(d.subset) and d.subset > 1),
        "data.subset", d.subset, "must be null or an integer >= 2",
    )
    _require(_is_int(cfg.seed) and 0 <= cfg.seed < 2**63, "seed", cfg.seed, "must be an integer in [0, 2**63)")
    _require(t.early_stop_patience is None or d.val_fraction > 0, "trainer.early_stop_patience",
             t.early_stop_patience, "needs a validation split (data.val_fraction > 0) to watch")
    _require(
        t.ema_decay is None or (isinstance(t.ema_decay, float) and 0.0 < t.ema_decay < 1.0),
        "trainer.ema_decay", t.ema_decay, "must be null or a number in (0, 1)",
    )
    _require(
        _is_int(t.checkpoint_every) and t.checkpoint_every > 0,
        "trainer.checkpoint_every", t.checkpoint_every, "must be an integer >= 1",
    )
    _require(
        _is_int(t.track_dead_images) and t.track_dead_images > 0,
        "trainer.track_dead_images", t.track_dead_images, "must be an integer >= 1",
    )
