"""The one figure style: sans-serif (DejaVu Sans, shipped with matplotlib) at print sizes, the
colour-blind-safe seaborn "colorblind" palette (Wong/Okabe-Ito colours) with markers and line styles as a
second cue, figure widths of a one- or two-column paper, and every figure saved as PDF (vector, embedded
TrueType fonts) and PNG."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import Iterable, Iterator

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from fmnist.analysis import latex  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter at INFO

ONE_COLUMN = 3.4    # inches: one column of a two-column paper
TWO_COLUMN = 7.0    # inches: full text width
PNG_DPI = 200
PALETTE: list[tuple[float, float, float]] = list(sns.color_palette("colorblind", 10))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
LINESTYLES = ("-", "--", ":", "-.")

RC: dict[str, object] = {
    "text.parse_math": False,  # text is literal: a '$' in a run's name or a swept value is not mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 8,
    "figure.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "errorbar.capsize": 2,
    "image.cmap": "Greys",
    "pdf.fonttype": 42,   # TrueType in the PDF: selectable text, no Type 3 bitmaps
    "ps.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "figure.dpi": 100,
}


@contextlib.contextmanager
def context() -> Iterator[None]:
    """Apply the style for the figures made inside the block."""
    with plt.rc_context(RC):
        yield


def color(i: int) -> tuple[float, float, float]:
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def linestyle(i: int) -> str:
    """A second cue once the palette's 10 colours repeat."""
    return LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]


def slug(text: str) -> str:
    """A file-name-safe version of a preset or cell name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "figure"


def slugs(names: Iterable[str]) -> dict[str, str]:
    """Name -> a slug of its own (preset names: their figures' and tables' file names and labels): a name whose slug
    an earlier one has (v0.1 x beside v0.1-x, both v0.1-x) gets -2, -3, ... (v0.1-x-2), never the other's files."""
    return latex.distinct(names, lambda name, n: slug(name) + (f"-{n}" if n > 1 else ""))


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.pdf and `name`.png into `out_dir`, close the figure, return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None})  # no date: the same figure is the same file
    fig.savefig(paths[1], dpi=PNG_DPI)
    plt.close(fig)
    return paths
