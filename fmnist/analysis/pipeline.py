"""The whole analysis as `python analyze.py` runs it: collect -> aggregate -> tables -> confusion, seed ensembles
and dead neurons -> figures [-> report]. Reads the run dirs, writes only below `out_dir` (and `report_dir`)."""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from fmnist.analysis import figures as figs
from fmnist.analysis import image_figures, style
from fmnist.analysis.latex import plural
from fmnist.analysis.console import cell_summary
from fmnist.analysis.collect import (COMPLETED, Collection, collect, options_of_runs, run_config, run_target,
                                    same_value)
from fmnist.analysis.dead_neurons import DEAD_UNITS_FILE, DeadStats, measure_run
from fmnist.analysis.ensembles import ensemble_table, pair_churn
from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.options import check_options, check_out_dir, check_reference_presets, check_report_dir
from fmnist.analysis.outputs import FIGURE_DIR, META_FILE, staged
from fmnist.analysis.predictions import (UNLABELLED, ClassResults, RunPredictions, class_accuracy_table,
                                        class_results, confusions_of, read_runs)
from fmnist.analysis.similarity import class_mean_similarity
from fmnist.analysis.stats import TEST_NAME, aggregate, selection_metric
from fmnist.config import CONF_DIR, safe_instantiate
from fmnist.data.resplit import CLASS_NAMES, Resplit, data_fingerprint, is_official_test, load_resplit
from fmnist.errors import FmnistError, first_line
from fmnist.train.device import resolve_device
from fmnist.train.run_dir import atomic_write_bytes, atomic_write_text, write_json

log = logging.getLogger("fmnist.analysis")

#: Augmentations shown in the augmentation check, in this order (others in conf/augment/ follow).
AUGMENT_ORDER = ("standard", "strong", "mixup", "cutmix")


@dataclass
class AnalysisResult:
    """What one analysis produced (all of it also written under `out_dir`)."""

    out_dir: Path
    collection: Collection
    cells: pd.DataFrame                        # stats.aggregate
    alpha: float
    classes: ClassResults | None = None        # confusion / per-class results of the chosen cell
    class_runs: pd.DataFrame = field(default_factory=pd.DataFrame)   # per-class test accuracy, one row per run × class
    class_similarity: np.ndarray | None = None  # [C, C] correlation of the classes' mean training images
    dead_runs: pd.DataFrame = field(default_factory=pd.DataFrame)    # one row per analysed run
    dead_layers: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per run × activation layer
    ensembles: pd.DataFrame = field(default_factory=pd.DataFrame)    # one row per cell with ≥ 2 seeds (ensembles.py)
    pair_churn: pd.DataFrame = field(default_factory=pd.DataFrame)   # the key comparisons prediction by prediction
    figures: dict[str, Path] = field(default_factory=dict)           # name -> PDF path
    test_set: str | None = None  # "official" (Fashion-MNIST's t10k set), "other", "unlabelled"; None: no data found
    data: DataCheck | None = None  # whether the runs trained on the same data (data_check)
    bench: list[dict[str, Any]] = field(default_factory=list)  # benchmark results (bench_dir) for the report
    bench_dir: str | None = None                               # where they were read


@dataclass(frozen=True)
class DataCheck:
    """The data fingerprints (resplit.data_fingerprint) the completed runs recorded, and the analysed folder's."""

    fingerprints: list[str]  # distinct, most runs first
    unrecorded: int          # completed runs that recorded none (made before runs recorded it)
    folder: str | None       # the fingerprint of the data folder the analysis read; None when it read none

    @property
    def mixed(self) -> bool:
        return len(self.fingerprints) > 1

    @property
    def folder_differs(self) -> bool:
        return len(self.fingerprints) == 1 and self.folder is not None and self.folder != self.fingerprints[0]


# ------------------------------------------------------------------------------------------ writing tables
def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """`name`.csv and `name`.parquet, each written atomically."""
    atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(out_dir / f"{name}.parquet", buffer.getvalue())


def _out_dir(out_dir: Path | None, collection: Collection) -> Path:
    """`out_dir`, else `<first sweep dir>/analysis`, or `<run dir>-analysis` beside it when the first sweep dir is
    a single run dir (the analysis never writes into run dirs)."""
    first = collection.sweep_dirs[0]
    is_run_dir = any(Path(r) == first.resolve() for r in collection.runs["run_dir"])
    named = Path(os.path.abspath(first))  # `.` named, `..` resolved, a symlink kept: beside what the user named
    out = out_dir or (named.parent / f"{named.name}-analysis" if is_run_dir else first / "analysis")
    check_out_dir(out)
    resolved = out.resolve()
    for run_dir in collection.runs["run_dir"]:
        if resolved == Path(run_dir) or Path(run_dir) in resolved.parents:
            raise AnalysisError(f"out_dir {out} lies inside the run dir {run_dir}; the analysis never writes "
                                f"into run dirs: choose another out_dir")
    return out


def _log_problems(collection: Collection) -> None:
    problems = collection.problems()
    done = int((collection.runs["status"] == COMPLETED).sum())
    log.info("%s: %d completed, %d not%s", plural(len(collection.runs), "run dir"), done, len(collection.runs) - done,
             f"; {len(collection.missing)} job(s) without a run dir" if len(collection.missing) else "")
    for _, p in problems.iterrows():
        error = p["error"] if isinstance(p["error"], str) and p["error"].strip() else "no error recorded"
        log.warning("%s run %s (%s): %s", p["status"], p["run"], p["preset"], error)


# ------------------------------------------------------------------------------------------ confusion cell
def choose_cell(cells: pd.DataFrame, spec: Mapping[str, Any] | None) -> pd.Series | None:
    """The cell `spec` ({preset: ..., <param>: <value>}) names, else the cell with the best mean validation accuracy
    (stats.selection_metric); None when no cell has a completed run."""
    candidates = cells[cells["n"] > 0]
    if candidates.empty:
        return None
    if spec:
        spec = dict(spec)
        preset = spec.pop("preset", None)
        pool = candidates if preset is None else candidates[candidates["preset"] == str(preset)]
        hits = [i for i, row in pool.iterrows()
                if all(k in row and pd.notna(row[k]) and same_value(_py(row[k]), v) for k, v in spec.items())]
        if not hits:
            raise AnalysisError(f"confusion_cell {dict(spec, **({'preset': preset} if preset else {}))} matches "
                                f"no cell with completed runs; cells: {'; '.join(candidates['cell'])}")
        return candidates.loc[hits[0]]
    chosen_by = f"{selection_metric(candidates)}_mean"
    candidates = candidates[candidates[chosen_by].notna()]
    return None if candidates.empty else candidates.loc[candidates[chosen_by].idxmax()]


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


#: What a completed run's damaged predictions_test.csv is left out of (completed_predictions reads them all first).
PREDICTIONS_LEFT_OUT = "the confusion matrices, per-class accuracies, calibration, seed ensembles and prediction churn"


def completed_predictions(collection: Collection) -> dict[str, RunPredictions]:
    """run dir -> confusion matrix and calibration of each completed run with readable labelled test predictions;
    the calibration also goes into the run table (``test_ece``, ``test_nll``, ``test_confidence``; NaN for a run
    without them), so that the cells average it like any other number. A damaged file (or one without the labels
    of a run that has a test accuracy) is named once, in a warning and the run's issues, and left out of every
    result (Collection.leave_out_predictions); a missing one collect has named."""
    runs = collection.completed
    has_test_acc = dict(zip(runs["run_dir"].astype(str), runs["test_acc"].notna()))

    def left_out(run_dir: str, problem: str) -> None:
        if problem == UNLABELLED:
            if not has_test_acc[run_dir]:  # a hidden test set
                return
            problem = f"{UNLABELLED}, though its run has a test accuracy"
        collection.leave_out_predictions(run_dir, problem, PREDICTIONS_LEFT_OUT)

    predictions = read_runs(list(runs["run_dir"]), list(runs["n_test"]), on_problem=left_out)
    for field_name in ("ece", "nll", "confidence"):
        collection.runs[f"test_{field_name}"] = [
            getattr(predictions[r], field_name) if r in predictions else np.nan for r in collection.runs["run_dir"]]
    return predictions


def cell_classes(collection: Collection, cell: pd.Series,
                 confusions: Mapping[str, np.ndarray] | None = None) -> ClassResults | None:
    """The pooled test predictions of the completed runs of `cell` (from `confusions` when given)."""
    runs = collection.completed
    runs = runs[(runs["preset"] == cell["preset"]) & (runs["cell"] == cell["cell"])]
    return class_results(list(runs["run_dir"]), str(cell["cell"]), str(cell["preset"]),
                         test_sizes=list(runs["n_test"]), confusions=confusions)


# ------------------------------------------------------------------------------------------ dead neurons
def _data_dir(cfg: DictConfig, run: pd.Series) -> Path | None:
    """The data folder of `run`: `data_dir` when set, else the folder the run recorded (an absolute path on the
    machine that trained it), else its configured ``data.dir`` relative to the working directory (the same
    folder on this machine: runs made on a GPU server, analysed in a checkout)."""
    candidates = [cfg.get("data_dir")] if cfg.get("data_dir") else [run.get("data_dir"), run.get("data.dir")]
    for candidate in candidates:
        if candidate is not None and not pd.isna(candidate) and Path(str(candidate)).is_dir():
            return Path(str(candidate))
    return None


def _dead_stats(cfg: DictConfig, run: pd.Series, device: str) -> tuple[DeadStats | None, str | None]:
    """`run`'s dead_units.json, else measured from its best.pt; (None, why) when neither can be used (a warning
    names it; the why goes to the run's issues, with a damaged dead_units.json that was measured again)."""
    run_dir = Path(run["run_dir"])
    stats = DeadStats.load(run_dir)
    if stats is not None:
        return stats, None
    damaged = "dead_units.json is unreadable or incomplete" if (run_dir / DEAD_UNITS_FILE).is_file() else None
    data_dir = _data_dir(cfg, run)
    why = None
    if data_dir is None:
        why = "its data folder was not found (set data_dir=...)"
    else:
        try:
            stats = measure_run(run_config(run_dir), run_dir, data_dir, device)
        except FmnistError as exc:
            why = first_line(exc)
        else:
            if stats is None:
                why = "no usable dead_units.json, and no best.pt or validation split"
    if why is not None:
        log.warning("dead neurons: %s skipped: %s", run["run"], why)
    not_measured = None if why is None else f"dead units not measured: {why}"
    return stats, "; ".join(filter(None, (damaged, not_measured))) or None


def activation_label(run: pd.Series) -> Any:
    """A run's activation as the dead-unit tables, figures and prose name it: its option (the choice), or the class of
    the run's ``activation._target_`` where that is not the target of conf/activation/<option>.yaml (a sweep of
    ``activation._target_=torch.nn.ReLU,torch.nn.Mish`` on relu: ReLU and Mish, not relu twice, pooled)."""
    choice = run.get("activation")
    path = CONF_DIR / "activation" / f"{choice}.yaml"
    target = run_target(Path(run["run_dir"]), "activation")
    if not isinstance(choice, str) or target is None or not path.is_file():
        return choice
    return choice if target == str(OmegaConf.load(path).get("_target_")) else target.rsplit(".", 1)[-1]


def dead_neuron_tables(cfg: DictConfig, collection: Collection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dead units / sparsity of every completed run's best weights on its validation split (the run's
    dead_units.json, else measured from its best.pt)."""
    device = str(resolve_device(cfg.get("device", "cpu")))
    run_rows, layer_rows = [], []
    for _, run in collection.completed.iterrows():
        stats, issue = _dead_stats(cfg, run, device)
        if issue is not None:
            collection.note_issue(run["run_dir"], issue)
        if stats is None:
            continue
        ident = {"run_dir": run["run_dir"], "preset": run["preset"], "cell": run["cell"], "seed": run["seed"],
                 "model": run.get("model"), "activation": activation_label(run),
                 "optimizer.lr": run.get("optimizer.lr")}
        run_rows.append({**ident, "dead_fraction": stats.dead_fraction, "zero_fraction": stats.zero_fraction,
                         "units": stats.units, "dead_units": stats.dead_units,
                         "negative_capable": stats.negative_capable, "n_images": stats.n_images})
        for i, layer in enumerate(stats.per_layer):  # the module class goes to "module": "activation" is the choice
            layer_rows.append({**ident, "layer_index": i, "module": layer["activation"],
                               **{k: v for k, v in layer.items() if k != "activation"}})
    if collection.completed.shape[0] and not run_rows:
        log.warning("dead neurons: no run could be analysed")
    return pd.DataFrame(run_rows), pd.DataFrame(layer_rows)


# ------------------------------------------------------------------------------------------ figures
def _augments(runs: pd.DataFrame) -> list[tuple[str, Any]]:
    """The augmentations the figure shows: every conf/augment/ option but none, then those the runs chose that
    conf/augment/ lacks (a user's own option)."""
    paths = {p.stem: p for p in (CONF_DIR / "augment").glob("*.yaml")}
    nodes = {name: OmegaConf.load(path) for name, path in paths.items()}
    nodes.update({name: OmegaConf.create(node) for name, node in options_of_runs(runs, "augment", paths).items()})
    order = [n for n in AUGMENT_ORDER if n in nodes] + sorted(set(nodes) - set(AUGMENT_ORDER) - {"none"})
    return [(name, safe_instantiate(nodes[name], "augment")) for name in order]


def _dataset(cfg: DictConfig, runs: pd.DataFrame) -> Resplit | None:
    if runs.empty:  # no completed run: nothing needs the images, and no folder is missing
        return None
    for _, run in runs.iterrows():
        data_dir = _data_dir(cfg, run)
        if data_dir is not None:
            try:
                return load_resplit(data_dir)
            except FmnistError as exc:
                log.warning("cannot read the data folder %s: %s", data_dir, exc)
                return None
    log.warning("no data folder found (set data_dir=...): no image figures, and the test set is not checked")
    return None


def data_check(runs: pd.DataFrame, dataset: Resplit | None) -> DataCheck | None:
    """Which data the completed `runs` trained on, by the fingerprint each recorded, against the data folder the
    analysis read (`dataset`); None when no run recorded one. Mixed data, or a folder other than the runs',
    is logged as a warning."""
    recorded = runs["data_fingerprint"].dropna() if "data_fingerprint" in runs else pd.Series(dtype=object)
    if recorded.empty:
        return None
    check = DataCheck(list(recorded.astype(str).value_counts().index), len(runs) - len(recorded),
                      None if dataset is None else data_fingerprint(dataset))
    if check.mixed:
        log.warning("the runs trained on %d different data sets (data_fingerprint %s): comparisons between them mix "
                    "data", len(check.fingerprints), ", ".join(check.fingerprints))
    elif check.folder_differs:
        log.warning("the data folder the analysis read (data_fingerprint %s) is not the data the runs trained on "
                    "(%s): its test-set check and image figures describe that folder", check.folder,
                    check.fingerprints[0])
    return check


def test_set_kind(dataset: Resplit | None) -> str | None:
    """Which test set the runs' data folder holds: "official" (the Fashion-MNIST t10k images and labels, checked
    by content whatever their ids or order), "other" (a re-split), "unlabelled"; None without a data folder."""
    if dataset is None:
        return None
    official = is_official_test(dataset.test)
    return "unlabelled" if official is None else ("official" if official else "other")


def make_figures(cfg: DictConfig, result: AnalysisResult, fig_dir: Path,
                 dataset: Resplit | None = None) -> dict[str, Path]:
    """Every figure the data allows, as PDF + PNG in `fig_dir` (image figures need `dataset`); returns
    name -> PDF path."""
    from fmnist.analysis.evidence import (  # evidence builds on AnalysisResult
        class_differences, dead_runs_sweeping, distinct_dead_layers, key_comparisons)

    c, cells = result.collection, result.cells
    written: list[Path] = []

    def draw(name: str, figure: Callable[..., list[Path]], *args: Any, **kwargs: Any) -> None:
        """One figure; damaged run data it cannot draw (a metrics.csv without its columns, a config value of the
        wrong type) leaves it out with a warning naming it (and why, as a figure's own FmnistError says it), and the
        rest of the analysis goes on."""
        try:
            written.extend(figure(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - any failure of one optional figure, from any run's data
            plt.close("all")
            why = first_line(exc) if isinstance(exc, FmnistError) else f"{type(exc).__name__}: {first_line(exc)}"
            log.warning("figure %s not drawn: %s", name, why)

    with style.context():
        for preset, slug in style.slugs(c.swept).items():  # v0.1 x beside v0.1-x: files of their own
            order = list(cells.loc[cells["preset"] == preset, "cell"])
            draw(f"training curves of {preset}", figs.training_curves, c.runs, c.epochs, preset, order, fig_dir,
                 swept=c.swept[preset], slug=slug)
            draw(f"final accuracy of {preset}", figs.final_accuracy, cells, c.runs, preset, fig_dir, slug=slug)
            draw(f"dead-unit curves of {preset}", figs.tracked_dead_curves, c.runs, c.epochs, preset, order,
                 fig_dir, slug=slug)
        draw("capacity", figs.capacity, cells, fig_dir)
        draw("key_comparisons", figs.key_comparisons, key_comparisons(result), fig_dir)
        draw("class_differences", figs.class_differences, class_differences(result), result.alpha, fig_dir)
        draw("lr_schedules", figs.lr_schedules, c.runs, c.epochs, CONF_DIR, fig_dir)
        if result.classes is not None:
            draw("confusion", image_figures.confusion, result.classes, fig_dir)
            if dataset is not None:
                draw("misclassified", image_figures.misclassified, result.classes, dataset.test, fig_dir,
                     int(cfg.get("misclassified", 24)))
        if dataset is not None:
            draw("augmentations", image_figures.augmentations, dataset.train, _augments(c.runs), fig_dir,
                     CLASS_NAMES)
        if not result.dead_layers.empty:  # each trained network once, compared only where nothing else changes
            by_activation = dead_runs_sweeping(result, "activation")
            draw("dead_by_layer", figs.dead_by_layer, distinct_dead_layers(result, by_activation), fig_dir)
            draw("dead_vs_lr", figs.dead_vs_lr, dead_runs_sweeping(result, "optimizer.lr", fallback=False),
                 fig_dir)
    return {p.stem: p for p in written if p.suffix == ".pdf"}


# ------------------------------------------------------------------------------------------ the analysis
def analyze(cfg: DictConfig) -> AnalysisResult:
    """Run the analysis `cfg` (conf/analyze.yaml) describes; see the module docstring. Its files replace the
    previous analysis in out_dir only when all of them are written (:mod:`fmnist.analysis.outputs`)."""
    options = check_options(cfg)
    collection = collect(options.sweep_dirs)
    check_reference_presets(options.reference, collection.runs["preset"])
    out_dir = _out_dir(options.out_dir, collection)
    _log_problems(collection)
    predictions = completed_predictions(collection)
    cells = aggregate(collection, options.reference, options.alpha)
    result = AnalysisResult(out_dir, collection, cells, options.alpha, bench=options.bench,
                            bench_dir=options.bench_dir)
    from fmnist.analysis.evidence import key_cells, key_family_cells  # evidence imports this module

    result.cells = cells = key_family_cells(result)  # a key comparison is Holm-corrected across the questions only
    confusions = confusions_of(predictions)
    result.class_runs = class_accuracy_table(collection.completed, confusions)
    chosen = choose_cell(cells, options.confusion_cell)
    if chosen is not None:
        result.classes = cell_classes(collection, chosen, confusions)
    result.ensembles = ensemble_table(collection)
    result.pair_churn = pair_churn(collection, key_cells(result))
    if cfg.get("dead_neurons", True):
        result.dead_runs, result.dead_layers = dead_neuron_tables(cfg, collection)
    dataset = _dataset(cfg, collection.completed)
    result.test_set = test_set_kind(dataset)
    result.class_similarity = None if dataset is None else class_mean_similarity(dataset.train, len(CLASS_NAMES))
    result.data = data_check(collection.completed, dataset)
    with staged(out_dir) as staging:
        write_tables(result, staging)
        if cfg.get("figures", True):
            result.figures = make_figures(cfg, result, staging / FIGURE_DIR, dataset)
        write_json(staging / META_FILE, _meta(result))
    result.figures = {name: out_dir / FIGURE_DIR / pdf.name for name, pdf in result.figures.items()}
    log.info("analysis of %s written to %s\n%s", plural(len(collection.runs), "run"), out_dir,
             cell_summary(result.cells))
    return result


def write_tables(result: AnalysisResult, out_dir: Path) -> None:
    """The tables of `result` (README: runs, epochs, cells, problems, ensembles, dead_neurons*) in `out_dir`."""
    collection = result.collection
    write_table(collection.runs, out_dir, "runs")
    write_table(collection.epochs, out_dir, "epochs")
    write_table(result.cells, out_dir, "cells")
    write_table(collection.problems(), out_dir, "problems")
    if not result.class_runs.empty:
        write_table(result.class_runs, out_dir, "class_accuracy")
    if not result.ensembles.empty:
        write_table(result.ensembles, out_dir, "ensembles")
    if not result.pair_churn.empty:
        write_table(result.pair_churn, out_dir, "key_churn")
    if not result.dead_runs.empty:
        write_table(result.dead_runs, out_dir, "dead_neurons")
        write_table(result.dead_layers, out_dir, "dead_neurons_by_layer")


def _meta(result: AnalysisResult) -> dict[str, Any]:
    """analysis.json: what was analysed, and how."""
    collection, cells = result.collection, result.cells
    return {
        "sweep_dirs": [str(p) for p in collection.sweep_dirs], "swept": collection.swept,
        "reference": {p: str(r) for p, r in cells.loc[cells["is_reference"], ["preset", "cell"]].values},
        "test": TEST_NAME, "alpha": result.alpha, "metric": str(cells["metric"].iloc[0]),
        "runs": len(collection.runs), "completed": int((collection.runs["status"] == COMPLETED).sum()),
        "problems": collection.problems().to_dict(orient="records"),
        "confusion_cell": None if result.classes is None else f"{result.classes.preset}: {result.classes.cell}",
        "figures": sorted(result.figures), "test_set": result.test_set,
        "data_fingerprints": None if result.data is None else result.data.fingerprints,
        "bench_dir": result.bench_dir,
    }


def main(cfg: DictConfig) -> AnalysisResult:
    """analyze.py: the analysis, then (report=true) the LaTeX report."""
    if cfg.get("report", False):
        from fmnist.analysis.report import build_report, latexmk

        latexmk()  # fail before the analysis when TeX is missing, or report_dir is not one
        check_report_dir(Path(cfg.report_dir))
    result = analyze(cfg)
    if cfg.get("report", False):
        build_report(result, Path(cfg.report_dir))
    return result

