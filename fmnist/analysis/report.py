"""The LaTeX report: regenerate report/{tables,figures,macros.tex} from an analysis, then build main.pdf
with latexmk. report/main.tex (written by hand) only quotes numbers through the generated macros."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from fmnist.analysis import report_bench, report_tables
from fmnist.analysis.errors import ReportError
from fmnist.analysis.macros import macros_tex
from fmnist.analysis.options import check_report_dir
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.publish import locked, publish_files, undo_killed_publish
from fmnist.analysis.style import slugs
from fmnist.config import CONF_DIR
from fmnist.train.run_dir import atomic_write_text

log = logging.getLogger("fmnist.analysis")

TEX_PACKAGES = "texlive-latex-recommended texlive-science latexmk"
GENERATED_DIRS = ("tables", "figures")
LATEXMK_TIMEOUT_S = 600


def write_sources(result: AnalysisResult, report_dir: Path) -> None:
    """Replace the generated part of `report_dir` (tables/, figures/, macros.tex) with this analysis's."""
    check_report_dir(report_dir)
    for name in GENERATED_DIRS:  # stale files of an earlier analysis must not leak into this report
        shutil.rmtree(report_dir / name, ignore_errors=True)
        (report_dir / name).mkdir(parents=True)
    for name, pdf in result.figures.items():
        shutil.copyfile(pdf, report_dir / "figures" / f"{name}.pdf")
    tables = report_dir / "tables"
    for preset, slug in slugs(result.collection.swept).items():
        atomic_write_text(tables / f"preset_{slug}.tex", report_tables.preset_table(result, preset))
    atomic_write_text(tables / "presets.tex", report_tables.presets_section(result))
    atomic_write_text(tables / "problems.tex", report_tables.problems_table(result))
    atomic_write_text(tables / "provenance.tex", report_tables.provenance_table(result))
    atomic_write_text(tables / "per_class.tex", report_tables.per_class_table(result))
    atomic_write_text(tables / "models_per_class.tex", report_tables.models_per_class_table(result))
    atomic_write_text(tables / "dead.tex", report_tables.dead_table(result))
    atomic_write_text(tables / "ensembles.tex", report_tables.ensembles_table(result))
    atomic_write_text(tables / "key_comparisons.tex", report_tables.key_comparisons_table(result))
    atomic_write_text(tables / "lr_schedules.tex", report_tables.lr_schedules_table(result))
    atomic_write_text(tables / "main_effects.tex", report_tables.main_effects_table(result))
    atomic_write_text(tables / "models.tex", report_tables.models_table(CONF_DIR))
    atomic_write_text(tables / "bench.tex", report_bench.bench_section(result.bench, result.bench_dir))
    atomic_write_text(report_dir / "macros.tex", macros_tex(result))


def latexmk() -> str:
    """Path of latexmk, or a ReportError saying how to install TeX."""
    path = shutil.which("latexmk")
    if path is None or shutil.which("pdflatex") is None:
        raise ReportError(f"latexmk/pdflatex not found: install TeX (Debian/Ubuntu: apt-get install "
                          f"--no-install-recommends {TEX_PACKAGES})")
    return path


def build_pdf(report_dir: Path, date: int | None = None) -> Path:
    """latexmk -pdf main.tex in `report_dir`; a LaTeX error raises ReportError with its first message. `date`
    (Unix seconds) is the PDF's creation date (SOURCE_DATE_EPOCH), so that the same sources build the same file."""
    cmd = [latexmk(), "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "main.tex"]
    env = {**os.environ, **({"SOURCE_DATE_EPOCH": str(int(date)), "FORCE_SOURCE_DATE": "1"} if date is not None
                            else {})}
    try:
        proc = subprocess.run(cmd, cwd=report_dir, capture_output=True, text=True, timeout=LATEXMK_TIMEOUT_S,
                              env=env)
    except subprocess.TimeoutExpired:
        raise ReportError(f"latexmk did not finish within {LATEXMK_TIMEOUT_S} s in {report_dir}") from None
    pdf = report_dir / "main.pdf"
    if proc.returncode != 0 or not pdf.is_file():
        raise ReportError(f"latexmk failed in {report_dir}: {_first_error(proc.stdout + proc.stderr)} "
                          f"(full log: {report_dir / 'main.log'})")
    return pdf


def _undefined_command(error: str, following: list[str]) -> str | None:
    """The command of an "Undefined control sequence" error: the last one on the `l.42 ... \\name` context line
    that follows it. None for another error, or without that line."""
    if "Undefined control sequence" not in error:
        return None
    for line in following:
        if context := re.match(r"^l\.\d+ (.*)$", line):
            commands = re.findall(r"\\[A-Za-z@]+", context.group(1))
            return commands[-1] if commands else None
    return None


#: latexmk's own account of a failure that is not a TeX error (a missing file, a rule it will not run): the line
#: and the indented lines that follow it.
_LATEXMK_CAUSE = re.compile(r"^(Latexmk: (Failure in processing|I WON'T RUN|Missing input file)|"
                            r"Bib file\(s\) not found)")


def _first_error(output: str) -> str:
    """The first TeX error with its file and line (and, for an undefined command, the command: TeX names it only
    at the end of its `l.N` context line), else latexmk's causes (each once), else the last line."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^(\S+\.tex:\d+:|! )", line):
            command = _undefined_command(line, lines[i + 1:i + 12])
            return f"{line.strip().rstrip('.')}: {command}" if command else line.strip()
    causes: dict[str, None] = {}
    for i, line in enumerate(lines):
        if _LATEXMK_CAUSE.match(line):
            block = [line.strip()]
            for follow in lines[i + 1:]:
                if not follow[:1].isspace() or not follow.strip():
                    break
                block.append(follow.strip())
            causes[" ".join(block)] = None
    if causes:
        return "; ".join(causes)
    tail = [ln for ln in lines if ln.strip()][-1:]
    return tail[0] if tail else "no output"


def newest_run_date(result: AnalysisResult) -> int | None:
    """When the newest completed run finished (Unix seconds, its summary.json's finished_at), the report's date;
    None when no run says."""
    dates = []
    for finished in result.collection.completed.get("finished_at", []):
        try:
            dates.append(datetime.fromisoformat(str(finished)).timestamp())
        except (ValueError, TypeError):
            continue
    return int(max(dates)) if dates else None


#: What a build writes besides the generated sources: the PDF and latexmk's files, not copied into the staging
#: folder; those of KEPT_BUILD_FILES are moved back with the PDF (the log, for a user to read).
BUILD_FILES = tuple(f"main.{ext}" for ext in ("pdf", "aux", "log", "out", "bbl", "blg", "fls", "fdb_latexmk"))
KEPT_BUILD_FILES = BUILD_FILES[:6]  # .fls and .fdb_latexmk name the staging folder
GENERATED_FILES = ("macros.tex",)
STAGING_PREFIX = ".report-staging-"
FAILED_DIR = ".report-failed"  # the last failed build, to read its log


def build_report(result: AnalysisResult, report_dir: Path) -> Path:
    """Regenerate the report's tables, figures and macros from `result` and build the PDF, in a staging copy of
    `report_dir`'s own files (main.tex, the bibliography, anything else there): only a successful build replaces
    the previous report's generated files and PDF, so a failure leaves them as they were (the failed build is kept
    in `report_dir`/.report-failed/ to read its log)."""
    check_report_dir(report_dir)
    try:
        undo_killed_publish(report_dir, STAGING_PREFIX)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=report_dir))
    except OSError as exc:
        raise ReportError(f"cannot write to report_dir {report_dir}: {exc.strerror or exc}") from exc
    try:
        for item in report_dir.iterdir():
            if item.name in (*GENERATED_DIRS, *GENERATED_FILES, *BUILD_FILES, FAILED_DIR) or \
                    item.name.startswith(STAGING_PREFIX):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, staging / item.name)
        write_sources(result, staging)
        try:
            build_pdf(staging, newest_run_date(result))
        except ReportError as exc:  # keep the failed build to read its log; the report stays as it was
            failed = report_dir / FAILED_DIR
            with locked(report_dir):  # in turn with another build's publish or failure into report_dir
                shutil.rmtree(failed, ignore_errors=True)
                os.replace(staging, failed)
            raise ReportError(f"{str(exc).replace(str(staging), str(failed))}; the previous report in {report_dir} "
                              f"is unchanged") from None
        _publish(staging, report_dir)
        with locked(report_dir):
            shutil.rmtree(report_dir / FAILED_DIR, ignore_errors=True)  # an earlier failure's build is out of date
    except OSError as exc:
        raise ReportError(f"cannot write the report to {report_dir}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pdf = report_dir / "main.pdf"
    log.info("report built: %s", pdf)
    return pdf


def _publish(staging: Path, report_dir: Path) -> None:
    """Move the built report from `staging` into `report_dir`, all or nothing (fmnist.analysis.publish): the
    generated folders' files (removing the previous report's that this one did not write), macros.tex, and the PDF
    with latexmk's kept files."""
    moves = [(p, report_dir / p.relative_to(staging)) for name in GENERATED_DIRS
             for p in sorted((staging / name).rglob("*")) if p.is_file()]
    moves += [(staging / name, report_dir / name) for name in (*GENERATED_FILES, *KEPT_BUILD_FILES)
              if (staging / name).is_file()]
    publish_files(staging, report_dir, moves, lambda: _generated(report_dir))


def _generated(report_dir: Path) -> list[Path]:
    """The files of `report_dir`'s generated folders (the previous report's tables and figures)."""
    return [p for name in GENERATED_DIRS if (report_dir / name).is_dir()
            for p in (report_dir / name).rglob("*") if p.is_file() or p.is_symlink()]
