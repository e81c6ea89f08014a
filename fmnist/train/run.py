"""One training run, start to finish: config -> data -> model -> epochs -> test -> run-dir files.

Resumes from `checkpoints/last.pt` when the run dir holds one of the same config and data, and skips a run
whose summary says completed (unless `trainer.force=true`)."""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from fmnist.analysis.dead_neurons import DEAD_UNITS_FILE, activation_modules, dead_unit_stats
from fmnist.config import call_factory, describe_differences, differing_keys, safe_instantiate, validate
from fmnist.data.loader import DataSplits, eval_batches, load_splits, oversized_batch, steps_per_epoch, train_batches
from fmnist.data.prepare import ensure_resplit
from fmnist.data.resplit import CLASS_NAMES
from fmnist.errors import ConfigError, DataError, FmnistError, first_line
from fmnist.models.factory import build_model, check_logits
from fmnist.models.summary import model_summary
from fmnist.stopping import interrupt_cause, signals_held
from fmnist.train import checkpoint as ckpt
from fmnist.train.data_identity import other_data, run_data_fingerprint
from fmnist.train.device import (
    autocast, check_compile, device_name, resolve_channels_last, resolve_device, resolve_precision,
)
from fmnist.train.ema import ModelEMA
from fmnist.train.logging import MetricSinks, format_epoch, progress_enabled, to_container
from fmnist.train.loop import CUDAGRAPH_COMPILE_MODES, EvalResult, evaluate, train_one_epoch
from fmnist.train.optim import build_optimizer
from fmnist.train.phases import mark_run_end, startup_s
from fmnist.train.provenance import provenance
from fmnist.train.reuse import adopt_results, claim_computation, find_identical_run
from fmnist.train.run_dir import (
    METRICS_FILE, NEUTRAL_KEYS, PREDICTIONS_FILE, RunDirBusy, hold_run_dir, is_finished, note_refusal, read_summary,
    restore_hydra_record, write_metrics, write_rows_csv, write_summary,
)
from fmnist.train.seeding import rng_state, seed_everything, set_rng_state

log = logging.getLogger("fmnist")

#: Set (fmnist.train.callbacks) to the command that launched the run or sweep, and inherited by the jobs: a
#: job running elsewhere (a Slurm node, a pool worker) records it instead of its worker's own command line.
LAUNCH_COMMAND_ENV = "FMNIST_COMMAND"

class TrainingDiverged(FmnistError):
    """The training loss became NaN or infinite (summary.json's error starts with run_dir.DIVERGED)."""


class OutOfMemory(FmnistError):
    """The device (or host) ran out of memory."""


class RunDirConflict(ConfigError):
    """The run dir holds the run (finished, or a checkpoint to resume) of another configuration."""


#: summary.json `status` of a run stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP; like a killed run it resumes when
#: launched again
INTERRUPTED = "interrupted"
#: Its `error`, with what stopped it: Ctrl-C, or the signal fmnist.stopping turned into a KeyboardInterrupt
INTERRUPTED_ERROR = "interrupted ({}); launch the same command again to resume from the last checkpoint"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_predictions(path: Path, ids: np.ndarray, labels: torch.Tensor | None, probs: torch.Tensor) -> None:
    """predictions_test.csv: probabilities in fixed point to 1e-6. Exponent notation (1.23457e-07) for the many
    near-zero ones of a trained net doubled the file and compressed poorly in the committed study."""
    pred = probs.argmax(1).numpy()
    p = probs.numpy()
    columns = ["id"] + (["label"] if labels is not None else []) + ["pred"] + [f"p{c}" for c in range(p.shape[1])]
    true = None if labels is None else labels.cpu().numpy()
    rows = []
    for i in range(len(ids)):
        row: dict[str, Any] = {"id": int(ids[i]), "pred": int(pred[i])}
        if true is not None:
            row["label"] = int(true[i])
        row.update({f"p{c}": f"{p[i, c]:.6f}" for c in range(p.shape[1])})
        rows.append(row)
    write_rows_csv(path, columns, rows)


def _dead_probe(splits: DataSplits, n_images: int, channels_last: bool) -> torch.Tensor:
    """The fixed images `trainer.track_dead` measures every epoch: the first N of the validation split
    (of the training split when there is none), normalised as the model sees them."""
    source = splits.val if splits.val is not None else splits.train
    return next(eval_batches(source, max(1, n_images), channels_last))[0]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (on a CPU, .cpu() alone would alias the tensors training goes on changing)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train(cfg: DictConfig, run_dir: str | Path, choices: dict[str, str] | None = None,
          overrides: list[str] | None = None) -> dict[str, Any]:
    """Train one configuration into `run_dir` and return its summary (also written as summary.json).

    A completed run (its summary says so) is returned as it is unless `trainer.force=true`; one that diverged
    raises TrainingDiverged again without training; either is refused when the run dir was made by another
    configuration or trained on other data (so is a checkpoint; fmnist.train.data_identity). With
    `trainer.reuse_identical=true` a completed identical run beside this one is copied instead of trained, after
    waiting for one being trained right now (fmnist.train.reuse). Every failure,
    invalid configuration and out-of-memory included, is recorded in summary.json (status failed, error) and
    re-raised; out of memory becomes `OutOfMemory`, a one-line FmnistError. Except: a configuration or data error
    raised before training (a bad value, a missing or invalid data folder, a run dir holding another
    configuration's run) leaves a run dir that holds a run as it was, even under trainer.force, its .hydra/
    record included (restore_hydra_record), and Ctrl-C records status `interrupted`.
    `overrides` (the job's command-line overrides) are recorded in summary.json. While it trains, the run dir is
    locked (run_dir.hold_run_dir): a second process launched into it meanwhile raises RunDirBusy and writes
    nothing."""
    startup = startup_s()
    try:
        with hold_run_dir(Path(run_dir)):
            return _train_held(cfg, Path(run_dir), choices, overrides, startup)
    except RunDirBusy:  # Hydra rewrote .hydra/ for this job: put back the record of the run being trained
        running = read_summary(Path(run_dir))
        if running:
            restore_hydra_record(Path(run_dir), running)
        raise
    finally:
        mark_run_end()


def _train_held(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None,
                overrides: list[str] | None, startup: float | None) -> dict[str, Any]:
    entered = time.perf_counter()
    previous = read_summary(run_dir)
    if is_finished(previous) and not OmegaConf.select(cfg, "trainer.force", default=False):
        try:
            return _skip_finished(cfg, run_dir, previous)
        except (RunDirConflict, DataError) as exc:  # other data, or none to compare with: keep the finished run
            _keep_finished_run(run_dir, previous, exc)
            raise
        finally:  # Hydra rewrote .hydra/ for this launch (other neutral keys, say): the run keeps its own record
            restore_hydra_record(run_dir, previous)

    summary: dict[str, Any] = {
        "status": "running", "error": None, "started_at": _now(), "finished_at": None,
        "run_dir": str(run_dir), "seed": OmegaConf.select(cfg, "seed", default=None),
        "choices": choices or {}, "overrides": list(overrides) if overrides is not None else None, **provenance(),
        "startup_s": None if startup is None else round(startup, 3),
    }
    launched_by = os.environ.get(LAUNCH_COMMAND_ENV)
    if launched_by and launched_by != summary["command"]:
        summary.update(command=launched_by, process_command=summary["command"])
    opened: list[MetricSinks] = []
    try:
        validate(cfg)
        config = to_container(cfg)
        with claim_computation(run_dir, config, cfg.data.dir) if cfg.trainer.reuse_identical else nullcontext():
            if cfg.trainer.reuse_identical:
                source = find_identical_run(run_dir, config, cfg.data.dir, lambda: run_data_fingerprint(cfg))
                if source is not None:
                    return adopt_results(source, run_dir, summary | {"config": config})
            try:
                return _train(cfg, run_dir, config, summary, opened, entered)
            except (torch.OutOfMemoryError, MemoryError) as exc:
                raise _out_of_memory(exc, summary.get("device")) from exc
    except BaseException as exc:
        with signals_held():  # a second stop signal (die_with_parent's may come twice) must not cut the record short
            _record_ending(run_dir, previous, summary, exc)
        raise
    finally:
        for sinks in opened:
            sinks.close()


def _record_ending(run_dir: Path, previous: dict[str, Any] | None, summary: dict[str, Any],
                   exc: BaseException) -> None:
    """Record in summary.json how the attempt that raised `exc` ended: interrupted, or failed with its error (call it
    while handling `exc`: the traceback is recorded too). A bad value or data folder that stops the job before
    training keeps the run dir's run (trainer.force too); a stop after the completion was recorded adds nothing."""
    if isinstance(exc, (ConfigError, DataError)) and previous is not None:
        _keep_finished_run(run_dir, previous, exc)
        return
    if _completed_on_disk(run_dir, summary):
        return
    if isinstance(exc, KeyboardInterrupt):
        summary.update(status=INTERRUPTED, error=INTERRUPTED_ERROR.format(interrupt_cause(exc)), finished_at=_now())
    else:
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(limit=20), finished_at=_now())
    try:
        write_summary(run_dir, summary)
    except FmnistError:
        log.error("could not record the failure in %s", run_dir / "summary.json")


def _completed_on_disk(run_dir: Path, summary: dict[str, Any]) -> bool:
    """Whether `run_dir`'s summary.json already records this attempt (`summary`) as completed: a stop (Ctrl-C,
    SIGTERM) that lands while the loggers close must not rewrite the finished run as interrupted."""
    if summary.get("status") != "completed":
        return False
    recorded = read_summary(run_dir) or {}
    return recorded.get("status") == "completed" and all(
        recorded.get(key) == summary[key] for key in ("started_at", "finished_at"))


def _keep_finished_run(run_dir: Path, previous: dict[str, Any], exc: BaseException) -> None:
    """A job refused before training: put the run dir's own .hydra/ record back, and note the refusal for the
    sweep's report (its summary.json, untouched, still says how that run ended)."""
    restore_hydra_record(run_dir, previous)
    note_refusal(run_dir, f"{type(exc).__name__}: {exc}")


def completed_run(cfg: DictConfig, run_dir: Path) -> dict[str, Any] | None:
    """The summary of the completed run in `run_dir` when train() would return it without training: it is a run
    of `cfg` (up to NEUTRAL_KEYS) and trainer.force is off. None whenever train() would do anything else (train,
    resume, refuse, raise again), or `cfg` cannot be resolved. Launchers use it to record such a job without
    starting a process for it."""
    previous = read_summary(run_dir)
    if not previous or previous.get("status") != "completed" or OmegaConf.select(cfg, "trainer.force", default=False):
        return None
    try:
        config = to_container(cfg)
    except Exception:
        return None
    if _changed_keys(previous, config) or other_data(previous, cfg, build=False):
        return None
    return previous


def _changed_keys(previous: dict[str, Any], config: dict[str, Any] | None) -> list[str]:
    """The keys whose values differ between a finished run's recorded config and `config`, neutral keys aside."""
    return differing_keys(previous.get("config") or {}, config or {}, NEUTRAL_KEYS)


def _skip_finished(cfg: DictConfig, run_dir: Path, previous: dict[str, Any]) -> dict[str, Any]:
    """Return a completed run's summary instead of training it again; raise TrainingDiverged again for a run
    that diverged, and a ConfigError when the run dir was made by another configuration or trained on other data
    (data_identity.other_data: data.dir may name another copy of the same data). Nothing in the run dir changes."""
    try:
        config = to_container(cfg)
    except Exception:  # an unresolvable override: the comparison cannot be made; the skip stands
        config = None
    changed = _changed_keys(previous, config)
    if changed:
        raise RunDirConflict(
            f"{run_dir} holds a finished run of another configuration "
            f"({describe_differences(previous['config'], config or {}, changed)}); use a new sweep dir, or "
            f"trainer.force=true to overwrite it"
        )
    if config is not None and (difference := other_data(previous, cfg)):
        raise RunDirConflict(f"{run_dir} holds a finished run {difference}; use a new sweep dir, or "
                             f"trainer.force=true to overwrite it")
    if previous["status"] != "completed":  # raised before train()'s try: summary.json stays as it is
        raise TrainingDiverged(f"{run_dir} diverged before ({previous.get('error')}); not trained again — "
                               f"set trainer.force=true to rerun")
    log.info("run %s already completed (test_acc %s); skipping — set trainer.force=true to rerun",
             run_dir, previous.get("test_acc"))
    return previous


def _stops_early(t: DictConfig, best: dict[str, Any], epoch: int, validated: bool) -> bool:
    """Whether early stopping ends the run after `epoch`: trainer.early_stop_patience epochs without a new best
    (derived from the best epoch, so a resumed run stops where it would have)."""
    return bool(t.early_stop_patience and validated and epoch - (best["epoch"] or 0) >= t.early_stop_patience)


def _out_of_memory(exc: BaseException, device: str | None) -> OutOfMemory:
    """A one-line OutOfMemory error with what to do; frees what the allocator caches."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    first = first_line(exc)[:200]
    return OutOfMemory(
        f"out of memory on {device or 'the device'} ({first}); lower trainer.batch_size or "
        f"trainer.eval_batch_size, use a smaller model, or run fewer jobs per GPU (hydra.launcher.jobs_per_gpu)"
    )


def _capture(model: torch.nn.Module, t: DictConfig, n_train: int, image_shape: tuple[int, ...], precision: str,
             channels_last: bool, summary: dict[str, Any]) -> torch.nn.Module:
    """The CUDA-graph training model (`trainer.cuda_graphs`); under `auto` a failed capture falls back to
    the eager model with a warning (recorded in summary.json `cuda_graphs`), under `true` it is an error."""
    from fmnist.train.graphs import capture_training_step

    tic = time.perf_counter()
    try:
        graphed = capture_training_step(model, min(t.batch_size, n_train), image_shape, precision, channels_last)
    except (RuntimeError, AssertionError) as exc:
        if t.cuda_graphs is True:
            raise
        first = first_line(exc)[:200]
        log.warning("CUDA-graph capture failed (%s); training eagerly", first)
        summary["cuda_graphs"] = f"failed: {first}"
        return model
    summary.update(cuda_graphs="captured", graph_capture_s=round(time.perf_counter() - tic, 3))
    log.info("captured the training step as CUDA graphs in %.1fs", summary["graph_capture_s"])
    return graphed


def _train(cfg: DictConfig, run_dir: Path, config: dict[str, Any], summary: dict[str, Any],
           opened: list[MetricSinks], entered: float) -> dict[str, Any]:
    """Train, test and record the run; `entered` is perf_counter() when train() began with it (phase times)."""
    t = cfg.trainer
    seed_everything(cfg.seed, deterministic=t.deterministic)
    device = resolve_device(cfg.device)
    precision = resolve_precision(t.precision, device)
    channels_last = resolve_channels_last(t.channels_last, device)
    if t.cuda_graphs is True and device.type != "cuda":
        raise ConfigError(f"trainer.cuda_graphs=true needs a CUDA device; this run is on {device} "
                          f"(set trainer.cuda_graphs=false)")
    use_graphs = device.type == "cuda" and not t.compile and t.cuda_graphs in (True, "auto")
    summary.update(device=str(device), device_name=device_name(device), precision=precision,
                   config=config)

    model = build_model(cfg)  # before the data: a bad model or augment value fails at once
    check_logits(model)
    if t.track_dead and not activation_modules(model):
        raise ConfigError(f"trainer.track_dead=true: {type(model).__name__} has no activation module to measure "
                          f"(activation={cfg.activation.get('_target_')}); set trainer.track_dead=false")
    augment = safe_instantiate(cfg.augment, "augment")
    data_dir = ensure_resplit(cfg.data.dir, auto_prepare=cfg.data.auto_prepare, mode=cfg.data.prepare_mode)
    splits: DataSplits = load_splits(data_dir, device, cfg.data.val_fraction, cfg.data.subset,
                                     cfg.data.split_seed, cfg.data.cache_dir)
    summary.update(data_dir=str(Path(data_dir).resolve()), data_fingerprint=splits.fingerprint,
                   n_train=len(splits.train), n_val=len(splits.val) if splits.val else 0, n_test=len(splits.test))

    summary.update(model_summary(model))
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    check_compile(t.compile, device)
    # torch.compile only the training forward/backward; evaluation, hooks and state dicts use `model`.
    # Epoch 1's epoch_time_s includes the compilation.
    train_model = torch.compile(model, mode=None if t.compile == "default" else t.compile) if t.compile else model
    fused = (device.type == "cuda") if t.fused == "auto" else bool(t.fused)
    optimizer = build_optimizer(safe_instantiate(cfg.optimizer, "optimizer"), model,
                                exempt_norm_and_bias=t.no_decay_norm_bias, fused=fused)
    steps = steps_per_epoch(len(splits.train), t.batch_size, t.drop_last)
    if warning := oversized_batch(len(splits.train), t.batch_size):
        log.warning(warning)
    scheduler = call_factory(safe_instantiate(cfg.scheduler, "scheduler"), "scheduler", optimizer,
                             epochs=t.epochs, steps_per_epoch=steps)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def amp():
        return autocast(device, precision)

    # With trainer.ema_decay the averaged weights are what is validated, checkpointed as best and tested.
    ema = ModelEMA(model, t.ema_decay) if t.ema_decay else None
    eval_model = ema.shadow if ema is not None else model
    rows: list[dict[str, Any]] = []
    best = {"val_acc": -1.0, "epoch": None}
    best_weights: dict[str, Any] | None = None  # the best epoch's weights until the next checkpoint writes them
    start_epoch = 0
    last_path = ckpt.checkpoint_path(run_dir, ckpt.LAST)
    best_path = ckpt.checkpoint_path(run_dir, ckpt.BEST)
    if t.force:
        ckpt.discard_resume_state(run_dir)
    state = ckpt.load_resume_state(run_dir)
    if state is not None:
        changed = differing_keys(state.get("resume_key") or {}, config, NEUTRAL_KEYS)
        if changed or not state.get("resume_key"):
            raise RunDirConflict(
                f"{state['path']} belongs to a different configuration "
                f"({describe_differences(state.get('resume_key') or {}, config, changed) or 'none recorded'}); "
                f"use a new run dir, or trainer.force=true to discard it and start again"
            )
        # a checkpoint from before it recorded its data: the run's summary.json says what the run read
        if difference := other_data(state if state.get("data_fingerprint") else read_summary(run_dir) or {}, cfg,
                                    splits.fingerprint):
            raise RunDirConflict(f"{state['path']} was {difference}; use a new run dir, or trainer.force=true to "
                                 f"discard it and start again")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if ema is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        rows, best, start_epoch = list(state["metrics"]), dict(state["best"]), int(state["epoch"])
        ckpt.set_aside_stale_best(run_dir, best["epoch"])
        summary["resumed_from_epoch"] = start_epoch
        log.info("resuming %s from epoch %d (%s)", run_dir, start_epoch, Path(state["path"]).name)
        del state
    elif (run_dir / METRICS_FILE).exists() and not t.force:  # forced: starting again is what was asked for
        log.warning("%s holds %s but no checkpoint: training starts again from epoch 1",
                    run_dir, METRICS_FILE)

    if use_graphs:  # after the resume load; the graphs read the parameters in place
        train_model = _capture(model, t, len(splits.train), tuple(splits.train.images.shape[1:]), precision,
                               channels_last, summary)
    sinks = MetricSinks(cfg.logger, run_dir, config, start_epoch)
    opened.append(sinks)
    loop_start = time.perf_counter()
    summary["setup_s"] = round(loop_start - entered, 3)
    write_summary(run_dir, summary)
    show_progress = progress_enabled(t.progress)
    probe = _dead_probe(splits, t.track_dead_images, channels_last) if t.track_dead else None
    # a run checkpointed where it stopped early (interrupted before its test) does not train on
    last_epoch = start_epoch if _stops_early(t, best, start_epoch, splits.val is not None) else t.epochs
    for epoch in range(start_epoch + 1, last_epoch + 1):
        lr = optimizer.param_groups[0]["lr"]
        tic = time.perf_counter()
        batches = train_batches(splits.train, t.batch_size, augment, t.drop_last, channels_last, epoch)
        if show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=steps, desc=f"epoch {epoch}/{t.epochs}", leave=False)
        stats = train_one_epoch(train_model, batches, optimizer, scheduler, amp, t.label_smoothing, scaler, t.grad_clip,
                                after_step=(lambda: ema.step(model)) if ema is not None else None,
                                mark_cudagraph_steps=t.compile in CUDAGRAPH_COMPILE_MODES)
        train_s = time.perf_counter() - tic
        if not stats.finite:
            raise TrainingDiverged(
                f"training loss became NaN/inf in epoch {epoch} (lr {lr:.4g}); lower optimizer.lr or "
                f"set trainer.grad_clip"
            )
        val = evaluate(eval_model, splits.val, t.eval_batch_size, amp, channels_last) if splits.val else None
        row = {
            "epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_acc": stats.acc,
            "val_loss": val.loss if val else None, "val_acc": val.acc if val else None,
            "epoch_time_s": time.perf_counter() - tic, "images_per_s": stats.n / max(train_s, 1e-9),
        }
        if probe is not None:  # outside the timed part of the epoch
            dead = dead_unit_stats(eval_model, probe, t.eval_batch_size)
            row.update(dead_fraction=dead.dead_fraction, zero_fraction=dead.zero_fraction)
        rows.append(row)
        log.info(format_epoch(row, t.epochs))
        write_metrics(run_dir, rows)
        sinks.log_epoch(row)
        if val is not None and val.acc > best["val_acc"]:
            best = {"val_acc": val.acc, "epoch": epoch}
            best_weights = {"model": _state_dict(eval_model), "epoch": epoch, "val_acc": val.acc}
        stop = _stops_early(t, best, epoch, val is not None)
        if epoch % t.checkpoint_every == 0 or epoch == t.epochs or stop:
            if best_weights is not None:  # written with last.pt, so best.pt always matches last.pt's best
                ckpt.save_checkpoint(best_path, best_weights)
                best_weights = None
            ckpt.save_checkpoint(last_path, {
                "model": _state_dict(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "ema": ema.state_dict() if ema is not None else None,
                "rng": rng_state(), "epoch": epoch, "metrics": rows, "best": best,
                "resume_key": config,  # compared with differing_keys(..., NEUTRAL_KEYS) on resume
                "data_fingerprint": splits.fingerprint, "data_dir": summary["data_dir"],  # and these by other_data
            }, keep_previous=True)
        if stop:
            log.info("early stop: no val_acc improvement for %d epochs", epoch - best["epoch"])
            break

    finish_start = time.perf_counter()
    summary["epochs_s"] = round(finish_start - loop_start, 3)
    if t.test_on == "best" and best["epoch"] is not None and best_path.exists():
        eval_model.load_state_dict(ckpt.load_checkpoint(best_path)["model"])
        tested = f"best (epoch {best['epoch']})"
    else:
        tested = "last"
    test: EvalResult = evaluate(eval_model, splits.test, t.eval_batch_size, amp, channels_last, t.tta_flip)
    _write_predictions(run_dir / PREDICTIONS_FILE, splits.test.ids, splits.test.labels, test.probs)
    if splits.val is not None and best_path.exists() and activation_modules(model):
        if tested == "last":
            eval_model.load_state_dict(ckpt.load_checkpoint(best_path)["model"])
        val_images = _dead_probe(splits, len(splits.val), channels_last)  # the whole validation split
        dead_unit_stats(eval_model, val_images, t.eval_batch_size).save(run_dir)
    else:  # none measured: a file left by the run this one replaced (trainer.force) is not this run's
        (run_dir / DEAD_UNITS_FILE).unlink(missing_ok=True)

    train_time = sum(r["epoch_time_s"] for r in rows)
    summary.update(
        status="completed", finished_at=_now(), epochs_completed=len(rows),
        best_val_acc=best["val_acc"] if best["epoch"] is not None else None, best_epoch=best["epoch"],
        final_val_acc=rows[-1]["val_acc"], final_train_loss=rows[-1]["train_loss"],
        test_acc=test.acc, test_loss=test.loss, tested_checkpoint=tested,
        train_time_s=train_time,
        images_per_s=sum(r["images_per_s"] for r in rows) / len(rows),
        class_names=list(CLASS_NAMES), finish_s=round(time.perf_counter() - finish_start, 3),
    )
    if summary["test_acc"] is not None and not math.isfinite(summary["test_acc"]):
        summary["test_acc"] = None
    write_summary(run_dir, summary)
    ckpt.drop_previous(run_dir)
    sinks.log_final({k: summary[k] for k in ("best_val_acc", "test_acc", "test_loss", "train_time_s")
                     if summary.get(k) is not None})
    best_val = (f"best val_acc {_fmt(summary['best_val_acc'])} (epoch {summary['best_epoch']})"
                if summary["best_val_acc"] is not None else "no validation split")
    log.info("done: %s, test_acc %s [%s weights], %.1fs training (this attempt: %.1fs setup, %.1fs epochs, "
             "%.1fs test and files)", best_val, _fmt(summary["test_acc"]), tested, train_time, summary["setup_s"],
             summary["epochs_s"], summary["finish_s"])
    return summary
