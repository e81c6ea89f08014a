"""Run dirs below one or more sweep dirs -> one tidy table (one row per run) and the per-epoch table.

A run dir is any folder holding ``summary.json`` or ``.hydra/config.yaml`` (a run that crashed before
its summary was written), whatever the launcher or nesting. Nothing here writes to a run dir.

Run status: ``completed`` / ``failed`` / ``running`` / ``interrupted`` (as summary.json says), ``not_started`` (no
summary.json), ``unreadable`` (a summary.json that is not a JSON object with a status) or ``duplicate`` (a
completed run of a preset, cell and seed that an earlier run dir already holds: a sweep launched twice into two
folders, both analysed; counted once, its seeds would fake agreement). Only completed runs
count in the statistics; every other run is listed by :func:`problems`. Damaged data of a run (a summary.json
number that is not one, an incomplete or missing metrics.csv, an unreadable .hydra/overrides.yaml) is read as
missing, logged as a warning naming the run and listed in its ``issues`` column; so are, once the analysis has read
them, a damaged predictions_test.csv (:meth:`Collection.leave_out_predictions`) or dead_units.json.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from fmnist.analysis.errors import AnalysisError
from fmnist.config import differing_keys
from fmnist.analysis.grid import job_number, missing_jobs
from fmnist.train.phases import PHASE_KEYS
from fmnist.train.run_dir import METRICS_FILE, NEUTRAL_KEYS, PREDICTIONS_FILE, SUMMARY_FILE, is_busy, read_summary

log = logging.getLogger(__name__)

HYDRA_DIR = ".hydra"
#: Folders inside a sweep that never hold run dirs (not descended into).
_SKIP_DIRS = frozenset({HYDRA_DIR, "checkpoints", "tensorboard", ".submitit", "wandb", "__pycache__"})
#: summary.json fields copied into the run table.
SUMMARY_FIELDS: tuple[str, ...] = (
    "best_val_acc", "best_epoch", "test_acc", "test_loss", "params", "flops", "train_time_s", "images_per_s",
    "epochs_completed", "final_val_acc", "n_train", "n_val", "n_test", "device_name", "torch_version",
    "git_commit", "data_dir", "data_fingerprint", "error", "reused_from", "precision", "cuda_graphs",
    "resumed_from_epoch", "started_at", "finished_at", "hostname", *PHASE_KEYS,
)
#: Those of them that hold numbers (any other value there is an issue of the run and read as missing).
NUMERIC_FIELDS: frozenset[str] = frozenset({
    "best_val_acc", "best_epoch", "test_acc", "test_loss", "params", "flops", "train_time_s", "images_per_s",
    "epochs_completed", "final_val_acc", "n_train", "n_val", "n_test", "resumed_from_epoch", *PHASE_KEYS,
})
#: Resolved config values every row carries (the swept ones among them are also parameters).
CONFIG_FIELDS: tuple[str, ...] = ("optimizer.lr", "trainer.epochs", "trainer.batch_size", "trainer.drop_last",
                                  "data.dir")
#: Read off each run's metrics.csv (the evidence the discussion cites): the last epoch's training loss and
#: accuracy (measured during training: augmented batches, dropout active), the generalisation gap of the last
#: epoch (training minus validation accuracy), the validation accuracy after the first epoch (speed of
#: convergence) and the first epoch's training loss (a start above chance-level loss: an unstable start).
CURVE_FIELDS: tuple[str, ...] = ("train_loss_final", "train_acc_final", "gap_final", "val_acc_epoch1",
                                 "train_loss_epoch1")
COMPLETED = "completed"
DUPLICATE = "duplicate"
UNFINISHED = ("running", "interrupted", "not_started")
NOT_SWEPT = frozenset({"seed", "name", "hydra.run.dir", "hydra.sweep.dir", *NEUTRAL_KEYS})


@dataclass
class Collection:
    """Everything read from the sweep dirs."""

    runs: pd.DataFrame                 # one row per run dir
    epochs: pd.DataFrame               # one row per (run, epoch): metrics.csv with a run_dir column
    swept: dict[str, list[str]]        # preset -> its swept parameter columns (seed excluded)
    sweep_dirs: list[Path] = field(default_factory=list)
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)  # jobs of a sweep without a run dir (grid.py)
    #: run dirs whose damaged predictions_test.csv has been named (leave_out_predictions): read no more
    predictions_left_out: set[str] = field(default_factory=set)

    @property
    def completed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == COMPLETED]

    def note_issue(self, run_dir: str, issue: str) -> None:
        """Add `issue` to the issues column of the run in `run_dir` (a problem found after collecting: its test
        predictions or dead-unit statistics)."""
        rows = self.runs["run_dir"] == str(run_dir)
        for i in self.runs.index[rows]:
            before = self.runs.at[i, "issues"]
            self.runs.at[i, "issues"] = issue if not isinstance(before, str) or not before else f"{before}; {issue}"

    def leave_out_predictions(self, run_dir: str, problem: str, left_out_of: str) -> None:
        """Name the damaged predictions_test.csv of the run in `run_dir` (`problem`: what is wrong with it, e.g. "has
        30 rows, but ...") in one warning and in the run's issues, once, whichever result finds it first; every
        result that reads the file skips a run in predictions_left_out (a missing file collect names itself)."""
        if str(run_dir) in self.predictions_left_out:
            return
        self.predictions_left_out.add(str(run_dir))
        log.warning("%s %s: left out of %s", Path(run_dir) / PREDICTIONS_FILE, problem, left_out_of)
        self.note_issue(run_dir, f"{PREDICTIONS_FILE} {problem}: left out of {left_out_of}")

    def problems(self) -> pd.DataFrame:
        """Failed, unfinished and unreadable runs, and the jobs that left no run dir (never silently dropped)."""
        cols = ["preset", "run", "status", "error", "run_dir"]
        frames = [self.runs.loc[self.runs["status"] != COMPLETED, cols]]
        frames += [self.missing[cols].astype(self.runs[cols].dtypes.to_dict())] if len(self.missing) else []
        return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------ finding runs
def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Every run dir at or below `sweep_dir` (a run dir's own subfolders are not searched). Symbolic links to
    folders are followed (a sweep gathered from links to run dirs), each real folder once."""
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(sweep_dir, followlinks=True):
        here = Path(dirpath)
        real = os.path.realpath(here)
        if real in seen:  # a link back up the tree, or a second link to the same folder
            dirnames.clear()
            continue
        seen.add(real)
        if SUMMARY_FILE in filenames or (here / HYDRA_DIR / "config.yaml").is_file():
            found.append(here)
            dirnames.clear()
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)  # sorted: the same folders found first
    return sorted(found, key=_run_order)


def _run_order(path: Path) -> tuple:
    """Hydra job number first (``12_...`` after ``2_...``), then the name."""
    number = job_number(path.name)
    return (str(path.parent), number is None, number or 0, path.name)


def sweep_paths(sweep_dirs: str | Path | Iterable[str | Path]) -> list[Path]:
    """The sweep dirs as paths; an AnalysisError when there is none, or one is empty or not a directory."""
    items = [sweep_dirs] if isinstance(sweep_dirs, (str, Path)) else list(sweep_dirs or [])
    if not items or any(not str(p).strip() for p in items):  # Path("") would be the working directory
        raise AnalysisError("no sweep_dir given (or an empty one): python analyze.py "
                            "sweep_dir=multirun/<date>/<time>_<name>")
    paths = [Path(str(p)).expanduser() for p in items]
    for p in paths:
        if not p.exists():
            raise AnalysisError(f"sweep_dir {p} does not exist")
        if not p.is_dir():
            raise AnalysisError(f"sweep_dir {p} is not a directory")
    return paths


# ------------------------------------------------------------------------------------------ reading one run
def _parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for line in lines:
        try:
            ov = parser.parse_override(str(line))
        except Exception:  # an override Hydra accepted but we cannot re-parse: keep it as text
            key, _, value = str(line).lstrip("+~").partition("=")
            out[key] = value
            continue
        if ov.is_delete() or ov.is_sweep_override():
            continue
        out[ov.key_or_group] = ov.value()
    return out


def _load_yaml(path: Path) -> Any:
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception:  # a damaged .hydra file is reported through the missing values, not fatal
        return None


def _config_of(run_dir: Path, summary: dict[str, Any] | None) -> dict[str, Any]:
    if summary and isinstance(summary.get("config"), dict):
        return summary["config"]
    cfg = _load_yaml(run_dir / HYDRA_DIR / "config.yaml")
    return cfg if isinstance(cfg, dict) else {}


def run_config(run_dir: Path) -> dict[str, Any]:
    """A run's config: summary.json's resolved copy, else .hydra/config.yaml ({} when neither is readable)."""
    return _config_of(Path(run_dir), read_summary(run_dir))


def run_target(run_dir: Path, group: str) -> str | None:
    """The ``_target_`` of a run's `group` object in its config (torch.nn.Mish), or None."""
    target = select(run_config(run_dir), f"{group}._target_")
    return None if target is None else str(target)


def options_of_runs(runs: pd.DataFrame, group: str, known: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Option name -> config of the `group` options the completed `runs` chose that `known` (conf/<group>/) lacks:
    a user's own option, from --config-dir or hydra.searchpath, read from the first such run's config."""
    found: dict[str, dict[str, Any]] = {}
    if group not in runs or "run_dir" not in runs:
        return found
    skip = set(known)
    for _, run in runs[runs["status"] == COMPLETED].iterrows():
        choice = run.get(group)
        if isinstance(choice, str) and choice not in skip and choice not in found:
            node = run_config(Path(run["run_dir"])).get(group)
            if isinstance(node, dict) and "_target_" in node:
                found[choice] = node
    return found


def _choices_of(run_dir: Path, summary: dict[str, Any] | None, issues: list[str]) -> dict[str, str]:
    """The config group options of a run: summary.json's `choices`, else .hydra/hydra.yaml's."""
    if summary and summary.get("choices"):
        if isinstance(summary["choices"], dict):
            return {str(k): str(v) for k, v in summary["choices"].items()}
        issues.append(f"summary.json's choices is {type(summary['choices']).__name__}, not a mapping: read from "
                      ".hydra/hydra.yaml")
    hydra_cfg = _load_yaml(run_dir / HYDRA_DIR / "hydra.yaml") or {}
    choices = (hydra_cfg.get("hydra", {}).get("runtime", {}) or {}).get("choices", {}) or {}
    return {str(k): str(v) for k, v in choices.items() if not str(k).startswith("hydra/") and v is not None}


def select(config: dict[str, Any], dotted: str) -> Any:
    """`config["a"]["b"]` for "a.b", or None."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _status(run_dir: Path, summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "unreadable" if (run_dir / SUMMARY_FILE).exists() else "not_started"
    status = summary.get("status")
    return status if isinstance(status, str) and status.strip() else "unreadable"


def _number(value: Any, name: str, issues: list[str]) -> float | int | None:
    """`value` when it is a finite number, else None (and an issue naming `name`, unless it is None)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
        return value
    issues.append(f"summary.json's {name} is {value!r}, not a number")
    return None


def _summary_fields(summary: dict[str, Any] | None, issues: list[str]) -> dict[str, Any]:
    summary = summary or {}
    return {key: _number(summary.get(key), key, issues) if key in NUMERIC_FIELDS else summary.get(key)
            for key in SUMMARY_FIELDS}


def _read_metrics(run_dir: Path, issues: list[str], completed: bool,
                  epochs: float | int | None) -> pd.DataFrame | None:
    """metrics.csv with every value a number (NaN where it is not one or missing); None without epoch rows.
    What is wrong with it goes to `issues` (a missing file only for a completed run)."""
    path = run_dir / METRICS_FILE
    try:
        frame = pd.read_csv(path) if path.is_file() and path.stat().st_size else None
    except (ValueError, OSError) as exc:
        issues.append(f"metrics.csv is unreadable ({type(exc).__name__}: {str(exc).strip()[:120]})")
        return None
    if frame is None or frame.empty:
        if completed:
            issues.append("metrics.csv " + ("is missing or empty" if frame is None else "has no epoch rows"))
        return None
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    text = [str(c) for c in frame.columns if numeric[c].isna().all() and frame[c].notna().any()]
    if text:  # a column of words (one's own notes): not a damaged row each
        issues.append(f"metrics.csv column(s) {', '.join(text)} hold no numbers: ignored")
        numeric, frame = numeric.drop(columns=text), frame.drop(columns=text)
    damaged = ((frame.notna() & numeric.isna()) | (numeric.isna() & numeric.notna().any())).any(axis=1)
    if damaged.any():
        issues.append(f"metrics.csv has {int(damaged.sum())} incomplete or non-numeric row(s) (a truncated or "
                      f"damaged file): read as missing")
    if completed and isinstance(epochs, int) and len(frame) < epochs:
        issues.append(f"metrics.csv has {len(frame)} epoch row(s), summary.json says {epochs} epochs completed")
    return numeric


def _read_overrides(run_dir: Path, summary: dict[str, Any] | None,
                    issues: list[str]) -> tuple[list[Any] | None, dict[str, Any]]:
    """.hydra/overrides.yaml as its lines and parsed, else summary.json's copy of them (`overrides`: a run dir
    copied without its hidden .hydra/); (None, {}) when neither is readable (an issue)."""
    lines = _load_yaml(run_dir / HYDRA_DIR / "overrides.yaml")
    if not isinstance(lines, list):
        saved = (summary or {}).get("overrides")
        if isinstance(saved, list) and all(isinstance(line, str) for line in saved):
            return saved, _parse_overrides(saved)
        issues.append(".hydra/overrides.yaml is missing or unreadable: its parameters are read from its config")
        return None, {}
    return lines, _parse_overrides(lines)


@dataclass
class _Run:
    row: dict[str, Any]
    overrides: dict[str, Any]
    config: dict[str, Any]
    choices: dict[str, str]
    metrics: pd.DataFrame | None
    overrides_read: bool = True  # False: .hydra/overrides.yaml was unreadable; `overrides` come from the config


_STATUS_ERRORS = {
    "not_started": "no summary.json: the run never started or crashed before its first epoch",
    "running": "summary.json says running: unfinished, or killed without a chance to record it",
    "unreadable": "summary.json is unreadable (not a JSON object with a status)",
}
#: The error of a `running` run whose lock another process holds: it is training now, not killed.
TRAINING_NOW = "training now: another process holds its .lock"


def _read_run(run_dir: Path, sweep_dir: Path) -> _Run:
    summary = read_summary(run_dir)  # None when missing, not JSON or not an object
    config = _config_of(run_dir, summary)
    issues: list[str] = []
    overrides_list, overrides = _read_overrides(run_dir, summary, issues)
    rel = run_dir.relative_to(sweep_dir).as_posix()
    status = _status(run_dir, summary)
    row: dict[str, Any] = {
        "preset": str(config.get("name") or "unnamed"),
        "run": run_dir.name if rel == "." else rel,
        "status": status,
        "seed": (summary or {}).get("seed", config.get("seed")),
        "sweep_dir": str(sweep_dir),
        "run_dir": str(run_dir.resolve()),
        "overrides": " ".join(str(x) for x in overrides_list or []),
    }
    choices = _choices_of(run_dir, summary, issues)
    row.update(choices)
    row.update({key: select(config, key) for key in CONFIG_FIELDS})
    row.update(_summary_fields(summary, issues))
    metrics = _read_metrics(run_dir, issues, status == COMPLETED, row["epochs_completed"])
    if status == COMPLETED and not (run_dir / PREDICTIONS_FILE).is_file():
        issues.append("predictions_test.csv is missing")
    row.update(curve_fields(metrics))
    if status in _STATUS_ERRORS and not (status == "running" and row["error"]):
        row["error"] = TRAINING_NOW if status == "running" and is_busy(run_dir) else _STATUS_ERRORS[status]
    row["issues"] = "; ".join(issues) or None
    if issues:
        log.warning("run %s (%s): %s", row["run"], row["preset"], row["issues"])
    return _Run(row, overrides, config, choices, metrics, overrides_list is not None)


def curve_fields(metrics: pd.DataFrame | None) -> dict[str, float | None]:
    """CURVE_FIELDS of one run's metrics.csv (None where the column or the epoch is missing)."""
    out: dict[str, float | None] = dict.fromkeys(CURVE_FIELDS)
    if metrics is None or metrics.empty:
        return out
    if "epoch" in metrics:
        metrics = metrics.sort_values("epoch", kind="stable")

    def value(row: int, column: str) -> float | None:
        v = pd.to_numeric(metrics[column], errors="coerce").iloc[row] if column in metrics else math.nan
        return None if pd.isna(v) else float(v)

    out.update(train_loss_final=value(-1, "train_loss"), train_acc_final=value(-1, "train_acc"),
               val_acc_epoch1=value(0, "val_acc"), train_loss_epoch1=value(0, "train_loss"))
    train, val = out["train_acc_final"], value(-1, "val_acc")
    out["gap_final"] = None if train is None or val is None else train - val
    return out


# ------------------------------------------------------------------------------------------ swept parameters
def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _not_swept(key: str) -> bool:
    """Seed, paths, hydra's keys and the neutral ones, a key below them included (logger.tensorboard=false)."""
    return key.startswith("hydra") or any(key == k or key.startswith(f"{k}.") for k in NOT_SWEPT)


def swept_keys(overrides: Sequence[dict[str, Any]], partial: Sequence[bool] | None = None) -> list[str]:
    """Keys whose value differs between runs (or that only some runs set), seed and paths excluded. A `partial`
    run's overrides were rebuilt from its config: a key it lacks is unknown there, not unset."""
    partial = partial or [False] * len(overrides)
    keys: list[str] = []
    for ov in overrides:
        keys += [k for k in ov if k not in keys]
    swept = []
    for key in keys:
        if _not_swept(key):
            continue
        present = [ov[key] for ov in overrides if key in ov]
        unset = any(key not in ov for ov, part in zip(overrides, partial) if not part)
        if unset or any(not same_value(present[0], v) for v in present[1:]):
            swept.append(key)
    return swept


def _preset_swept(preset: str, runs: list[_Run]) -> list[str]:
    """The swept parameters of `preset`'s runs; a run whose overrides.yaml is unreadable takes part with the
    values its config holds for the keys the other runs override."""
    keys = list(dict.fromkeys(k for r in runs if r.overrides_read for k in r.overrides))
    if not any(r.overrides_read for r in runs):
        log.warning("preset %s: no run has a readable .hydra/overrides.yaml; its runs form one cell", preset)
    for r in runs:
        if not r.overrides_read:
            r.overrides = {k: v for k in keys if (v := _param_value(r, k)) is not None}
    swept = swept_keys([r.overrides for r in runs], [not r.overrides_read for r in runs])
    return swept + _config_differences(preset, runs, swept)


def _config_differences(preset: str, runs: list[_Run], swept: list[str]) -> list[str]:
    """Config keys (seed, paths and neutral keys aside) whose values differ between runs that the swept overrides
    put in one cell, e.g. the same preset run in two sweeps before and after its epochs changed: they become swept
    parameters too, so that such runs are never pooled into one cell (a warning names them)."""
    first: dict[str, _Run] = {}
    found: list[str] = []
    for r in runs:
        other = first.setdefault(cell_label({k: _param_value(r, k) for k in swept}), r)
        found += [k for k in differing_keys(other.config, r.config, NOT_SWEPT) if k not in found and k not in swept]
    if found:
        log.warning("preset %s: runs with the same swept overrides differ in %s; these keys are compared as swept "
                    "parameters", preset, ", ".join(found))
    return found


def _param_value(run: _Run, key: str) -> Any:
    if key in run.overrides:
        return run.overrides[key]
    value = select(run.config, key)
    if value is not None and not isinstance(value, dict):  # a list (milestones, betas) is a value; a dict a group
        return value
    return run.choices.get(key)


def cell_label(values: dict[str, Any]) -> str:
    """``key=value, key=value`` (``all runs`` for a preset that sweeps only seeds)."""
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in values.items()) or "all runs"


_KEY = re.compile(r"(?:^|(?<=, ))((?:[A-Za-z_]\w*\.)+)([A-Za-z_]\w*)(?==)")


def short_labels(cells: Sequence[str]) -> list[str]:
    """Cell labels with each dotted key cut to its last part (``optimizer.weight_decay=0`` -> ``weight_decay=0``),
    except where two keys of these cells would then read the same."""
    owners: dict[str, set[str]] = {}
    for cell in cells:
        for prefix, last in _KEY.findall(cell):
            owners.setdefault(last, set()).add(prefix)
    return [_KEY.sub(lambda m: m.group(2) if len(owners[m.group(2)]) == 1 else m.group(0), c) for c in cells]


def short_keys(keys: Sequence[str]) -> list[str]:
    """Swept keys cut like :func:`short_labels` (``optimizer.weight_decay`` -> ``weight_decay``)."""
    return [label[:-1] for label in short_labels([f"{k}=" for k in keys])]


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tidy(values: pd.Series) -> pd.Series:
    """One dtype per column (parquet needs it): bool, number or text; missing values (None, NaN) stay missing."""
    values = values.astype(object).where(values.notna(), None)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return values.astype("boolean")
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return values.astype("Int64")
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return values.astype("float64")
    return values.map(lambda v: None if v is None else str(v)).astype("string")


def _mark_duplicates(runs: list[_Run]) -> None:
    """Completed runs of a (preset, cell, seed) after the first in run order become ``duplicate``, naming it."""
    first: dict[tuple[str, str, str], str] = {}
    for r in runs:
        if r.row["status"] != COMPLETED:
            continue
        key = (str(r.row["preset"]), str(r.row["cell"]), str(r.row.get("seed")))
        if key not in first:
            first[key] = r.row["run_dir"]
            continue
        r.row.update(status=DUPLICATE, error=f"the same preset, cell and seed as {first[key]}: counted once")
        log.warning("run %s (%s): %s", r.row["run"], r.row["preset"], r.row["error"])


# ------------------------------------------------------------------------------------------ the table
def collect(sweep_dirs: str | Path | Iterable[str | Path]) -> Collection:
    """Read every run dir below `sweep_dirs` into one tidy table (see the module docstring)."""
    sweeps = sweep_paths(sweep_dirs)
    runs: list[_Run] = []
    found: dict[Path, str] = {}  # run dir -> preset
    for sweep in sweeps:
        dirs = find_run_dirs(sweep)
        if not dirs:
            raise AnalysisError(
                f"sweep_dir {sweep} holds no run directories (folders with summary.json or .hydra/config.yaml)"
            )
        for run_dir in dirs:
            if run_dir.resolve() not in found:
                runs.append(_read_run(run_dir, sweep))
                found[run_dir.resolve()] = runs[-1].row["preset"]

    swept = {preset: _preset_swept(preset, [r for r in runs if r.row["preset"] == preset])
             for preset in dict.fromkeys(r.row["preset"] for r in runs)}
    params = list(dict.fromkeys(k for keys in swept.values() for k in keys))
    for r in runs:
        r.row.update({key: _param_value(r, key) for key in params})
        r.row["cell"] = cell_label({key: r.row[key] for key in swept[r.row["preset"]]})
    _mark_duplicates(runs)

    table = pd.DataFrame([r.row for r in runs])
    for column in table.columns:
        table[column] = tidy(table[column])
    frames = [r.metrics.assign(run_dir=r.row["run_dir"]) for r in runs if r.metrics is not None]
    epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_dir", "epoch"])
    training = [Path(r.row["run_dir"]) for r in runs if r.row.get("error") == TRAINING_NOW]
    missing = missing_jobs(_in_whole_sweeps(found, sweeps), found, training)
    return Collection(table, epochs, swept, sweeps, pd.DataFrame(missing))


def _in_whole_sweeps(run_dirs: Iterable[Path], sweeps: list[Path]) -> list[Path]:
    """The run dirs whose sweep is one of `sweeps` or lies below one: a run dir named alone (a few of a sweep's
    jobs) leaves the sweep's other jobs out, not missing."""
    roots = [s.resolve() for s in sweeps]
    return [d for d in run_dirs if any(d.parent == r or r in d.parent.parents for r in roots)]
