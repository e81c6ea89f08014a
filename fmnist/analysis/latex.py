"""LaTeX text helpers shared by the generated tables and macros: escaping, number formats, macro names,
and the booktabs table writer. One format per quantity, so a number reads the same in a table and in
the prose that quotes it."""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

NA = r"\NA{}"
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


#: Characters after which a long name (a run dir, an error) may break across lines.
_BREAK_AFTER = frozenset(",=_./-:;")


#: Non-ASCII characters that pdflatex's utf8 input with T1 fonts typesets (main.tex's preamble): Latin-1 and
#: Latin Extended-A letters, and the common typographic punctuation.
_TYPESET = frozenset(chr(c) for c in range(0xA0, 0x180)) | frozenset("–—‘’‚“”„†‡•…‰‹›€")


def _char(ch: str) -> str:
    """One character as LaTeX text: the specials escaped; whitespace controls (a newline in an error message) a
    space; a character pdflatex cannot typeset (emoji, CJK, Greek, other controls: one would stop the build)
    spelled as its ASCII decomposition (ő -> o is already typeset; ﬁ -> fi) or as [U+XXXX]."""
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if " " <= ch <= "~" or ch in _TYPESET:
        return ch
    if ch in "\t\n\r\f\v":
        return " "
    ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    if ascii_form and all(" " <= c <= "~" for c in ascii_form):
        return "".join(_ESCAPES.get(c, c) for c in ascii_form)
    return f"[U+{ord(ch):04X}]"


def escape(text: Any) -> str:
    """Plain text -> LaTeX-safe text that pdflatex can typeset, whatever the characters (see _char)."""
    return "".join(_char(ch) for ch in str(text))


def breakable(text: Any) -> str:
    """escape(), with a line break allowed after each separator (`,=_./-:;`): run dir names and error messages
    that would otherwise overflow a table column."""
    return "".join(_char(ch) + (r"\allowbreak{}" if ch in _BREAK_AFTER else "") for ch in str(text))


def key(text: Any) -> str:
    r"""A lookup key for ``\resultdef``/``\result`` and ``\ifpreset`` (which \detokenize it): escape(), but with
    underscores as they are, so that ``\result{stage2_skip}{model.skip=True}{test_acc}`` finds its value."""
    return escape(text).replace(r"\_", "_")


def plural(n: Any, word: str, words: str | None = None) -> str:
    """'1 seed', '3 seeds' (`words`: an irregular plural); n/a when `n` is missing."""
    if missing(n):
        return NA
    return f"{int(n)} {word if int(n) == 1 else words or word + 's'}"


def share(k: int, n: int, noun: str, adjective: str, nouns: str | None = None) -> str:
    """How many of `n` things are `adjective`, in words: 'the only comparison is (not) significant', 'all 3
    comparisons are ...', 'none of the 3 comparisons is ...', 'of the 3 comparisons, 1 is ...', 'of the 3 ..., 2 are'
    (never a digit first: it starts sentences)."""
    many = nouns or noun + "s"
    if n == 1:
        return f"the only {noun} is {'' if k else 'not '}{adjective}"
    if k == n:
        return f"all {n} {many} are {adjective}"
    if k == 0:
        return f"none of the {n} {many} is {adjective}"
    return f"of the {n} {many}, {k} {'is' if k == 1 else 'are'} {adjective}"


def and_join(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '4th', '11th', '21st'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sentence(text: str) -> str:
    """`text` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("<NA>", "nan")


def pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage number (0.9412 -> 94.12); n/a when missing."""
    return NA if missing(value) else f"{100.0 * float(value):.{digits}f}"


def pct_pm(mean: Any, std: Any, digits: int = 2) -> str:
    """mean ± std in percent; the std is left out when undefined (n < 2)."""
    if missing(mean):
        return NA
    return pct(mean, digits) + ("" if missing(std) else rf"\,$\pm$\,{pct(std, digits)}")


def pp(delta: Any, digits: int = 2) -> str:
    """A difference of fractions in percentage points, signed; one that rounds to zero is +0.00 (float noise such as
    -1e-17 prints no minus sign)."""
    if missing(delta):
        return NA
    value = round(100.0 * float(delta), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{value:+.{digits}f}".replace("-", "$-$")


def count(value: Any) -> str:
    """Parameters / FLOPs: 26.3k, 6.57M, 1.2G."""
    if missing(value):
        return NA
    v = float(value)
    shown = abs(float(f"{v:.3g}"))  # the unit of the number as printed: 999,999 is 1 M, not 1e+03 k
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if shown >= scale:
            return f"{v / scale:.3g}\\,{unit}"
    return f"{v:.0f}"


def thousands(value: Any) -> str:
    """A count with thousands separators, as the prose writes it: 54,000; n/a when missing."""
    return NA if missing(value) else f"{int(value):,}"


def seconds(mean: Any, std: Any = None) -> str:
    if missing(mean):
        return NA
    fmt = (lambda v: f"{float(v):.1f}") if float(mean) < 100 else (lambda v: f"{float(v):.0f}")
    return fmt(mean) + ("" if missing(std) else rf"\,$\pm$\,{fmt(std)}")


def p_digits(p: float) -> str:
    """A p-value ≥ 0.001 to three significant digits: 0.0496 and 0.0504 stay on their sides of α = 0.05 (three
    decimals would print both as 0.050)."""
    return f"{float(p):.3g}"


def pvalue(p: Any) -> str:
    if missing(p):
        return NA
    return "$<$0.001" if float(p) < 0.001 else p_digits(p)


def number(value: Any, digits: int = 3) -> str:
    """An integer as is, any other number with `digits` significant digits; bools as True/False."""
    if missing(value):
        return NA
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral) or (float(value).is_integer() and abs(float(value)) < 1e9):
        return str(int(value))
    return f"{float(value):.{digits}g}"


def macro_name(*parts: str) -> str:
    """A letters-only LaTeX command name: ("stage2_skip", "best") -> stageTwoSkipBest."""
    words: list[str] = []
    for part in parts:
        for token in re.findall(r"[A-Za-z]+|\d", str(part)):
            words.append(_DIGITS[int(token)] if token.isdigit() else token)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return (name[:1].lower() + name[1:]) or "unnamed"


def distinct(names: Iterable[Any], name_of: Callable[[str, int], str],
             forms: Callable[[str], Iterable[str]] = lambda stem: [stem], taken: Iterable[str] = ()) -> dict[str, str]:
    """Name -> a stem of its own, name_of(name, 1), whose `forms` neither an earlier name's nor `taken` already
    has: a name that would clash gets name_of(name, 2), name_of(name, 3), ..."""
    used, stems = set(taken), {}
    for name in dict.fromkeys(map(str, names)):
        stem, n = name_of(name, 1), 1
        while any(form in used for form in forms(stem)):
            n += 1
            stem = name_of(name, n)
        stems[name] = stem
        used.update(forms(stem))
    return stems


def macro_stems(names: Iterable[Any], forms: Callable[[str], Iterable[str]] = lambda stem: [stem],
                taken: Iterable[str] = ()) -> dict[str, str]:
    """Name -> a macro stem of its own (macro_name(name)), whose macros (`forms` of the stem) neither another name's
    nor `taken` already has: a name that would clash (relu6 beside relu_6, both reluSix; a digit, a character a
    macro name cannot hold) gets macro_name(name, "alt2"), "alt3", ... (reluSixAltTwo), earlier names first."""
    return distinct(names, lambda name, n: macro_name(name, *([f"alt{n}"] if n > 1 else [])), forms, taken)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], align: str, caption: str, label: str,
          size: str = r"\footnotesize", placement: str = "htbp") -> str:
    """A booktabs table float (cells already LaTeX)."""
    lines = [rf"\begin{{table}}[{placement}]", r"\centering", size, rf"\caption{{{caption}}}\label{{{label}}}",
             r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",  # shrink only if too wide
             rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(columns) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


def long_table(columns: Sequence[str], rows: Sequence[Sequence[str]], align: str, caption: str, label: str,
               size: str = r"\footnotesize") -> str:
    """A booktabs longtable (cells already LaTeX): not a float, so that a long list breaks across pages."""
    header = " & ".join(columns) + r" \\"
    lines = ["{" + size, rf"\begin{{longtable}}{{{align}}}", rf"\caption{{{caption}}}\label{{{label}}}\\",
             r"\toprule", header, r"\midrule", r"\endfirsthead", r"\toprule", header, r"\midrule", r"\endhead",
             r"\bottomrule", r"\endlastfoot"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\end{longtable}}", ""]
    return "\n".join(lines)


def shown_path(path: str | Path) -> str:
    """A path as the report names it: relative to the working directory when it lies below it (multirun/study,
    docs/bench/...), else absolute; the same folder reads the same however it was given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()
