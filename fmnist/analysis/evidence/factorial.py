"""The factorial presets: how far the learning rate and the schedule of stage2_lr each move accuracy (two-way
ANOVA against the seed noise), and the main effect of each regularisation factor of stage3_regularization.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import Comparison, failed_cells, metric_name, primary
from fmnist.analysis.evidence.wording import _size, effect, p_math
from fmnist.analysis.latex import NA, escape, plural
from fmnist.analysis.pipeline import AnalysisResult


def lr_schedule_spread(result: AnalysisResult) -> tuple[str, pd.DataFrame]:
    """How far accuracy moves across learning rates (per schedule) and across schedules (per learning rate),
    per schedule its best and worst learning rate, and whether either setting moves accuracy beyond seed noise."""
    preset_cells = result.cells[result.cells["preset"] == "stage2_lr"]
    cells = preset_cells[preset_cells["n"] > 0]
    if cells.empty or not {"optimizer.lr", "scheduler"} <= set(cells.columns):
        return NA, pd.DataFrame()
    mean = f"{primary(result)}_mean"
    grid = cells.pivot_table(index="scheduler", columns="optimizer.lr", values=mean, aggfunc="first")
    rows = []
    for scheduler, accs in grid.iterrows():
        accs = accs.dropna()
        if accs.empty:
            continue
        failed = int(preset_cells.loc[preset_cells["scheduler"] == scheduler, "n_failed"].sum())  # all-failed cells too
        rows.append({"scheduler": scheduler, "best_lr": accs.idxmax(), "best": accs.max(), "worst_lr": accs.idxmin(),
                     "worst": accs.min(), "spread": accs.max() - accs.min(), "failed": failed})
    table = pd.DataFrame(rows)
    if table.empty:
        return NA, table
    by_lr = (grid.max(axis=0) - grid.min(axis=0)).dropna()
    best_lrs = table["best_lr"].value_counts()
    schedules = "every schedule" if best_lrs.iloc[0] == len(table) else \
        f"{best_lrs.iloc[0]} of the {plural(len(table), 'schedule')}"
    spreads = [rf"across the {plural(grid.shape[1], 'learning rate')}, {metric_name(result)} moves by "
               rf"{_size(table['spread'].mean())}\,pp on average within a schedule" if grid.shape[1] > 1 else "",
               rf"across the {plural(grid.shape[0], 'schedule')}, by {_size(by_lr.mean())}\,pp within a learning rate"
               if grid.shape[0] > 1 and len(by_lr) else ""]  # a setting with one value moves nothing
    text = latex.sentence("; ".join(t for t in spreads if t)) + ". " if any(spreads) else ""
    untested = "; one seed per cell: a ranking, not a tested difference" if (cells["n"] < 2).all() else ""
    text += (rf"The best learning rate is {latex.number(best_lrs.index[0])} for {schedules} "
             rf"(Table~\ref{{tab:lr-schedules}}{untested}).")
    return text + _lr_not_run(grid, preset_cells) + _lr_failures(preset_cells) + _lr_or_schedule(result), table


def _lr_not_run(grid: pd.DataFrame, cells: pd.DataFrame) -> str:
    """' 3 of the 20 combinations have no run yet (learning rate 0.3 with cosine, ...); the spreads and the best and
    worst learning rates leave them out.' for the learning rate x schedule combinations of the grid's values that
    no run has reached (a cell whose runs all failed is a result, named by _lr_failures)."""
    failed = {(c["scheduler"], c["optimizer.lr"]) for _, c in failed_cells(cells).iterrows()}
    missing = [(sched, lr) for sched, accs in grid.iterrows() for lr, acc in accs.items()
               if pd.isna(acc) and (sched, lr) not in failed]
    if not missing:
        return ""
    names = [rf"learning rate {latex.number(lr)} with {escape(sched)}" for sched, lr in missing]
    have = "has" if len(missing) == 1 else "have"
    return (f" {len(missing)} of the {grid.size} combinations {have} no run yet ({latex.and_join(names)}); the spreads "
            "and the best and worst learning rates leave them out.")


def _lr_failures(cells: pd.DataFrame) -> str:
    """' Every run failed at learning rate 0.3 with the constant schedule (3 runs); see Table ...' for the cells of
    stage2_lr without a completed run (a divergence is a result, which the spreads and best learning rates leave
    out)."""
    lost = failed_cells(cells)
    if lost.empty:
        return ""
    names = [rf"learning rate {latex.number(c['optimizer.lr'])} with the {escape(c['scheduler'])} schedule "
             rf"({plural(int(c['n_failed']), 'run')})" for _, c in lost.iterrows()]
    return (rf" Every run failed at {latex.and_join(names)}; see Table~\ref{{tab:problems}}. The spreads and best "
            f"learning rates above leave {'this cell' if len(lost) == 1 else 'these cells'} out.")


def _lr_or_schedule(result: AnalysisResult) -> str:
    """Which of learning rate and schedule moves accuracy beyond seed noise: a two-way ANOVA of stage2_lr's runs
    whose error term is the seed noise within cells (pooling the other setting would count its effect as noise)."""
    runs = result.collection.completed
    runs = runs[runs["preset"] == "stage2_lr"]
    p_lr, p_sched, p_both = two_way_anova(runs, "optimizer.lr", "scheduler", primary(result))
    if math.isnan(p_lr) and math.isnan(p_sched):
        return ""
    untestable = "not testable (one value, or no seed noise to test against)"
    tests = (f" (two-way ANOVA, seed noise within cells as the error: learning rate "
             f"{untestable if math.isnan(p_lr) else p_math(p_lr)}, schedule "
             f"{untestable if math.isnan(p_sched) else p_math(p_sched)}"
             + ("" if math.isnan(p_both) else f", their interaction {p_math(p_both)}") + ")")
    lr, sched, both = p_lr < result.alpha, p_sched < result.alpha, p_both < result.alpha  # NaN < alpha is False
    if math.isnan(p_lr) or math.isnan(p_sched):  # one of them tested: nothing to say which matters more
        name = "schedule" if math.isnan(p_lr) else "learning rate"
        return f" The {name} {'moves' if lr or sched else 'does not move'} accuracy beyond seed noise{tests}."
    # a significant interaction: each setting's effect depends on the other's value, so neither is beside the point
    depends = "how much the schedule moves accuracy depends on the learning rate"
    if lr and sched:
        return (f" Both the learning rate and the schedule move accuracy significantly{tests}"
                + (f", and so does their interaction: {depends}." if both else "."))
    if lr or sched:
        winner, loser = ("learning rate", "schedule") if lr else ("schedule", "learning rate")
        if both:
            return (f" Of the two main effects only the {winner}'s is significant{tests}, but their interaction is "
                    f"significant too: {depends}, so the {loser} matters at some values of the {winner}.")
        return f" Only the {winner} moves accuracy significantly{tests}: the {winner} matters more than the {loser}."
    if both:
        return f" Neither main effect is significant{tests}, but their interaction is: {depends}."
    return f" Neither moves accuracy beyond seed noise{tests}."


def two_way_anova(runs: pd.DataFrame, a: str, b: str, column: str) -> tuple[float, float, float]:
    """p of factor `a`, factor `b` and their interaction on `column` (type II sums of squares, least squares, so
    missing runs are fine), each tested against the variance between runs of the same cell (the seeds). NaN for a
    factor with one level, an interaction not estimable, or no cell with two runs. Without any seed noise an
    effect is exact: p 0 when it changes the means, else 1."""
    if not {a, b, column} <= set(runs.columns):
        return math.nan, math.nan, math.nan
    data = pd.DataFrame({"y": pd.to_numeric(runs[column], errors="coerce"), "a": runs[a].astype(str),
                         "b": runs[b].astype(str)}).dropna()
    if data.empty:
        return math.nan, math.nan, math.nan
    y = data["y"].to_numpy(float)
    ones = np.ones((len(y), 1))
    dummies = {k: pd.get_dummies(data[k], drop_first=True).to_numpy(float) for k in ("a", "b")}

    def fit(*blocks: np.ndarray) -> tuple[float, int]:
        x = np.hstack(blocks)
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float(((y - x @ coef) ** 2).sum()), int(np.linalg.matrix_rank(x))

    noise, df_error = within_cell_noise(data, ["a", "b"], "y")
    if df_error <= 0:
        return math.nan, math.nan, math.nan
    rss_full, rank_full = noise * df_error, len(y) - df_error  # the cell means' fit: one parameter per cell
    (rss_ab, rank_ab), (rss_a, rank_a), (rss_b, rank_b) = (
        fit(ones, dummies["a"], dummies["b"]), fit(ones, dummies["a"]), fit(ones, dummies["b"]))
    tests = ((rss_b - rss_ab, rank_ab - rank_b), (rss_a - rss_ab, rank_ab - rank_a), (rss_ab - rss_full,
                                                                                      rank_full - rank_ab))
    scale = max(float(np.abs(y).max()), 1.0) ** 2 * 1e-12 * len(y)  # rounding of the sums of squares

    def p_value(ss: float, df: int) -> float:
        if df <= 0:
            return math.nan
        if noise <= scale / df_error:
            return 0.0 if ss > scale else 1.0
        return float(scipy_stats.f.sf(max(ss, 0.0) / df / noise, df, df_error))

    return tuple(p_value(ss, df) for ss, df in tests)  # type: ignore[return-value]


#: The regularisation factors of stage3_regularization, in the order the report lists them.
REG_FACTORS = {"optimizer.weight_decay": "weight decay", "trainer.label_smoothing": "label smoothing",
               "model.dropout": "dropout"}


def main_effects(result: AnalysisResult) -> pd.DataFrame:
    """For each factor of stage3_regularization and each of its levels: test accuracy averaged over the other
    factors (all their runs pooled), and its difference from the factor's lowest level tested against the seed
    noise within the preset's cells (a t-test with the pooled within-cell variance; pooling the other factors into
    the noise, as a plain two-sample test of the pooled runs does, would count their effects as noise)."""
    runs = result.collection.completed
    runs = runs[runs["preset"] == "stage3_regularization"]
    accuracy = primary(result)
    factors = [f for f in REG_FACTORS if f in runs and runs[f].notna().any()]
    noise, df_noise = within_cell_noise(runs, factors, accuracy)
    rows = []
    for factor in factors:
        setting = pd.to_numeric(runs[factor], errors="coerce")
        levels = sorted(setting.dropna().unique())
        if len(levels) < 2:  # not varied in the analysed runs: no effect to estimate
            continue
        values = {lv: pd.to_numeric(runs.loc[np.isclose(setting, lv), accuracy], errors="coerce").dropna()
                  .to_numpy(float) for lv in levels}
        base = values[levels[0]]
        for lv in levels:
            a = values[lv]
            if len(a) == 0 or len(base) == 0:
                continue
            diff = float(a.mean() - base.mean())
            rows.append({"factor": REG_FACTORS[factor], "key": factor, "level": lv, "n": len(a), "acc": float(a.mean()),
                         "delta": diff, "p": math.nan if lv == levels[0] else _contrast_p(diff, len(a), len(base),
                                                                                            noise, df_noise)})
    return pd.DataFrame(rows)


def within_cell_noise(runs: pd.DataFrame, keys: list[str], column: str) -> tuple[float, int]:
    """The pooled variance of `column` between runs of the same cell (the same values of `keys`: the seeds) and
    its degrees of freedom (runs minus cells); (nan, 0) without a cell of two runs."""
    data = runs[[*keys, column]].copy()
    data[column] = pd.to_numeric(data[column], errors="coerce")
    data = data.dropna(subset=[column])
    if data.empty:
        return math.nan, 0
    groups = data.groupby([data[k].astype(str) for k in keys])[column] if keys else [(None, data[column])]
    ss = sum(float(((g - g.mean()) ** 2).sum()) for _, g in groups)
    df = len(data) - (data.groupby([data[k].astype(str) for k in keys]).ngroups if keys else 1)
    return (ss / df, df) if df > 0 else (math.nan, 0)


def _contrast_p(diff: float, n_a: int, n_b: int, noise: float, df: int) -> float:
    """Two-sided p of a difference of two means of n_a and n_b runs, given the seed noise variance `noise`."""
    if df <= 0 or math.isnan(noise):
        return math.nan
    se = math.sqrt(noise * (1.0 / n_a + 1.0 / n_b))
    if se == 0.0:  # no seed noise at all: a difference is exact
        return 0.0 if abs(diff) > 1e-12 else 1.0
    return float(2.0 * scipy_stats.t.sf(abs(diff) / se, df))


def regularisation(result: AnalysisResult, effects: pd.DataFrame) -> str:
    """The main effect of each regularisation factor's strongest level against none."""
    if effects.empty:
        return NA
    parts, bases = [], []
    for label, g in effects.groupby("factor", sort=False):
        top, base = g.iloc[-1], g.iloc[0]["level"]
        if top["level"] == base:
            continue
        bases.append(base)
        c = Comparison(top["acc"], top["acc"] - top["delta"], top["p"], int(top["n"]), int(g.iloc[0]["n"]))
        against = "" if base == 0 else rf" (vs.\ {latex.number(base)})"  # no run without it was analysed
        parts.append(rf"{label} {latex.number(top['level'])}{against}: {effect(c, result.alpha)}")
    if not parts:
        return NA
    base = "without it" if all(b == 0 for b in bases) else "at its lowest level"
    return (f"Each regulariser at its strongest level against the runs {base}, averaged over the other factors "
            f"(Table~\\ref{{tab:main-effects}}): " + "; ".join(parts) + ".")
