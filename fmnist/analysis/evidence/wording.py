"""How the prose reads a comparison: p-values, effects and 'A against B' sentences. A difference is called an
effect only when p < alpha; otherwise the sentence says "within seed noise". With fewer than two seeds on a side a
sentence quotes the difference and draws no conclusion.
"""

from __future__ import annotations

import math
from typing import Callable

from fmnist.analysis import latex
from fmnist.analysis.evidence.comparisons import Comparison
from fmnist.analysis.latex import NA


def p_math(p: float, name: str = "p") -> str:
    """'$p=0.0123$' or '$p<0.001$'."""
    return f"${name}<0.001$" if p < 0.001 else f"${name}={latex.p_digits(p)}$"


def _p(c: Comparison) -> str:
    return "too few seeds for a test" if math.isnan(c.p) else p_math(c.p, c.p_name)


def _size(diff: float) -> str:
    return f"{100.0 * abs(diff):.2f}"


def effect(c: Comparison, alpha: float) -> str:
    r"""a against b in short: 'higher by 0.42\,pp ($p=0.010$)', 'lower by ...', 'within seed noise (...)' or, without a
    test, '$\Delta$ = ... (too few seeds for a test)'."""
    if math.isnan(c.p):
        return rf"$\Delta$\,=\,{latex.pp(c.diff)}\,pp ({_p(c)})"
    if not c.significant(alpha):
        return rf"within seed noise ($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)})"
    return rf"{'higher' if c.diff > 0 else 'lower'} by {_size(c.diff)}\,pp ({_p(c)})"


def versus(c: Comparison, alpha: float, a: str, b: str, metric: str = "test accuracy") -> str:
    """A sentence on `metric`: 'A scores 0.42 pp higher than b in test accuracy (p=0.010).', 'A and b are within seed
    noise of each other in test accuracy (...).', or, with fewer than two seeds on a side, the difference and no
    conclusion."""
    a = latex.sentence(a)
    if math.isnan(c.p):
        return (rf"{a} and {b} differ by {latex.pp(c.diff)}\,pp in {metric}; with too few seeds for a test we draw "
                "no conclusion.")
    if not c.significant(alpha):
        return (rf"{a} and {b} are within seed noise of each other in {metric} "
                rf"($\Delta$\,=\,{latex.pp(c.diff)}\,pp, {_p(c)}).")
    return rf"{a} scores {_size(c.diff)}\,pp {'higher' if c.diff > 0 else 'lower'} than {b} in {metric} ({_p(c)})."


def _loss(value: float) -> str:
    return NA if latex.missing(value) else f"{value:.3f}"


def _pair(c: Comparison, fmt: Callable[[float], str]) -> str:
    return rf"{fmt(c.a)} vs.\ {fmt(c.b)}, {_p(c)}"


def _join(*sentences: str) -> str:
    """The sentences that have data, joined; "" when none has."""
    return " ".join(t for t in sentences if t and t != NA)
