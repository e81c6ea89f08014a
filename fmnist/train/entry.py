"""The glue between Hydra and the trainer: where the run dir is, and how errors reach the user.

Importing this module (train.py does, before Hydra composes anything) registers the OmegaConf resolver
`${fmnist.unique:}` that conf/train.yaml uses in the output folders: a short random id, drawn once per
process, so that two runs or sweeps started in the same second, or on different nodes, never share a
folder. It is registered with `use_cache=True`: Hydra copies the resolver cache of the sweep's config
into every job's config (`load_sweep_config`), and launchers that run jobs elsewhere (submitit, Slurm,
our `gpu_pool`) pickle that config together with its cache, so every job of a sweep, a Slurm job
requeued after preemption included, resolves the same sweep folder."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from fmnist.config import CONF_DIR, unquoted_path_error
from fmnist.errors import FmnistError
from fmnist.stopping import STOPPED, signals_as_interrupt
from fmnist.train.run import INTERRUPTED, train
from fmnist.train.run_dir import short_dirname

log = logging.getLogger("fmnist")

_PROCESS_ID: str | None = None


def process_unique_id() -> str:
    """Six random hex digits, the same for the whole life of this process."""
    global _PROCESS_ID
    if _PROCESS_ID is None:
        _PROCESS_ID = secrets.token_hex(3)
    return _PROCESS_ID


def register_resolvers() -> None:
    """`${fmnist.unique:}` (above) and `${fmnist.dirname:...}` (run-dir names that fit a folder name:
    fmnist.train.run_dir.short_dirname)."""
    if not OmegaConf.has_resolver("fmnist.unique"):
        OmegaConf.register_new_resolver("fmnist.unique", process_unique_id, use_cache=True)
    if not OmegaConf.has_resolver("fmnist.dirname"):
        OmegaConf.register_new_resolver("fmnist.dirname", short_dirname)


register_resolvers()


def _job_label(hc: Any) -> str:
    return f"job #{hc.job.num}" if hc.mode == RunMode.MULTIRUN else "the run"


def grid_ignored(hc: Any) -> str | None:
    """The warning for a config whose grid (hydra.sweeper.params, a study preset's) a run without -m ignores."""
    params = hc.sweeper.get("params") if hc.mode != RunMode.MULTIRUN else None
    if not params:
        return None
    name = hc.runtime.choices.get("experiment") or "this config"
    return (f"{name} sweeps {', '.join(params)} (hydra.sweeper.params), but without -m this is one run of its "
            "defaults: add -m to run the grid")


def hydra_main(cfg: DictConfig) -> float | None:
    """Run `train` in Hydra's output dir. Returns the best validation accuracy (for sweepers).

    Ctrl-C stops a run or a sweep with one line and exit status 130; so do SIGTERM and SIGHUP (`kill`, a closed
    terminal), except in a submitit job (Slurm), where submitit's own handlers requeue it. A single run that fails
    exits with status 1: a user-facing error (FmnistError) as one line, anything else with its traceback. In a
    sweep (-m) a failed job never raises: its summary.json records the failure (status failed, error, traceback), one
    line is logged, and the sweep goes on with the next job; `SweepReport` counts the outcomes at the end and
    sets the exit status."""
    hc = HydraConfig.get()
    choices = {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra/")}
    sweep = hc.mode == RunMode.MULTIRUN
    if warning := grid_ignored(hc):
        log.warning(warning)
    stops = nullcontext() if os.environ.get("SUBMITIT_EXECUTOR") else signals_as_interrupt()
    try:
        with stops:
            summary = train(cfg, hc.runtime.output_dir, choices, [str(o) for o in hc.overrides.task])
    except KeyboardInterrupt:  # Ctrl-C ends a run and a sweep alike, with one line instead of a traceback
        STOPPED.set()
        log.error("interrupted: %s stopped (summary.json status %s); launch the same command again to resume it",
                  hc.runtime.output_dir, INTERRUPTED)
        sys.exit(130)
    except FmnistError as exc:
        if not sweep:
            log.error("error: %s", exc)
            sys.exit(1)
        log.error("error: %s — %s failed, the sweep goes on", exc, _job_label(hc))
        return None
    except Exception as exc:  # a bug or an unexpected library error: fatal for a run, recorded in a sweep
        if not sweep:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        log.error("error: %s: %s — %s failed, the sweep goes on (traceback in %s/summary.json)",
                  type(exc).__name__, first, _job_label(hc), hc.runtime.output_dir)
        return None
    return summary.get("best_val_acc")


#: Hydra's own flags that print or describe instead of running; with -m Hydra refuses them with a traceback.
_INSPECT_FLAGS = ("--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")


def argument_error(argv: list[str]) -> str | None:
    """The one-line error for command lines Hydra would answer with a traceback, else None: `-m` with `--cfg`
    (or `--info`), a config group set to null or a number (`norm=null` meaning "no norm"), an override without
    its key (`=3`), a path Hydra cannot read unquoted (`data.dir=~/data`; `data.dir=/data/a,b` without `-m`), a `name`
    with a `/`. Everything else is
    left to Hydra and fmnist.config."""
    multirun = bool({"-m", "--multirun"} & set(argv))
    if multirun and set(_INSPECT_FLAGS) & set(argv):
        return ("error: --cfg / --info cannot be combined with -m: show one job's config without -m "
                "(python train.py <overrides> --cfg job)")
    for before, arg in zip(["", *argv], argv):
        if before in _INSPECT_FLAGS or arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+~")
        if not group:
            return f"error: {arg} has no key: write key=value (python train.py --cfg job shows every key)"
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")) if "." not in group else []
        if options and (value.strip().lower() in ("null", "~", "") or _is_number(value)):
            hint = " (norm=none turns normalisation off)" if group == "norm" else ""
            return (f"error: {arg} is not an option of the {group} group: choose one of {', '.join(options)}"
                    f"{hint}")
        if group == "name" and "/" in value:  # Hydra would make nested folders: outputs/<date>/<time>_a/b_<id>
            return (f"error: {arg}: name is part of the output folder's name and cannot contain '/'; choose "
                    "where runs go with hydra.run.dir=... (hydra.sweep.dir=... with -m)")
        if message := unquoted_path_error(arg, None if multirun else "to sweep over them, add -m"):
            return message
        if message := missing_option_key(arg, argv):
            return message
    return None


def missing_option_key(arg: str, argv: list[str]) -> str | None:
    """The one-line error for `group.key=value` (`model.skip=false`) when an option of `group` that the command line
    chooses (`model=vgg11`, or one of a sweep's: `model=resnet9,vgg11`, `'model=glob(*)'`) has no such key. Hydra's
    own error names neither the option nor the fix, and its hint (`+model.skip=false`) fails on the options that do
    have the key. Options outside conf/ (a `--config-dir`'s) and ones with a defaults list are not checked."""
    key = arg.split("=", 1)[0]
    if key.startswith(("+", "~")) or "." not in key:
        return None
    group, path = key.split(".", 1)
    chosen = _chosen_options(group, argv)
    lacking = [name for name in chosen if not _option_has_key(CONF_DIR / group / f"{name}.yaml", path)]
    if not lacking:
        return None
    having = [name for name in chosen if name not in lacking]
    fix = (f"set it in a sweep of its own for the {group} options that have it ({', '.join(having)})" if having else
           f"python train.py {group}={lacking[0]} --cfg job shows its keys")
    return f"error: {arg}: {group}={','.join(lacking)} has no key {path}; {fix}"


def _chosen_options(group: str, argv: list[str]) -> list[str]:
    """The options of config group `group` (its files in conf/) that the command line's `group=...` chooses, a sweep's
    or glob's included; none without one, or where Hydra cannot parse it (Hydra then says why)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob

    known = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    choices = [arg for arg in argv if arg.split("=", 1)[0] == group]
    if not known or not choices:
        return []
    try:
        override = OverridesParser.create().parse_override(choices[-1])
    except Exception:
        return []
    value = override.value()
    if isinstance(value, Glob):
        names = value.filter(known)
    else:
        names = list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(value)]
    return [name for name in names if name in known]


def _option_has_key(path: Path, dotted: str) -> bool:
    """Whether the config file `path` holds the key `dotted` (True where it cannot tell: a defaults list, a file
    that does not read)."""
    try:
        node = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return True
    if not isinstance(node, dict) or "defaults" in node:
        return True
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return isinstance(node, dict) and "defaults" in node
        node = node[part]
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
