"""Config safety: allow-listed `_target_` instantiation and value checks that run before training."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from fmnist.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: Import paths a config's `_target_` may resolve to. Anything else (e.g. `os.system`) is refused.
ALLOWED_TARGET_PREFIXES: tuple[str, ...] = ("fmnist.", "torch.nn.", "torch.optim.")


def check_targets(node: Any, path: str = "") -> None:
    """Raise ConfigError if any `_target_` below `node` lies outside ALLOWED_TARGET_PREFIXES."""
    if isinstance(node, DictConfig):
        target = node.get("_target_") if "_target_" in node else None
        if target is not None:
            name = str(target)
            if not name.startswith(ALLOWED_TARGET_PREFIXES):
                where = f"{path}._target_" if path else "_target_"
                raise ConfigError(
                    f"{where}={name!r} is not allowed: targets must start with one of "
                    f"{', '.join(ALLOWED_TARGET_PREFIXES)}"
                )
        for key in node.keys():
            if key == "_target_":
                continue
            check_targets(node._get_node(key), f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            check_targets(item, f"{path}[{i}]")


def safe_instantiate(node: DictConfig, name: str, **kwargs: Any) -> Any:
    """Instantiate the config group `name` after checking its targets; errors name the group."""
    check_targets(node, name)
    try:
        return instantiate(node, **kwargs)
    except Exception as exc:  # Hydra wraps constructor errors; surface one clear line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot build {name!r} from its config: {msg}") from exc


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
def _known_keys() -> tuple[frozenset[str], frozenset[str]]:
    """Top-level and trainer keys of conf/train.yaml: the schema a `+key=value` override must not leave."""
    base = OmegaConf.load(CONF_DIR / "train.yaml")
    groups = {str(next(iter(d))) for d in base.get("defaults", []) if isinstance(d, DictConfig)}
    top = {str(k) for k in base.keys() if k != "defaults"} | groups | {"hydra"}
    return frozenset(top), frozenset(str(k) for k in base.trainer.keys())


def check_unknown_keys(cfg: DictConfig) -> None:
    """Refuse keys added with `+` that the trainer would silently ignore (e.g. `+trainer.epochz=3`)."""
    top, trainer = _known_keys()
    unknown = [str(k) for k in cfg.keys() if str(k) not in top]
    unknown += [f"trainer.{k}" for k in cfg.trainer.keys() if str(k) not in trainer]
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(sorted(unknown))}: not part of conf/train.yaml "
            f"(python train.py --cfg job shows every key)"
        )


def call_factory(factory: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a partial built from a config (optimizer, scheduler); a bad value in the config
    (e.g. `optimizer.lr=abc`) becomes one ConfigError naming the group instead of a traceback."""
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot build {name!r} from its config: {msg}") from exc


def _require(cond: bool, key: str, value: Any, rule: str) -> None:
    if not cond:
        raise ConfigError(f"{key}={value!r} is invalid: {rule}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(cfg: DictConfig) -> None:
    """Check the values a run depends on before anything is loaded or trained."""
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        raise ConfigError(f"missing required value(s): {', '.join(sorted(missing))}")
    check_unknown_keys(cfg)
    t, d = cfg.trainer, cfg.data
    _require(_is_int(t.epochs) and t.epochs > 0, "trainer.epochs", t.epochs, "must be an integer >= 1")
    _require(_is_int(t.batch_size) and t.batch_size > 0, "trainer.batch_size", t.batch_size, "must be an integer >= 1")
    _require(
        _is_int(t.eval_batch_size) and t.eval_batch_size > 0,
        "trainer.eval_batch_size", t.eval_batch_size, "must be an integer >= 1",
    )
    _require(
        t.precision in ("auto", "fp32", "bf16", "fp16"),
        "trainer.precision", t.precision, "choose auto, fp32, bf16 or fp16",
    )
    _require(
        isinstance(t.label_smoothing, (int, float)) and 0.0 <= t.label_smoothing < 1.0,
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
        isinstance(d.val_fraction, (int, float)) and 0.0 <= d.val_fraction < 1.0,
        "data.val_fraction", d.val_fraction, "must be in [0, 1)",
    )
    _require(
        d.subset is None or (_is_int(d.subset) and d.subset > 0),
        "data.subset", d.subset, "must be null or an integer >= 1",
    )
    _require(_is_int(cfg.seed), "seed", cfg.seed, "must be an integer")
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
    for group in ("model", "norm", "activation", "optimizer", "scheduler", "augment"):
        check_targets(cfg[group], group)
