"""Result plots: training curves, final accuracy per ablation, accuracy vs capacity and time, learning-rate
schedules, and the dead-neuron plots. Every function returns the files it wrote ([] when it had nothing
to plot); the style comes from :mod:`fmnist.analysis.style` (call them inside ``style.context()``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from omegaconf import OmegaConf

from fmnist.analysis import style
from fmnist.analysis.latex import plural
from fmnist.analysis.collect import COMPLETED, cell_label, options_of_runs, short_labels
from fmnist.config import safe_instantiate
from fmnist.data.loader import steps_per_epoch
from fmnist.train import schedulers

PERCENT = 100.0


def _band(ax: plt.Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, top: float | None = None, **kw) -> None:
    """`mean` as a line with a ±1 std band, the band kept within [0, top] (losses and rates are not negative); a
    single point (a one-epoch run) as a marker with a ±1 std bar in the line's style (hollow for a dashed line),
    since a line through one point is not drawn."""
    if len(x) == 1:
        dashed = kw.get("ls") not in (None, "-")
        kw = {"marker": "o", **kw}  # a line's own marker (a cell's second cue) wins
        bar = ax.errorbar(x, mean, yerr=None if np.isnan(std).all() else std, capsize=3,
                          mfc="none" if dashed else None, **kw)
        for lines in bar[2]:
            lines.set_linestyle(kw.get("ls", "-"))
        return
    ax.plot(x, mean, **kw)
    ok = ~np.isnan(std)
    if ok.any():
        low, high = np.clip((mean - std)[ok], 0, top), np.clip((mean + std)[ok], 0, top)
        ax.fill_between(x[ok], low, high, color=kw.get("color"), alpha=0.18, lw=0)


def _legend_below(fig: plt.Figure, handles: list, ncol: int) -> None:
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=max(1, ncol))


#: A log axis with at most this many distinct values gets a tick at each of them (e.g. the swept learning rates).
MAX_VALUE_TICKS = 6


def _axis_scale(ax: plt.Axes, values: pd.Series, axis: str = "x", span: float = 5.0) -> None:
    """Log scale when the values span more than a factor `span`, plain numbers on the ticks either way: on a log axis
    at the values themselves when there are few, else at 1, 2 and 5 times the powers of ten (a span of less than two
    decades would otherwise show one or two labels, 10^2 alone under 20-300 s)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    v = v[v > 0]
    target = ax.xaxis if axis == "x" else ax.yaxis
    if len(v) and v.max() / v.min() > span:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        distinct = np.unique(v.to_numpy(float))
        target.set_major_locator(FixedLocator(distinct) if len(distinct) <= MAX_VALUE_TICKS
                                 else LogLocator(subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    target.set_minor_formatter(NullFormatter())


#: A loss panel whose mean curves span more than this factor gets a log axis: one run that blows up (a validation loss
#: of 10^4) would otherwise flatten every other curve to the bottom of the panel.
LOSS_LOG_SPAN = 100.0
#: Beyond this many cells in one panel, a preset that sweeps several keys gets one panel per value of its first.
MAX_LINES = 8


def _curve_cue(i: int) -> dict:
    """The second cue of a training-curve line once the colours repeat: a marker (its line style means the split)."""
    return {} if i < len(style.PALETTE) else {"marker": style.marker(i // len(style.PALETTE)), "markersize": 3}


def _cell_handles(cells: Sequence[str]) -> list[Line2D]:
    return [Line2D([], [], color=style.color(i), ls=style.linestyle(i), label=c)
            for i, c in enumerate(short_labels(cells))]


# ------------------------------------------------------------------------------------------ training curves
def training_curves(runs: pd.DataFrame, epochs: pd.DataFrame, preset: str, cells: Sequence[str],
                    out_dir: Path, columns: Sequence[str] = ("loss", "acc"), name: str = "curves",
                    swept: Sequence[str] = (), slug: str | None = None) -> list[Path]:
    """Train (dashed) and validation (solid) loss and accuracy per epoch for each cell of `preset`:
    the mean over its completed seeds with a ±1 std band. With more than MAX_LINES cells and several swept keys
    (`swept`, in the preset's order), one column of panels per value of the first key, a line per cell in each.
    Saved as `name`_`slug` (default: style.slug(preset); style.slugs gives presets slugs of their own)."""
    done = runs[(runs["preset"] == preset) & (runs["status"] == COMPLETED)]
    data = epochs.merge(done[["run_dir", "cell"]], on="run_dir")
    if data.empty:
        return []
    cells = [c for c in cells if c in set(data["cell"])]
    facets = _facets(done, cells, swept) if len(cells) > MAX_LINES else [("", cells, cells)]
    grid = (len(columns), len(facets)) if len(facets) > 1 else (1, len(columns))
    fig, axes = plt.subplots(*grid, figsize=(style.TWO_COLUMN, 2.3 if len(facets) == 1 else 1.7 * len(columns) + 0.3),
                             squeeze=False, sharey="row" if len(facets) > 1 else False)
    labels = {"loss": "cross-entropy loss", "acc": "accuracy (%)"}
    lines = list(dict.fromkeys(line for _, _, in_facet in facets for line in in_facet))
    for col, (title, facet_cells, facet_lines) in enumerate(facets):
        for row, metric in enumerate(columns):
            ax = axes[row, col] if len(facets) > 1 else axes[0, row]
            scale = PERCENT if metric == "acc" else 1.0
            plotted: list[np.ndarray] = []
            for cell, line in zip(facet_cells, facet_lines):
                g = data[data["cell"] == cell]
                i = lines.index(line)
                for split, ls in (("train", "--"), ("val", "-")):
                    column = f"{split}_{metric}"
                    if g.empty or column not in g or g[column].isna().all():
                        continue
                    s = g.groupby("epoch")[column].agg(["mean", "std"])
                    plotted.append(s["mean"].to_numpy(float))
                    _band(ax, s.index.to_numpy(float), s["mean"].to_numpy() * scale, s["std"].to_numpy() * scale,
                          top=PERCENT if metric == "acc" else None, color=style.color(i), ls=ls, **_curve_cue(i))
            if metric == "loss" and plotted:
                _axis_scale(ax, pd.Series(np.concatenate(plotted)), axis="y", span=LOSS_LOG_SPAN)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if title and row == 0:
                ax.set_title(title)
            if row == len(columns) - 1 or len(facets) == 1:
                ax.set_xlabel("epoch")
            if col == 0 or len(facets) == 1:
                ax.set_ylabel(labels[metric])
    handles = [Line2D([], [], color=style.color(i), ls="-", label=c, **_curve_cue(i))
               for i, c in enumerate(short_labels(lines))]
    handles += [Line2D([], [], color="0.3", ls="--", label="train"),
                                      Line2D([], [], color="0.3", ls="-", label="validation")]
    fig.suptitle(f"{preset}: mean over seeds, band = ±1 std", y=1.02)
    _legend_below(fig, handles, min(4, len(handles)))
    return style.save(fig, out_dir, f"{name}_{slug or style.slug(preset)}")


def _facets(done: pd.DataFrame, cells: Sequence[str], swept: Sequence[str]) -> list[tuple[str, list[str], list[str]]]:
    """(title, cells, line labels) per value of the first swept key, each line labelled by the other keys; one
    facet of every cell when the runs do not show two swept keys."""
    keys = [k for k in swept if k in done.columns]
    if len(keys) < 2:
        return [("", list(cells), list(cells))]
    first = done.drop_duplicates("cell").set_index("cell")
    facets: dict[str, tuple[list[str], list[str]]] = {}
    for cell in cells:
        row = first.loc[cell]
        title = short_labels([cell_label({keys[0]: row[keys[0]]})])[0]
        in_facet = facets.setdefault(title, ([], []))
        in_facet[0].append(cell)
        in_facet[1].append(cell_label({k: row[k] for k in keys[1:]}))
    return [(title, facet_cells, facet_lines) for title, (facet_cells, facet_lines) in facets.items()]


def tracked_dead_curves(runs: pd.DataFrame, epochs: pd.DataFrame, preset: str, cells: Sequence[str],
                        out_dir: Path, slug: str | None = None) -> list[Path]:
    """Dead-unit fraction and sparsity per epoch (the trainer's ``trainer.track_dead`` columns)."""
    if "dead_fraction" not in epochs or epochs["dead_fraction"].isna().all():
        return []
    done = runs[(runs["preset"] == preset) & (runs["status"] == COMPLETED)]
    data = epochs.merge(done[["run_dir", "cell"]], on="run_dir")
    if data.empty:
        return []
    cells = [c for c in cells if c in set(data["cell"])]
    fig, axes = plt.subplots(1, 2, figsize=(style.TWO_COLUMN, 2.2))
    for ax, column, label in ((axes[0], "dead_fraction", "dead units (%)"),
                              (axes[1], "zero_fraction", "zero activations (%)")):
        for i, cell in enumerate(cells):
            g = data[data["cell"] == cell]
            if column not in g or g[column].isna().all():
                continue
            s = g.groupby("epoch")[column].agg(["mean", "std"])
            _band(ax, s.index.to_numpy(float), s["mean"].to_numpy() * PERCENT, s["std"].to_numpy() * PERCENT,
                  top=PERCENT, color=style.color(i), ls=style.linestyle(i), marker=style.marker(i), markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    fig.suptitle(f"{preset}: dead units and sparsity during training (fixed probe batch)", y=1.02)
    _legend_below(fig, _cell_handles(cells), min(4, len(cells)))
    return style.save(fig, out_dir, f"dead_training_{slug or style.slug(preset)}")


# ------------------------------------------------------------------------------------------ final accuracy
def final_accuracy(cells: pd.DataFrame, runs: pd.DataFrame, preset: str, out_dir: Path,
                   slug: str | None = None) -> list[Path]:
    """Best validation and test accuracy per cell: mean ± std over seeds (bars), each seed (dots), the
    reference's mean (dotted line); * marks a significant difference from the reference."""
    table = cells[cells["preset"] == preset].reset_index(drop=True)
    if not (table["n"] > 0).any():
        return []
    done = runs[(runs["preset"] == preset) & (runs["status"] == COMPLETED)]
    metrics = [("best_val_acc", "validation (best)"), ("test_acc", "test")]
    metrics = [(m, lbl) for m, lbl in metrics if table[f"{m}_mean"].notna().any()]
    fig, ax = plt.subplots(figsize=(style.ONE_COLUMN, 0.8 + 0.32 * len(table)))
    y = np.arange(len(table), dtype=float)
    for j, (metric, label) in enumerate(metrics):
        offset = (j - (len(metrics) - 1) / 2) * 0.25
        ax.errorbar(table[f"{metric}_mean"] * PERCENT, y + offset, xerr=table[f"{metric}_std"] * PERCENT,
                    fmt=style.marker(j), color=style.color(j), label=f"{label}, mean ± std")
        for i, cell in enumerate(table["cell"]):
            seeds = done.loc[done["cell"] == cell, metric].dropna() * PERCENT
            ax.scatter(seeds, np.full(len(seeds), y[i] + offset), s=9, facecolors="none",
                       edgecolors=style.color(j), linewidths=0.6, alpha=0.8, zorder=3)
    ref = table[table["is_reference"]]
    metric = str(table["metric"].iloc[0])
    if not ref.empty and pd.notna(ref[f"{metric}_mean"].iloc[0]):
        ax.axvline(ref[f"{metric}_mean"].iloc[0] * PERCENT, color="0.4", ls=":", lw=0.8)
    labels = [f"{c}{' (ref)' if r else ''}{' *' if s is True else ''}"
              for c, r, s in zip(short_labels(table["cell"]), table["is_reference"],
                                 table["significant"].astype(object))]
    for i, row in table.iterrows():
        if row["n"] == 0:
            ax.annotate(_no_result(row), (0.02, y[i]), xycoords=("axes fraction", "data"), va="center", fontsize=6,
                        color="0.35")
    ax.set_yticks(y, labels)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlabel("accuracy (%)")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    return style.save(fig, out_dir, f"accuracy_{slug or style.slug(preset)}")


def _no_result(cell: pd.Series) -> str:
    """Why a cell has no value: its runs by outcome."""
    counts = [(int(cell.get("n_no_value", 0) or 0), "completed without a value"),
              (int(cell["n_failed"]), "failed"), (int(cell["n_unfinished"]), "unfinished")]
    return f"no result ({', '.join(f'{n} {what}' for n, what in counts if n) or 'none'})"


# ------------------------------------------------------------------------------------------ capacity / time
def capacity(cells: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test (or validation) accuracy against parameters, FLOPs per image and training time; one point
    per cell (mean ± std), one colour per preset."""
    table = cells[cells["n"] > 0]
    if table.empty:
        return []
    metric = str(table["metric"].iloc[0])
    axes_spec = (("params", "parameters"), ("flops", "FLOPs per image"), ("train_time_s", "training time (s)"))
    fig, axes = plt.subplots(1, 3, figsize=(style.TWO_COLUMN, 2.3), sharey=True)
    annotate = len(table) <= 12
    for ax, (x, xlabel) in zip(axes, axes_spec):
        for j, (preset, g) in enumerate(table.groupby("preset", sort=False)):
            ax.errorbar(g[f"{x}_mean"], g[f"{metric}_mean"] * PERCENT, yerr=g[f"{metric}_std"] * PERCENT,
                        xerr=g[f"{x}_std"] if x == "train_time_s" else None, fmt=style.marker(j),
                        color=style.color(j), ls="none", label=preset)
            if annotate:
                for _, row in g.iterrows():
                    short = ", ".join(part.split("=", 1)[-1] for part in str(row["cell"]).split(", "))
                    ax.annotate(short, (row[f"{x}_mean"], row[f"{metric}_mean"] * PERCENT), fontsize=5.5,
                                xytext=(3, 2), textcoords="offset points", color="0.25")
        _axis_scale(ax, table[f"{x}_mean"])
        if x != "train_time_s":
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            if ax.get_xscale() == "linear":
                ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(f"{'test' if metric == 'test_acc' else 'best validation'} accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    _legend_below(fig, handles, min(4, len(handles)))
    return style.save(fig, out_dir, "capacity")


def key_comparisons(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The key comparison of each question as a forest plot: the difference in accuracy (a - b, pp) with its 95 %
    confidence interval; filled where its Holm-corrected p < alpha, hollow within seed noise."""
    if table.empty:
        return []
    rows = table.iloc[::-1]  # the first question at the top
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(style.ONE_COLUMN * 1.6, 0.32 * len(rows) + 0.9))
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    for yi, (_, r) in zip(y, rows.iterrows()):
        significant = r["verdict"] in ("higher", "lower")
        err = [[(r["delta"] - r["ci_low"]) * PERCENT], [(r["ci_high"] - r["delta"]) * PERCENT]] \
            if pd.notna(r["ci_low"]) else None
        ax.errorbar(r["delta"] * PERCENT, yi, xerr=err, fmt="o", color=style.color(0), capsize=2,
                    mfc=style.color(0) if significant else "white")
    ax.set_yticks(y, [f"{r['question']}: {r['a']} vs {r['b']}" for _, r in rows.iterrows()])
    ax.set_xlabel("difference in accuracy, a − b (pp), 95 % CI")
    fig.tight_layout()
    return style.save(fig, out_dir, "key_comparisons")


def _signed(value: float) -> str:
    """'+2.5', '−1.8' (a true minus sign, as on the axes), '0.0' for what rounds to zero."""
    text = f"{value:+.1f}".replace("-", "−")
    return "0.0" if text in ("+0.0", "−0.0") else text


def class_differences(table: pd.DataFrame, alpha: float, out_dir: Path) -> list[Path]:
    """The key comparisons class by class (evidence.class_differences): a − b in per-class test accuracy (pp) as a
    diverging heat map, one row per comparison; a bold number passes Holm's correction across its classes."""
    if table.empty:
        return []
    questions = list(dict.fromkeys(table["question"]))
    classes = list(dict.fromkeys(table["class"]))
    grid = table.pivot(index="question", columns="class", values="delta").reindex(index=questions, columns=classes)
    tested = table.pivot(index="question", columns="class", values="p_holm").reindex(index=questions, columns=classes)
    values = grid.to_numpy(float) * PERCENT
    limit = max(float(np.nanmax(np.abs(values))), 0.5)
    fig, ax = plt.subplots(figsize=(style.TWO_COLUMN, 0.32 * len(questions) + 1.5))
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(questions)):
        for j in range(len(classes)):
            if np.isnan(values[i, j]):
                continue
            strong = bool(tested.iat[i, j] < alpha)  # NaN (untested) compares False
            ax.text(j, i, _signed(values[i, j]), ha="center", va="center", fontsize=6,
                    fontweight="bold" if strong else "normal",
                    color="white" if abs(values[i, j]) > 0.6 * limit else "black")
    names = {q: f"{q}: {a} − {b}" for q, a, b in table[["question", "a", "b"]].drop_duplicates("question").values}
    ax.set_yticks(range(len(questions)), [names[q] for q in questions])
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="a − b, per-class test accuracy (pp)", fraction=0.04, pad=0.02)
    fig.tight_layout()
    return style.save(fig, out_dir, "class_differences")


# ------------------------------------------------------------------------------------------ lr schedules
def _multipliers(scheduler_cfg, epochs: int, steps: int) -> np.ndarray:
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=1.0)
    quiet = logging.getLogger(schedulers.__name__)  # its notes (warmup clamped) concern runs, not this drawing
    level, quiet.level = quiet.level, logging.WARNING
    try:
        scheduler = safe_instantiate(scheduler_cfg, "scheduler")(optimizer, epochs=epochs, steps_per_epoch=steps)
    finally:
        quiet.setLevel(level)
    values = []
    for _ in range(epochs * steps + 1):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.asarray(values)


def lr_schedules(runs: pd.DataFrame, epochs: pd.DataFrame, conf_dir: Path, out_dir: Path) -> list[Path]:
    """Every scheduler of conf/scheduler/ and every other one the runs chose (a user's own option) at the analysed
    runs' length (lr / peak lr per step), with the per-epoch lr the runs recorded (markers) on top as a check."""
    done = runs[runs["status"] == COMPLETED]
    if done.empty or not (conf_dir / "scheduler").is_dir():
        return []
    options = {path.stem: OmegaConf.load(path) for path in sorted((conf_dir / "scheduler").glob("*.yaml"))}
    options.update({name: OmegaConf.create(node) for name, node in options_of_runs(runs, "scheduler", options).items()})
    n_epochs = int(done["trainer.epochs"].mode().iloc[0])
    batch = int(done["trainer.batch_size"].mode().iloc[0])
    n_train = int(done["n_train"].dropna().mode().iloc[0]) if done["n_train"].notna().any() else 50_000
    kept = done.get("trainer.drop_last", pd.Series(dtype=bool)).dropna()
    drop_last = bool(kept.mode().iloc[0]) if not kept.empty else True  # the trainer's default
    steps = steps_per_epoch(n_train, batch, drop_last)
    fig, ax = plt.subplots(figsize=(style.ONE_COLUMN, 2.3))
    for i, (name, node) in enumerate(options.items()):
        f = _multipliers(node, n_epochs, steps)
        ax.plot(np.arange(len(f)) / steps, f, color=style.color(i), ls=style.LINESTYLES[i % 4], label=name)
        used = done[done["scheduler"] == name] if "scheduler" in done else done.iloc[:0]  # runs of this one
        if not used.empty:
            run = used.iloc[0]
            rec = epochs[epochs["run_dir"] == run["run_dir"]]
            ax.plot(rec["epoch"] - 1, rec["lr"] / float(run["optimizer.lr"]), ls="none", marker=style.marker(i),
                    color=style.color(i), markersize=3.5, markerfacecolor="none")
    ax.set_xlabel("epoch")
    ax.set_ylabel("lr / peak lr")
    ax.set_title(f"{plural(n_epochs, 'epoch')} × {plural(steps, 'step')}/epoch; markers: recorded by the runs",
                 fontsize=7)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    return style.save(fig, out_dir, "lr_schedules")


# ------------------------------------------------------------------------------------------ dead neurons
def dead_by_layer(layers: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per layer, for each activation function (and model): dead-unit fraction (top) and the fraction of
    exactly-zero activations (bottom), mean ± std over runs."""
    if layers.empty:
        return []
    models = list(dict.fromkeys(layers["model"]))
    activations = list(dict.fromkeys(layers["activation"]))  # one colour and legend entry each, in every panel
    fig, axes = plt.subplots(2, len(models), figsize=(style.TWO_COLUMN, 3.8), squeeze=False, sharex="col")
    for col, model in enumerate(models):
        data = layers[layers["model"] == model]
        order = list(dict.fromkeys(data.sort_values("layer_index")["layer"]))
        for act in dict.fromkeys(data["activation"]):
            i, g = activations.index(act), data[data["activation"] == act].groupby("layer_index")
            for row, column in enumerate(("dead_fraction", "zero_fraction")):
                s = g[column].agg(["mean", "std"])
                _band(axes[row, col], s.index.to_numpy(float), s["mean"].to_numpy() * PERCENT,
                      s["std"].to_numpy() * PERCENT, color=style.color(i), marker=style.marker(i),
                      markersize=3, label=act)
        axes[0, col].set_title(model)
        for row in range(2):
            axes[row, col].set_ylim(bottom=0, top=max(1.0, axes[row, col].get_ylim()[1]))
        axes[1, col].set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=5.5)
        axes[1, col].set_xlabel("activation layer")
    axes[0, 0].set_ylabel("dead units (%)\n(never > 0)")
    axes[1, 0].set_ylabel("zero activations (%)\n(sparsity)")
    handles = [Line2D([], [], color=style.color(i), marker=style.marker(i), markersize=3, label=act)
               for i, act in enumerate(activations)]
    fig.tight_layout()
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles))
    return style.save(fig, out_dir, "dead_by_layer")


def dead_vs_lr(dead_runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Whole-network dead-unit fraction against the peak learning rate, one colour per activation:
    every run (hollow) and the mean per learning rate (line)."""
    data = dead_runs.dropna(subset=["optimizer.lr"])
    if data.empty:
        return []
    fig, ax = plt.subplots(figsize=(style.ONE_COLUMN, 2.3))
    for i, (act, g) in enumerate(data.groupby("activation", sort=False)):
        ax.scatter(g["optimizer.lr"], g["dead_fraction"] * PERCENT, s=12, facecolors="none",
                   edgecolors=style.color(i), marker=style.marker(i))
        mean = g.groupby("optimizer.lr")["dead_fraction"].mean() * PERCENT
        ax.plot(mean.index, mean.to_numpy(), color=style.color(i), marker=style.marker(i), label=act)
    _axis_scale(ax, data["optimizer.lr"])
    ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("dead units (%)")
    ax.legend()
    return style.save(fig, out_dir, "dead_vs_lr")
