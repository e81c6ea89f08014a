"""analyze.py's options (conf/analyze.yaml), checked before anything is read or written: a bad option is one
clear error line naming it, not a traceback after the whole collection."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from omegaconf import DictConfig, OmegaConf

from fmnist.analysis import latex
from fmnist.analysis.collect import sweep_paths
from fmnist.analysis.errors import AnalysisError, ReportError
from fmnist.bench.results import read_result
from fmnist.config import CONF_DIR
from fmnist.errors import FmnistError
from fmnist.train.device import resolve_device

USAGE = "python analyze.py sweep_dir=multirun/<date>/<time>_<name>"
SPEC_EXAMPLE = "{preset: stage1_models, model: resnet18}"


@dataclass(frozen=True)
class Options:
    """The checked options the pipeline reads (the others it reads off the config as they are)."""

    sweep_dirs: list[Path]
    out_dir: Path | None                                     # None: <first sweep dir>/analysis
    alpha: float
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_cell: dict[str, Any] = field(default_factory=dict)
    bench: list[dict[str, Any]] = field(default_factory=list)  # bench_dir's results, by file name
    bench_dir: str | None = None                               # for the report and analysis.json (shown_path)


def check_options(cfg: DictConfig) -> Options:
    """The options of `cfg`; an AnalysisError (or ReportError) names the first bad one."""
    unknown = sorted(set(map(str, cfg.keys())) - known_options())
    if unknown:
        raise AnalysisError(f"unknown option(s) {', '.join(unknown)}: not part of conf/analyze.yaml "
                            "(python analyze.py --cfg job shows every option)")
    sweep_dirs = sweep_paths(_sweep_dirs(cfg))
    for key in ("report", "figures", "dead_neurons"):
        _flag(cfg, key)
    _count(cfg.get("misclassified", 24), "misclassified")
    _existing_dir(cfg.get("data_dir"), "data_dir")
    bench = _bench_results(cfg.get("bench_dir"))
    if cfg.get("dead_neurons", True):
        resolve_device(str(cfg.get("device", "cpu")))
    if cfg.get("report", False):
        check_report_dir(Path(str(cfg.get("report_dir") or "report")))
    out_dir = Path(str(cfg.get("out_dir"))).expanduser() if cfg.get("out_dir") else None
    if out_dir is not None:
        check_out_dir(out_dir)
    reference = _mapping(cfg.get("reference"), "reference", "{stage2_skip: {model.skip: true}}")
    return Options(
        sweep_dirs=sweep_dirs, out_dir=out_dir, alpha=_alpha(cfg.get("alpha", 0.05)),
        reference={str(p): _mapping(s, f"reference.{p}", "{model.skip: true}") for p, s in reference.items()
                   if s is not None},
        confusion_cell=_mapping(cfg.get("confusion_cell"), "confusion_cell", SPEC_EXAMPLE), bench=bench,
        bench_dir=latex.shown_path(str(cfg.get("bench_dir"))) if bench else None,
    )


def check_reference_presets(reference: Mapping[str, Any], presets: Iterable[str]) -> None:
    """Each preset `reference` has an entry for is a preset of conf/experiment/ (the defaults name them, analysed
    or not) or of the analysed runs (`presets`: a sweep run with name=...): an AnalysisError names any other
    (`+reference.stage2_skp=...`, a typo, would be ignored). Checked once the runs are read, which name theirs."""
    analysed = sorted(set(map(str, presets)))
    known = set(analysed) | {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    unknown = sorted(set(map(str, reference)) - known)
    if unknown:
        raise AnalysisError(f"unknown reference preset(s) {', '.join(f'reference.{p}' for p in unknown)}: neither a "
                            f"preset of conf/experiment/ nor of the analysed runs ({', '.join(analysed) or 'none'})")


def _bench_results(value: Any) -> list[dict[str, Any]]:
    """The benchmark results in `bench_dir` (its bench_*.json files, by name); [] without the option."""
    if value is None or str(value) == "":
        return []
    _existing_dir(value, "bench_dir")
    files = sorted(Path(str(value)).expanduser().glob("bench_*.json"))
    if not files:
        raise AnalysisError(f"bench_dir {value} holds no bench_*.json files (python -m fmnist.bench --out FILE "
                            "writes one)")
    try:
        return [read_result(path) for path in files]
    except FmnistError as exc:
        raise AnalysisError(f"bench_dir: {exc}") from exc


def known_options() -> set[str]:
    """The options conf/analyze.yaml defines (its top-level keys but Hydra's)."""
    return set(map(str, OmegaConf.load(CONF_DIR / "analyze.yaml").keys())) - {"defaults", "hydra"}


def check_out_dir(out_dir: Path) -> None:
    """`out_dir` is a directory or does not exist yet, and can be written (checked before the runs are read and
    measured, which can take minutes)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AnalysisError(f"out_dir {out_dir} exists and is not a directory")
    if (blocked := unwritable(out_dir)) is not None:
        raise AnalysisError(f"cannot write to out_dir {out_dir}: {blocked} is not writable")


def unwritable(folder: Path) -> Path | None:
    """The folder, or its nearest existing ancestor when it does not exist yet, if this process cannot create
    files in it (permissions, a read-only file system); else None."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():  # a file in the way: creating the folder says so (Not a directory)
        return None
    return None if os.access(existing, os.W_OK | os.X_OK) else existing


def check_report_dir(report_dir: Path) -> None:
    """`report_dir` holds main.tex and the bibliography files main.tex names."""
    main = report_dir / "main.tex"
    if not main.is_file():
        raise ReportError(f"report_dir {report_dir} has no main.tex")
    if unwritable(report_dir) is not None:
        raise ReportError(f"cannot write to report_dir {report_dir}: it is not writable")
    text = re.sub(r"(?<!\\)%.*", "", main.read_text(encoding="utf-8", errors="replace"))  # not in comments
    for names in re.findall(r"\\bibliography\{([^}]*)\}", text):
        for name in filter(None, (n.strip() for n in names.split(","))):
            bib = report_dir / (name if name.endswith(".bib") else f"{name}.bib")
            if not bib.is_file():
                raise ReportError(f"report_dir {report_dir} has no {bib.name}, which main.tex's \\bibliography "
                                  f"needs (copy it from the repository's report/)")


def _sweep_dirs(cfg: DictConfig) -> list[str]:
    value = None if OmegaConf.is_missing(cfg, "sweep_dir") else cfg.get("sweep_dir")
    items = list(value) if OmegaConf.is_list(value) or isinstance(value, (list, tuple)) else [value]
    if not items or any(item is None or not str(item).strip() for item in items):
        raise AnalysisError(f"no sweep_dir given (or an empty one): {USAGE}")
    return [str(item) for item in items]


def _flag(cfg: DictConfig, key: str) -> None:
    value = cfg.get(key)
    if value is not None and not isinstance(value, bool):
        raise AnalysisError(f"{key} must be true or false, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _alpha(value: Any) -> float:
    if not _is_number(value) or not 0 < value < 1:
        raise AnalysisError(f"alpha must be a number between 0 and 1 (exclusive), e.g. alpha=0.05; got {value!r}")
    return float(value)


def _count(value: Any, key: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AnalysisError(f"{key} must be a whole number >= 0, got {value!r}")


def _existing_dir(value: Any, key: str) -> None:
    if value is None or str(value) == "":
        return
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise AnalysisError(f"{key} {path} does not exist")
    if not path.is_dir():
        raise AnalysisError(f"{key} {path} is not a directory")


def _mapping(value: Any, key: str, example: str) -> dict[str, Any]:
    """`value` as a plain dict ({} for null); an AnalysisError unless it is a mapping."""
    if value is None:
        return {}
    plain = OmegaConf.to_container(value) if isinstance(value, DictConfig) else value
    if not isinstance(plain, Mapping):
        raise AnalysisError(f"{key} must be a mapping such as {example}, got {_shown(value)}")
    return {str(k): v for k, v in plain.items()}


def _shown(value: Any) -> str:
    return repr(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
