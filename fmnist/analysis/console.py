"""The analysis's summary on the console: each preset's cells with their accuracy over seeds and the comparison with
the reference, as plain text (the full numbers are in cells.csv)."""

from __future__ import annotations

import pandas as pd

from fmnist.analysis.stats import TOO_FEW, shown_verdict

#: The most cell lines printed; the rest are counted (cells.csv holds them all).
MAX_CELLS = 60


def _pct(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{100 * mean:.2f}" + ("" if pd.isna(std) else f" ± {100 * std:.2f}")


def _comparison(cell: pd.Series) -> str:
    if bool(cell["is_reference"]):
        return "reference"
    if pd.isna(cell["delta"]):
        return shown_verdict(cell)
    p = cell["p_holm"]
    p = "" if pd.isna(p) else (" p_Holm<0.001" if p < 0.001 else f" p_Holm={p:.3f}")
    verdict = "untested (n < 2)" if cell["verdict"] == TOO_FEW else cell["verdict"]
    return f"{100 * cell['delta']:+.2f} pp, {verdict}{p}"


def cell_summary(cells: pd.DataFrame, max_cells: int = MAX_CELLS) -> str:
    """Per preset: one line per cell (n completed seeds, best validation and test accuracy in %, mean ± std, and
    the difference from the reference cell with its verdict); at most `max_cells` cell lines."""
    if cells.empty:
        return "no cells"
    test = str(cells["metric"].iloc[0]) == "test_acc"
    width = min(48, max(len(str(c)) for c in cells["cell"]))
    lines, shown = [], 0
    for preset, group in cells.groupby("preset", sort=False):
        if shown >= max_cells:
            break
        lines.append(f"{preset}: n, val acc (%), test acc (%) over seeds; {'test' if test else 'val'} acc vs the "
                     "reference")
        for _, cell in group.iterrows():
            if shown >= max_cells:
                break
            label = str(cell["cell"])
            label = label if len(label) <= width else label[: width - 1] + "…"
            lines.append(f"  {label:<{width}}  {int(cell['n']):>2}  "
                         f"{_pct(cell['best_val_acc_mean'], cell['best_val_acc_std']):>15}  "
                         f"{_pct(cell['test_acc_mean'], cell['test_acc_std']):>15}  {_comparison(cell)}")
            shown += 1
    if shown < len(cells):
        rest = len(cells) - shown
        lines.append(f"... {rest} more cell{'s' if rest != 1 else ''} in cells.csv")
    return "\n".join(lines)

