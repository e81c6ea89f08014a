"""fmnist.analysis.console: the cells on the console."""

from __future__ import annotations

import math

import pandas as pd

from fmnist.analysis.console import cell_summary


def cell(preset: str, name: str, n: int, val: float, val_std: float, test: float, test_std: float, *,
         reference: bool = False, delta: float = math.nan, p: float = math.nan, verdict: str = "n < 2") -> dict:
    return {"preset": preset, "cell": name, "n": n, "best_val_acc_mean": val, "best_val_acc_std": val_std,
            "test_acc_mean": test, "test_acc_std": test_std, "is_reference": reference, "delta": delta,
            "p_holm": p, "verdict": "reference" if reference else verdict, "metric": "test_acc"}


def test_each_preset_lists_its_cells_with_the_comparison_to_its_reference() -> None:
    cells = pd.DataFrame([
        cell("stage2_skip", "model.skip=True", 3, 0.944, 0.001, 0.9399, 0.0012, reference=True),
        cell("stage2_skip", "model.skip=False", 3, 0.93, 0.002, 0.9345, 0.002, delta=-0.0054, p=0.0123,
             verdict="lower"),
        cell("stage2_norm", "norm=none", 1, 0.9333, math.nan, 0.9301, math.nan, delta=-0.0098),
        cell("stage2_norm", "norm=groupnorm", 0, math.nan, math.nan, math.nan, math.nan, verdict="n < 2"),
        cell("stage2_norm", "norm=layernorm", 2, 0.9, 0.0, 0.91, 0.0, delta=-0.03, p=0.0001, verdict="lower"),
    ])
    lines = cell_summary(cells).splitlines()
    assert lines[0] == "stage2_skip: n, val acc (%), test acc (%) over seeds; test acc vs the reference"
    assert lines[1].split() == ["model.skip=True", "3", "94.40", "±", "0.10", "93.99", "±", "0.12", "reference"]
    # the label column is as wide as the longest label (16), n 2 wide, the accuracies 15 wide, two spaces between
    assert lines[1] == "  model.skip=True    3     94.40 ± 0.10     93.99 ± 0.12  reference"
    assert lines[2].endswith("-0.54 pp, lower p_Holm=0.012") and " 3 " in lines[2]
    assert lines[3].startswith("stage2_norm:")
    assert lines[4].split()[1:] == ["1", "93.33", "93.01", "-0.98", "pp,", "untested", "(n", "<", "2)"]
    assert lines[5].split()[1:] == ["0", "-", "-", "no", "result"]
    assert lines[6].endswith("-3.00 pp, lower p_Holm<0.001")
    assert len({line.index(" ", 2 + len("model.skip=False")) for line in lines[1:3]}) == 1  # aligned columns


def test_a_long_summary_is_cut_and_counts_the_rest() -> None:
    cells = pd.DataFrame([cell("p", f"x={i}", 1, 0.9, math.nan, 0.9, math.nan, reference=i == 0, delta=0.0)
                          for i in range(5)])
    lines = cell_summary(cells, max_cells=3).splitlines()
    assert len(lines) == 5 and lines[-1] == "... 2 more cells in cells.csv"
    long = pd.DataFrame([cell("p", "k=" + "v" * 80, 1, 0.9, math.nan, 0.9, math.nan, reference=True)])
    assert "k=" + "v" * 45 + "…" in cell_summary(long)  # labels cut to 48 characters
    assert cell_summary(cells.iloc[:0]) == "no cells"
    hidden = cells.assign(metric="best_val_acc")
    assert cell_summary(hidden).splitlines()[0].endswith("; val acc vs the reference")


def test_the_cut_falls_between_presets_and_a_single_cell_left_is_counted_in_the_singular() -> None:
    """The first preset's two cells fill max_cells=2: the next preset gets no heading; its one cell is counted; a
    cell above its reference is signed."""
    cells = pd.DataFrame([
        cell("a", "x=0", 2, 0.9, 0.01, 0.9, 0.01, reference=True),
        cell("a", "x=1", 2, 0.91, 0.01, 0.9125, 0.01, delta=0.0125, p=0.2, verdict="within seed noise"),
        cell("b", "y=0", 1, 0.9, math.nan, 0.9, math.nan, reference=True),
    ])
    lines = cell_summary(cells, max_cells=2).splitlines()
    assert len(lines) == 4 and lines[-1] == "... 1 more cell in cells.csv"
    assert lines[2].endswith("+1.25 pp, within seed noise p_Holm=0.200")
    edge = cells.assign(p_holm=[math.nan, 0.001, math.nan], delta=[math.nan, 0.01, math.nan])
    assert cell_summary(edge).splitlines()[2].endswith(" p_Holm=0.001")  # 0.001 is not below 0.001
    orphan = cells.assign(is_reference=False, verdict="no reference")  # runs, but nothing to compare with
    assert cell_summary(orphan).splitlines()[1].endswith("  no reference")
