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
