"""The whole study: every stage preset (conf/experiment/stage*.yaml) as one multirun each.

    python -m fmnist.study --list                       # the presets, their jobs and trainings; runs nothing
    python -m fmnist.study                              # run all presets one after another
    python -m fmnist.study --presets stage2_skip stage2_norm -- trainer.epochs=10 hydra/launcher=...
    python -m fmnist.study --concurrent 2 -- seed=0 hydra/launcher=gpu_pool hydra.launcher.jobs_per_gpu=4

Everything after `--` is passed to `train.py -m` for every preset, after `trainer.reuse_identical=true`: a cell
that several presets share (the base ResNet9 run of a seed is a cell of eight) trains once, and the other presets
copy its results, waiting for it when they reach it while it trains (`-- trainer.reuse_identical=false` trains
every one). `--concurrent N` runs N presets at once
(with gpu_pool, N x jobs_per_gpu jobs share each GPU, or jobs_per_gpu in all with
`hydra.launcher.shared_slots=DIR`, one folder for all of them), so a small preset's last jobs do not leave the GPU
idle while the next preset waits. A fixed sweep folder per preset makes the study resumable across
sessions: `'hydra.sweep.dir=multirun/study/${name}'` (completed runs are skipped, interrupted ones resume)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Mapping

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException

from fmnist.config import CONF_DIR
from fmnist.errors import guard_standard_streams
from fmnist.stopping import die_with_parent, signals_as_interrupt, stop_children

ROOT = CONF_DIR.parent
#: Set for each preset's sweep to the number of sweeps run at once: hydra/launcher=gpu_pool sizes its jobs' CPU
#: threads from the cores divided among them all (two presets of four jobs on 16 cores: 2 threads each, not 4).
SWEEPS_AT_ONCE_ENV = "FMNIST_SWEEPS_AT_ONCE"
TRAIN_SCRIPT = ROOT / "train.py"
#: Overrides every preset of the study starts from (the command line's come after them and win).
STUDY_DEFAULTS = ("trainer.reuse_identical=true",)
#: The data folder computation_counts' keys are made with: the same for every job, so the data do not count.
ANY_DATA = Path(".")


def stage_presets() -> list[str]:
    """Every study preset, in stage order (the files conf/experiment/stage*.yaml)."""
    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("stage*.yaml"))


def preset_jobs(name: str, overrides: list[str] | tuple[str, ...] = ()) -> list[list[str]]:
    """The override lists of the jobs `train.py -m +experiment=NAME *overrides` would launch."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={name}"], return_hydra_config=True)
    return expand_grid(cfg.hydra.sweeper.params or {}, overrides)


def preset_params(name: str) -> dict[str, Any]:
    """A study preset's grid (its `hydra.sweeper.params`) read from its file alone, without composing: usable
    inside another Hydra app (analyze.py), where preset_jobs cannot initialise Hydra again. Every stage preset
    states its whole grid in its own file (tests/test_study.py checks that both give the same jobs)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml")
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return {str(k): v for k, v in OmegaConf.to_container(params).items()}


def expand_grid(params: Mapping[str, Any], overrides: Iterable[str] = (), config_loader: Any = None) -> list[list[str]]:
    """The override lists of the jobs Hydra's basic sweeper launches for its `params` plus the command line's
    `overrides` (an OverrideParseException for one it cannot parse; a `glob(...)` of a config group's options needs
    Hydra's `config_loader`, as the sweeper has it)."""
    parser = OverridesParser.create(config_loader=config_loader)
    parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(overrides))
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def override_error(presets: Iterable[str], extra: list[str]) -> str | None:
    """The first error composing each preset's first job with the overrides after `--` (a mistyped key or option
    fails once, here, instead of once per preset), else None."""
    for name in presets:
        try:
            job = preset_jobs(name, extra)[0]
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                compose("train", overrides=[f"+experiment={name}", *STUDY_DEFAULTS, *job], return_hydra_config=True)
        except HydraException as exc:
            return f"error: {name} with the overrides after --: {str(exc).strip().splitlines()[0]}"
    return None


def computation_counts(grids: Mapping[str, list[list[str]]]) -> Counter[str] | None:
    """How many of the presets' jobs (`grids`: preset -> override lists, from preset_jobs) compute each distinct
    computation (fmnist.train.reuse.computation_key, with the data left out); None when trainer.reuse_identical
    is off, so that every job trains."""
    from fmnist.train.logging import to_container
    from fmnist.train.reuse import computation_key

    counts: Counter[str] = Counter()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for name, jobs in grids.items():
            for job in jobs:
                cfg = compose("train", overrides=[f"+experiment={name}", *STUDY_DEFAULTS, *job])
                if not cfg.trainer.reuse_identical:
                    return None
                counts[computation_key(to_container(cfg), ANY_DATA)] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m fmnist.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=None, help="presets to run (default: all stages)")
    parser.add_argument("--list", action="store_true", help="print the presets and their jobs, run nothing")
    parser.add_argument("--concurrent", type=int, default=1, metavar="N", help="presets run at once (default 1)")
    args = parser.parse_args(argv)
    known = stage_presets()
    presets = list(dict.fromkeys(args.presets or known))  # a preset named twice runs once
    unknown = [p for p in presets if p not in known]
    if unknown:
        overrides = [p for p in unknown if "=" in p]
        named = " ".join(p for p in presets if p in known)
        hint = (f" (overrides go after --: python -m fmnist.study --presets {named} -- {' '.join(overrides)})"
                if overrides else "")
        print(f"error: unknown preset(s) {', '.join(unknown)}; choose from {', '.join(known)}{hint}", file=sys.stderr)
        return 2
    if args.concurrent < 1:
        print(f"error: --concurrent must be >= 1, got {args.concurrent}", file=sys.stderr)
        return 2
    if args.list:
        try:
            grids = {name: preset_jobs(name, extra) for name in presets}
        except OverrideParseException as exc:
            print(f"error: cannot parse the overrides after --: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        if error := override_error(presets, extra):
            print(error, file=sys.stderr)
            return 2
        for name, jobs in grids.items():
            print(f"{name}: {len(jobs)} jobs")
            for job in jobs:
                print("   ", " ".join(job))
        total = sum(map(len, grids.values()))
        counts = computation_counts(grids)
        distinct = total if counts is None else len(counts)
        copies = total - distinct
        print(f"total: {total} jobs" + (f", {distinct} trainings (the other {copies} cop{'ies' if copies == 1 else 'y'}"
                                        " a cell that another job trains: trainer.reuse_identical)" if copies else ""))
        return 0

    if error := override_error(presets, extra):
        print(error, file=sys.stderr)
        return 2
    procs: dict[str, subprocess.Popen] = {}
    env = {**os.environ, SWEEPS_AT_ONCE_ENV: str(min(args.concurrent, len(presets)))}
    stopping = threading.Event()
    starting = threading.Lock()

    def run_preset(name: str) -> int:
        cmd = [sys.executable, str(TRAIN_SCRIPT), "-m", f"+experiment={name}", *STUDY_DEFAULTS, *extra]
        with starting:
            if stopping.is_set():
                return 130
            print("+", " ".join(cmd), flush=True)
            # Ctrl-C: one SIGINT from main (fmnist/stopping.py)
            procs[name] = subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent, env=env)
        return procs[name].wait()

    pool = ThreadPoolExecutor(max_workers=args.concurrent)
    try:
        with signals_as_interrupt():
            codes = list(pool.map(run_preset, presets))
    except KeyboardInterrupt:
        with starting:
            stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        running = [name for name, proc in procs.items() if proc.poll() is None]
        stop_children([procs[name] for name in running])
        print(f"interrupted: the study stopped {len(running)} running preset(s)"
              f"{' (' + ', '.join(running) + ')' if running else ''} and did not start {len(presets) - len(procs)}; "
              f"the same command resumes it", flush=True)
        return 130
    pool.shutdown()
    failed = [name for name, code in zip(presets, codes) if code != 0]
    done = len(presets) - len(failed)
    print(f"study: {done} preset{'' if done == 1 else 's'} completed, {len(failed)} with failed or unstarted jobs"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    guard_standard_streams()
    sys.exit(main())
