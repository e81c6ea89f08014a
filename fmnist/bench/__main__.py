"""python -m fmnist.bench — seconds per epoch of the naive vs our pipeline, and time-to-accuracy.

    python -m fmnist.bench --out bench.json                          # GPU: full epochs, 4 models, 2 batch sizes
    python -m fmnist.bench --tiny                                    # CPU smoke test (seconds)
    python -m fmnist.bench --models resnet18 --batch-sizes 128 512 --tta quick
    python -m fmnist.bench --models resnet18 --modes eager graphs compile-default compile-reduce-overhead

Every figure is measured in this run on this device; the ratio column is naive / ours."""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from hydra import compose, initialize_config_dir

from fmnist.bench.concurrency import PHASES, sweep_throughput
from fmnist.bench.pipelines import MODES, time_naive, time_ours
from fmnist.bench.tta import CONF_DIR, compose_preset, time_to_accuracy
from fmnist.data.loader import DeviceSplit
from fmnist.data.prepare import DEFAULT_DIR, ensure_resplit
from fmnist.data.resplit import PARQUET_NAME, _parquet_image_bytes, load_resplit
from fmnist.errors import FmnistError, first_line, guard_standard_streams
from fmnist.models.factory import build_model
from fmnist.train.device import device_name, resolve_channels_last, resolve_device, resolve_precision
from fmnist.train.run_dir import write_json
from fmnist.train.seeding import seed_everything


def _model(name: str, width: int | None) -> torch.nn.Module:
    overrides = [f"model={name}"] + ([f"model.width={width}"] if width else [])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return build_model(compose("train", overrides=overrides))


def _train_pngs(data_dir: Path, train_ids: np.ndarray) -> list[bytes]:
    """The PNG bytes of the images `train_ids` (the reader's training ids, which it validated), in that order."""
    path = data_dir / PARQUET_NAME
    table = pq.read_table(path, columns=["id", "image"])
    blobs, _ = _parquet_image_bytes(table.column("image"), path)
    ids = table.column("id").to_numpy()
    order = np.argsort(ids, kind="stable")
    return [blobs[row] for row in order[np.searchsorted(ids[order], train_ids)].tolist()]


def _options(group: str) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fmnist.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DIR))
    p.add_argument("--device", default="auto")
    p.add_argument("--models", nargs="*", default=["resnet18", "resnet9", "resnet50", "vgg11"],
                   choices=_options("model"), metavar="MODEL", help="models to time (none: skip the throughput "
                   f"table); of {', '.join(_options('model'))}")
    p.add_argument("--batch-sizes", nargs="+", type=_at_least(2), default=[128, 512])
    p.add_argument("--width", type=_at_least(1), default=None,
                   help="model.width for every model (default: the model's)")
    p.add_argument("--steps", type=_at_least(0), default=0, help="timed steps per measurement; 0 = one full epoch")
    p.add_argument("--warmup", type=_at_least(0), default=10, help="untimed steps before timing")
    p.add_argument("--workers", type=_at_least(0), default=4, help="DataLoader workers of the naive pipeline")
    p.add_argument("--skip-naive", action="store_true", help="time only our pipeline")
    p.add_argument("--cudnn", choices=["benchmark", "deterministic"], default="benchmark",
                   help="cuDNN kernels of both pipelines' throughput rows: the fastest found (benchmark, what the "
                   "speed presets use) or the trainer's default deterministic ones")
    p.add_argument("--modes", nargs="+", choices=MODES, default=None,
                   help="how our pipeline runs the network (default: eager and graphs on CUDA, eager elsewhere)")
    p.add_argument("--tta", nargs="*", default=None, choices=_options("experiment"), metavar="PRESET",
                   help="time-to-accuracy presets to run (conf/experiment/, e.g. fast fast95 best)")
    p.add_argument("--tta-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--tta-epochs", nargs="+", type=_at_least(1), default=None, metavar="N",
                   help="run each time-to-accuracy preset once per number of epochs (default: its own), e.g. 12 14 16: "
                   "the shortest run that still reaches the aim")
    p.add_argument("--concurrency", nargs="*", type=_at_least(1), default=None, metavar="K",
                   help="study throughput with K concurrent jobs per GPU (gpu_pool), e.g. 1 4 8")
    p.add_argument("--concurrency-jobs", type=_at_least(1), default=8, help="jobs per concurrency measurement")
    p.add_argument("--concurrency-overrides", nargs="*", default=["model=resnet9", "trainer.epochs=2"],
                   metavar="KEY=VALUE", help="the configuration every concurrency job trains")
    p.add_argument("--tiny", action="store_true",
                   help="CPU smoke settings, replacing the model, batch, width, step and worker options: resnet9 "
                   "width 8, batch 64, 3 steps, warm-up 1, 0 workers, tta quick (--tta alone: none)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if not args.tiny:
        args.tta = args.tta or []
    else:
        args.models, args.batch_sizes, args.width = ["resnet9"], [64], 8
        args.steps, args.warmup, args.workers = 3, 1, 0
        args.tta = ["quick"] if args.tta is None else args.tta  # --tta alone: none, as for --concurrency
        args.concurrency = [1, 2] if args.concurrency is None else args.concurrency  # --concurrency alone: none
        args.concurrency_jobs = 2
        args.concurrency_overrides = ["trainer.epochs=1", "data.subset=256", "model.width=4",
                                      "data.val_fraction=0.02"]
        args.tta_overrides = args.tta_overrides or ["trainer.epochs=1", "data.subset=512", "model.width=8"]
    return args


def _free_device_memory(device: torch.device) -> None:
    """Release a measured model: a captured graph's forward refers back to its module (a reference cycle), so its
    weights and private memory pool would otherwise stay on the GPU until a full collection."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _save(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Write what is measured so far (`--out`), so a run stopped at a time limit keeps its finished rows."""
    if args.out:
        write_json(Path(args.out), results)


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon is serving this process's pipe directory (its control pipe exists); the
    jobs-per-GPU figures differ with it (several processes' kernels run at once instead of taking turns)."""
    pipe_dir = os.environ.get("CUDA_MPS_PIPE_DIRECTORY") or "/tmp/nvidia-mps"
    return Path(pipe_dir, "control").exists()


def _warm_up(args: argparse.Namespace, split: DeviceSplit, device: torch.device, precision: str) -> None:
    """Untimed steps of the first model before the table. On the H200 the first row of a run (ResNet18 at 128)
    came out ~1.8x slower in both modes than the same row timed later in another process; whatever a process's
    first GPU work pays for (clocks, lazy initialisation, allocator growth) must not land in a timed row."""
    torch.manual_seed(0)
    try:
        time_ours(_model(args.models[0], args.width).to(device), split, args.batch_sizes[0],
                  max(args.warmup, 1) * 5, args.warmup, device, precision,
                  channels_last=resolve_channels_last("auto", device))
    except (RuntimeError, AssertionError) as exc:  # the table's own row records what fails
        print(f"warm-up failed: {first_line(exc)[:300]}")
    finally:
        _free_device_memory(device)


def _check_batch_sizes(args: argparse.Namespace, n_train: int) -> None:
    """Refuse a batch larger than the training split: the naive DataLoader (drop_last) would give no batch at all
    and ours a smaller one than the images per step its timing counts."""
    too_big = [bs for bs in args.batch_sizes if bs > n_train] if args.models else []
    if too_big:
        raise FmnistError(f"--batch-sizes {too_big[0]} is larger than the {n_train} training images of the data folder")


def run(args: argparse.Namespace) -> dict[str, Any]:
    seed_everything(0, deterministic=args.cudnn == "deterministic")
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    modes = args.modes or (["eager", "graphs"] if device.type == "cuda" else ["eager"])
    if "graphs" in modes and device.type != "cuda":
        raise FmnistError(f"--modes graphs needs a CUDA device; this is {device}")
    data_dir = ensure_resplit(args.data_dir, "auto", option="--data-dir")  # builds only the default folder
    data = load_resplit(data_dir)
    split = DeviceSplit.from_imageset("train", data.train, np.arange(len(data.train)), device)
    _check_batch_sizes(args, len(split))
    pngs = None if args.skip_naive or not args.models else _train_pngs(Path(data_dir), data.train.ids)
    results: dict[str, Any] = {
        "device": str(device), "device_name": device_name(device), "torch_version": torch.__version__,
        "python": platform.python_version(), "precision": precision,
        # of the throughput rows (--cudnn); the time-to-accuracy presets set their own
        "cudnn": {"deterministic": torch.backends.cudnn.deterministic, "benchmark": torch.backends.cudnn.benchmark},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "settings": vars(args).copy(),
        "throughput": [], "time_to_accuracy": [], "concurrency": [], "mps": mps_running(),
    }
    print(f"device {results['device_name']} | torch {torch.__version__} | precision {precision}")
    if args.models:
        _warm_up(args, split, device, precision)
        print(f"{'model':<16}{'batch':>6}{'mode':>25}{'setup s':>9}{'s/epoch':>9}{'img/s':>10}{'naive/this':>11}")
    for name in args.models:
        for bs in args.batch_sizes:
            steps = args.steps or len(split) // bs
            row: dict[str, Any] = {"model": name, "batch_size": bs, "steps": steps, "modes": {}}
            naive = None
            if pngs is not None:
                torch.manual_seed(0)
                naive = time_naive(_model(name, args.width).to(device), pngs, data.train.labels, bs, steps,
                                   args.warmup, args.workers, device)
                row.update(naive_s_per_epoch=naive.s_per_epoch, naive_images_per_s=naive.images_per_s)
                print(f"{name:<16}{bs:>6}{'naive (PIL + DataLoader)':>25}{'':>9}{naive.s_per_epoch:>9.2f}"
                      f"{naive.images_per_s:>10.0f}{1.0:>10.1f}x")
            for mode in modes:
                torch.manual_seed(0)
                try:
                    ours = time_ours(_model(name, args.width).to(device), split, bs, steps, args.warmup, device,
                                     precision, channels_last=resolve_channels_last("auto", device), mode=mode)
                except (RuntimeError, AssertionError) as exc:  # a failed capture or compilation: the next mode
                    row["modes"][mode] = {"error": first_line(exc)[:300]}
                    print(f"{name:<16}{bs:>6}{mode:>25}  failed: {row['modes'][mode]['error']}")
                    continue
                finally:
                    _free_device_memory(device)
                row["modes"][mode] = {"s_per_epoch": ours.s_per_epoch, "images_per_s": ours.images_per_s,
                                      "setup_s": ours.setup_s}
                ratio = f"{naive.s_per_epoch / ours.s_per_epoch:.1f}x" if naive else "-"
                print(f"{name:<16}{bs:>6}{mode:>25}{ours.setup_s:>9.1f}{ours.s_per_epoch:>9.2f}"
                      f"{ours.images_per_s:>10.0f}{ratio:>11}")
            timed = [m for m in row["modes"] if "s_per_epoch" in row["modes"][m]]
            if timed:
                best = min(timed, key=lambda m: row["modes"][m]["s_per_epoch"])
                row.update(ours_mode=best, ours_s_per_epoch=row["modes"][best]["s_per_epoch"],
                           ours_images_per_s=row["modes"][best]["images_per_s"])
                if naive is not None:
                    row["speedup"] = naive.s_per_epoch / row["ours_s_per_epoch"]
            results["throughput"].append(row)
            _save(args, results)
    for preset in args.tta:
        for epochs in args.tta_epochs or [None]:
            length = [] if epochs is None else [f"trainer.epochs={epochs}"]
            res = time_to_accuracy(preset, [f"data.dir={data_dir}", *args.tta_overrides, *length])
            results["time_to_accuracy"].append(res)
            _save(args, results)
            label = preset if epochs is None else f"{preset}, {epochs} epochs"
            if res["error"]:
                print(f"tta {label}: {res['status']}: {res['error']}")
            else:
                acc = "n/a" if res["test_acc"] is None else f"{100 * res['test_acc']:.2f} %"
                print(f"tta {label}: test accuracy {acc} in {res['train_time_s']:.1f}s training ({res['status']})")
    base = None
    for k in args.concurrency or []:
        res = sweep_throughput(k, args.concurrency_jobs, [f"data.dir={data_dir}", *args.concurrency_overrides])
        base = base or res["runs_per_min"]
        res["speedup_vs_first"] = res["runs_per_min"] / base if base else None
        results["concurrency"].append(res)
        _save(args, results)
        vs = f"{res['speedup_vs_first']:.2f}x" if res["speedup_vs_first"] is not None else "n/a"
        print(f"concurrency K={k}: {res['completed']}/{res['jobs']} runs in {res['wall_s']:.1f}s = "
              f"{res['runs_per_min']:.2f} runs/min ({vs} of K={args.concurrency[0]})")
        phases = ", ".join(f"{PHASES[key]} {value:.1f}s" for key, value in (res.get("median_phases_s") or {}).items()
                           if value is not None)
        if phases:
            print(f"  median run: {phases}")
        if res["error"]:
            print("  not every job completed; the sweep ended with:\n    " + res["error"].replace("\n", "\n    "))
    return results


def check_out(out: str | None) -> None:
    """`--out` can be written, checked before anything is measured (a FmnistError when it cannot): a file of that
    name is opened for appending (nothing written to it) or created and removed again."""
    if not out:
        return
    path = Path(out)
    try:
        if path.is_dir():
            raise FmnistError(f"--out {out} is a folder; give a file name such as {path / 'bench.json'}")
        if not path.parent.is_dir():
            raise FmnistError(f"--out {out}: the folder {path.parent} does not exist")
        existed = path.exists()
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise FmnistError(f"--out {out} cannot be written: {exc.strerror or exc}") from exc


def check_presets(args: argparse.Namespace) -> None:
    """Each --tta preset composes with --tta-overrides (and each --tta-epochs), before anything is measured."""
    for preset in args.tta:
        for epochs in args.tta_epochs or [None]:
            length = [] if epochs is None else [f"trainer.epochs={epochs}"]
            compose_preset(preset, [*args.tta_overrides, *length])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_out(args.out)
        check_presets(args)
        results = run(args)
        if args.out:
            write_json(Path(args.out), results)
            print(f"wrote {args.out}")
    except FmnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    guard_standard_streams()
    sys.exit(main())
