"""The LaTeX report: generated tables/macros/figures, the latexmk build, and a text-based PDF.

Without TeX (latexmk, pdflatex, pdftotext) the build tests skip, except in CI (CI=true), where they fail:
CI installs TeX (.ci/run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from fmnist.analysis import latex
from fmnist.analysis import report as report_mod
from fmnist.analysis.errors import ReportError
from fmnist.analysis.options import check_report_dir

ROOT = Path(__file__).resolve().parents[1]
H200_BENCH = ROOT / "docs" / "bench" / "2026-11-28-h200"  # the committed benchmark of the first GPU session
TEX_TOOLS = ("latexmk", "pdflatex", "bibtex", "pdftotext")
INSTALL = "apt-get install --no-install-recommends texlive-latex-recommended texlive-science latexmk poppler-utils"


@pytest.fixture
def tex() -> None:
    missing = [t for t in TEX_TOOLS if shutil.which(t) is None]
    if missing:
        message = f"TeX tools missing: {', '.join(missing)} ({INSTALL})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI must install them (.ci/run)")
        pytest.skip(message)


def report_copy(tmp_path: Path) -> Path:
    """The hand-written part of report/ in a temp dir (tests never write into the repository)."""
    target = tmp_path / "report"
    target.mkdir()
    for name in ("main.tex", "references.bib"):
        shutil.copyfile(ROOT / "report" / name, target / name)
    return target


#: A number the prose quotes that is missing ("n/a %", "± n/a", "p = n/a"; a table may say n/a for a failed cell).
PROSE_NA = re.compile(r"n/a\s*(%|pp)|±\s*n/a|p\s*=\s*n/a|over n/a")


def macros(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^\\newcommand\{\\(\w+)\}\{(.*)\}$", path.read_text(), flags=re.M))


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_report_builds_a_text_pdf_quoting_the_table(tiny_analysis, tex, tmp_path: Path) -> None:
    report_dir = report_copy(tmp_path)
    pdf = report_mod.build_report(tiny_analysis.result, report_dir)
    cells = tiny_analysis.result.cells
    ref = cells[cells["is_reference"]].iloc[0]
    ref_acc = latex.pct(ref["test_acc_mean"])

    m = macros(report_dir / "macros.tex")  # the numbers in the prose come from the table
    assert m["tinyRefAcc"] == ref_acc and m["nRuns"] == "5 runs" and m["nFailed"] == "1"
    assert m["accResNetNine"] == latex.NA  # stage 1 was not analysed: n/a, and the report still builds
    conf = cells[(cells["preset"] == tiny_analysis.result.classes.preset)
                 & (cells["cell"] == tiny_analysis.result.classes.cell)].iloc[0]
    assert m["confAcc"] == latex.pct(conf["test_acc_mean"])  # the number the cell's table shows, not a pooled one
    assert ref_acc in (report_dir / "tables" / "preset_tiny.tex").read_text()
    assert r"\toprule" in (report_dir / "tables" / "preset_tiny.tex").read_text()  # booktabs
    assert {p.stem for p in (report_dir / "figures").glob("*.pdf")} == set(tiny_analysis.result.figures)

    text = pdf_text(pdf)
    assert ref_acc in text  # a number of the table, extracted as text: the PDF is text-based
    assert "Preset tiny" in text and "failed_lr" in text  # the failed run is listed
    assert "Welch" in text and "Experimental results" in text and "Discussion and conclusions" in text
    assert "??" not in text and not PROSE_NA.search(text)  # no sentence of missing numbers, no missing figure
    flowing = re.sub(r"-\s+", "-", " ".join(text.split()))  # lines joined, hyphenation at a line end undone
    assert "is the official Fashion-MNIST test set (its 10,000 images and labels, checked by content)" in flowing
    ensembles = tiny_analysis.result.ensembles  # 2 seeds of 2 cells: the paragraph quotes their ensembles.csv
    assert m["ensCells"] == "2 cells" and "Seed ensembles. The seeds of a cell are compared" in flowing
    assert m["readEnsembles"].startswith("Over the 2 cells with two seeds or more (2 seeds each)")
    assert m["ensChurn"] == latex.pct(ensembles["churn"].mean()) and f"disagree on {m['ensChurn']} %" in flowing
    seeds = m["seedsPlanned"].replace("--", "\u2013")  # "1--2 seeds": the failed run's cell ran one seed
    assert f"the whole study, {seeds} of every cell," in flowing and "three seeds" not in flowing
    # dated by its newest run, not by the build: the same runs rebuild the same PDF
    newest = report_mod.newest_run_date(tiny_analysis.result)
    info = subprocess.run(["pdfinfo", "-isodates", str(pdf)], capture_output=True, text=True, check=True).stdout
    created = re.search(r"CreationDate:\s+(\S+)", info).group(1)
    assert newest is not None and datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() == newest


@pytest.mark.slow
def test_report_from_the_cli(tiny_sweep, tex, tmp_path: Path) -> None:
    report_dir = report_copy(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analyze.py"), f"sweep_dir={tiny_sweep.root}", f"out_dir={tmp_path / 'out'}",
         "report=true", f"report_dir={report_dir}", "figures=false", "dead_neurons=false", f"bench_dir={H200_BENCH}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "report built" in proc.stdout + proc.stderr
    text = pdf_text(report_dir / "main.pdf")
    flowing = " ".join(text.split())  # the speed section quotes the committed H200 benchmark
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["bench_dir"] == str(H200_BENCH)
    assert "fast95 reached 95.69 % on the official test set after 40 epochs in 35.1 s of training" in flowing
    assert "Seconds per training epoch of 60,000 images (NVIDIA H200, torch 2.11.0+cu130, 2026-11-28" in flowing
    assert re.search(r"resnet9\s+512\s+8\.17\s+0\.831\s+0\.588\s+–\s+–\s+13\.9×\s+0\.4 \(missed\)", text)
    assert re.search(r"vgg11\s+512\s+8\.99\s+1\.01\s+0\.401\s", text)  # three digits: 0.401 missed 0.4
    assert "was not generated" in text  # figures=false: every figure says so instead of failing the build
    assert re.search(r"covers 5 runs", text)
    assert "??" not in text and not PROSE_NA.search(text)  # no reference to an absent figure, no missing numbers
    assert "Activation and dead neurons" not in text  # dead_neurons=false: the paragraph is left out


def test_missing_tex_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_mod.shutil, "which", lambda name: None)
    with pytest.raises(ReportError, match="apt-get install --no-install-recommends texlive-latex-recommended"):
        report_mod.latexmk()


def test_latex_error_is_reported_with_its_line(tex, tmp_path: Path) -> None:
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n")
    with pytest.raises(ReportError, match=r"main\.tex:3: Undefined control sequence: \\undefinedmacro \(full log"):
        report_mod.build_pdf(tmp_path)  # the command too: TeX names it only at the end of its context line


@pytest.mark.slow
def test_a_failed_build_leaves_the_previous_report_as_it_was(tiny_analysis, tex, tmp_path: Path) -> None:
    """The report is built in a staging copy: a LaTeX error (here in main.tex) leaves the earlier PDF, macros,
    tables and figures untouched, and the failed build is kept in .report-failed/ with its log."""
    report_dir = report_copy(tmp_path)
    earlier = {"main.pdf": "earlier pdf", "macros.tex": "% earlier", "tables/presets.tex": "earlier table",
               "figures/capacity.pdf": "earlier figure", "notes.txt": "the user's"}
    for name, text in earlier.items():
        (report_dir / name).parent.mkdir(exist_ok=True)
        (report_dir / name).write_text(text)
    main = report_dir / "main.tex"
    main.write_text(main.read_text().replace("\\begin{document}", "\\begin{document}\n\\undefinedmacro", 1))
    with pytest.raises(ReportError) as failure:
        report_mod.build_report(tiny_analysis.result, report_dir)
    message = str(failure.value)
    assert "main.tex" in message and "Undefined control sequence" in message
    assert str(report_dir / ".report-failed" / "main.log") in message and "is unchanged" in message
    assert {name: (report_dir / name).read_text() for name in earlier} == earlier
    assert sorted(p.name for p in (report_dir / "tables").iterdir()) == ["presets.tex"]
    assert (report_dir / ".report-failed" / "main.log").is_file()
    assert (report_dir / ".report-failed" / "notes.txt").is_file()  # the build saw report_dir's own files
    assert not list(report_dir.glob(".report-staging-*"))


@pytest.mark.slow
def test_a_failed_build_is_kept_in_turn_with_other_builds_into_the_report_dir(tiny_analysis, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builds failing at once into one report_dir: each removed .report-failed/ and renamed its own build there,
    and the second rename failed ('Directory not empty'), hiding its LaTeX error. The failed build is now kept under
    the lock that publishes into report_dir take (fmnist.analysis.publish.locked): while another process holds it,
    the failure waits."""
    report_dir = report_copy(tmp_path)
    holder_code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
                   "print('held', flush=True); sys.stdin.read()")
    seen: list[bool] = []

    def failing_build(staging: Path, date: object = None) -> None:  # another process takes the lock meanwhile
        holder = subprocess.Popen([sys.executable, "-c", holder_code, str(report_dir)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "held\n"

        def release() -> None:
            time.sleep(1.0)
            seen.append((report_dir / report_mod.FAILED_DIR).exists())
            holder.stdin.close()
            holder.wait()

        threading.Thread(target=release).start()
        raise ReportError(f"main.tex:3: Undefined control sequence (full log: {staging / 'main.log'})")

    monkeypatch.setattr(report_mod, "build_pdf", failing_build)
    with pytest.raises(ReportError, match=r"Undefined control sequence .*\.report-failed/main\.log\)"):
        report_mod.build_report(tiny_analysis.result, report_dir)
    assert seen == [False]  # not kept while the other process held report_dir
    assert (report_dir / report_mod.FAILED_DIR / "macros.tex").is_file()


def _earlier_report(report_dir: Path) -> dict[str, bytes]:
    """A previous report in `report_dir` (its generated files, its PDF and a file of the user's), as bytes by name."""
    earlier = {"main.pdf": "earlier pdf", "main.log": "earlier log", "macros.tex": "% earlier",
               "tables/presets.tex": "earlier table", "figures/capacity.pdf": "earlier figure",
               "figures/dropped_preset.pdf": "a figure this report no longer has", "notes.txt": "the user's"}
    for name, text in earlier.items():
        (report_dir / name).parent.mkdir(exist_ok=True)
        (report_dir / name).write_text(text)
    return snapshot(report_dir)


def snapshot(report_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(report_dir)): p.read_bytes() for p in sorted(report_dir.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stop", [KeyboardInterrupt("SIGTERM"), OSError(16, "Device or resource busy")])
def test_a_build_stopped_while_it_replaces_the_previous_report_puts_that_back(
        stop: BaseException, tiny_analysis, tex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        stop_at_rename) -> None:
    """Ctrl-C (SIGTERM) or an error between two of the renames that move a built report in left report/ half new,
    half old (new tables, the old macros.tex and PDF), though only a successful build was to replace it."""
    report_dir = report_copy(tmp_path)
    before = _earlier_report(report_dir)
    moved = stop_at_rename(3, stop, lambda dst: dst.is_relative_to(report_dir) and
                           report_mod.STAGING_PREFIX not in str(dst))
    with pytest.raises(type(stop) if isinstance(stop, KeyboardInterrupt) else ReportError):
        report_mod.build_report(tiny_analysis.result, report_dir)
    monkeypatch.undo()
    assert len(moved) >= 3 and snapshot(report_dir) == before  # stopped at the third rename
    assert not list(report_dir.glob(f"{report_mod.STAGING_PREFIX}*"))


@pytest.mark.slow
def test_a_build_killed_while_it_replaces_the_previous_report_is_undone_by_the_next(
        tiny_analysis, tex, tmp_path: Path, killed_at_third_rename) -> None:
    """kill -9 between two of those renames: the next build into report/ first puts the previous report back (here
    that build fails, so report/ is left as the killed one found it)."""
    report_dir = report_copy(tmp_path)
    before = _earlier_report(report_dir)
    staging = report_dir / f"{report_mod.STAGING_PREFIX}killed"
    for name, text in (("tables/presets.tex", "new table"), ("tables/models.tex", "new"), ("macros.tex", "% new"),
                       ("figures/capacity.pdf", "new figure"), ("main.pdf", "new pdf")):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(text)
    killed_at_third_rename("from fmnist.analysis import report",
                           f"report._publish(Path({str(staging)!r}), Path({str(report_dir)!r}))")
    assert snapshot(report_dir) != before  # killed half-way
    main = report_dir / "main.tex"
    main.write_text(main.read_text().replace("\\begin{document}", "\\begin{document}\n\\undefinedmacro", 1))
    before["main.tex"] = main.read_bytes()
    with pytest.raises(ReportError, match="is unchanged"):
        report_mod.build_report(tiny_analysis.result, report_dir)
    shutil.rmtree(report_dir / report_mod.FAILED_DIR)
    assert snapshot(report_dir) == before and not list(report_dir.glob(f"{report_mod.STAGING_PREFIX}*"))


@pytest.mark.slow
def test_write_sources_needs_main_tex(tiny_analysis, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no main.tex"):
        report_mod.write_sources(tiny_analysis.result, tmp_path)


def test_a_count_that_rounds_up_to_the_next_unit_is_written_in_it() -> None:
    """999,999 parameters are 1 M, not '1e+03 k' (three significant digits of 999.999 k)."""
    assert latex.count(999_999) == r"1\,M" and latex.count(999_950_000) == r"1\,G"
    assert latex.count(999_499) == r"999\,k" and latex.count(26_300) == r"26.3\,k" and latex.count(999) == "999"


def test_latex_helpers() -> None:
    import numpy as np
    import pandas as pd

    assert latex.escape("a_b & 50% #1") == r"a\_b \& 50\% \#1"
    assert latex.macro_name("stage2_skip", "best") == "stageTwoSkipBest"
    assert latex.macro_name("acc", "ResNet9") == "accResNetNine"
    assert latex.pct(0.94123) == "94.12" and latex.pct(float("nan")) == latex.NA
    assert latex.pct_pm(0.9, 0.01) == r"90.00\,$\pm$\,1.00" and latex.pct_pm(0.9, None) == "90.00"
    assert latex.count(11_172_810) == r"11.2\,M" and latex.pp(-0.0123) == "$-$1.23"
    assert latex.pp(-1e-17) == latex.pp(0.0) == latex.pp(-0.00004) == "+0.00" and latex.pp(-0.00006) == "$-$0.01"
    assert latex.escape("é – ﬁ λ 😀\nx") == "é – fi [U+03BB] [U+1F600] x"  # what pdflatex cannot set, spelled
    assert latex.thousands(54000) == "54,000" and latex.thousands(None) == latex.NA
    assert latex.escape("~/runs ^2 {x}") == r"\textasciitilde{}/runs \textasciicircum{}2 \{x\}"  # not a space
    assert latex.escape("Erdős Łódź") == "Erdős Łódź"  # Latin Extended-A is typeset as it is
    assert latex.number(True) == "True" and latex.number(np.bool_(False)) == "False"  # not 1 and 0
    assert (latex.number(3.0), latex.number(0.1), latex.number(1e30)) == ("3", "0.1", "1e+30")
    for na in (pd.NA, None, float("nan")):  # pd.NA: a missing value of the run table's Int64 or boolean column
        assert latex.pct(na) == latex.number(na) == latex.plural(na, "seed") == latex.NA


def test_text_pdflatex_cannot_typeset_still_builds(tex, tmp_path: Path) -> None:
    """A failed run's error message (any text a user or a library wrote) with emoji, CJK, Greek and control
    characters goes into the problems table; the report must still build."""
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.report_tables import problems_table

    error = "データ 😀 λ=0.1\x00 failed\n\nagain"
    problems = pd.DataFrame([{"run": "0_note=ü😀", "preset": "stage2_skip", "status": "failed", "error": error}])
    (tmp_path / "problems.tex").write_text(problems_table(SimpleNamespace(collection=SimpleNamespace(
        problems=lambda: problems))))
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n"
        "\\usepackage{booktabs,longtable,array}\n\\begin{document}\n\\input{problems}\n\\end{document}\n")
    text = " ".join(pdf_text(report_mod.build_pdf(tmp_path)).split())
    assert "[U+30C7]" in text and "[U+1F600] [U+03BB]=0.1[U+0000] failed again" in text and "ü" in text


def test_depth_and_width_pairs_are_quoted_from_their_cells() -> None:
    """The stage1_capacity pairs (ResNet-34 vs 18 at the largest common width, ResNet-18 at its largest vs its
    smallest width: here 64 and 16) compare the right cells' seeds, Holm-corrected as key comparisons."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from fmnist.analysis import latex
    from fmnist.analysis.macros import _named
    from fmnist.analysis.stats import holm, welch

    accs = {("resnet18", 16): [0.90, 0.91, 0.905], ("resnet18", 64): [0.93, 0.935, 0.94],
            ("resnet34", 64): [0.94, 0.942, 0.938]}
    runs = pd.DataFrame([{"preset": "stage1_capacity", "cell": f"model={m}, model.width={w}", "test_acc": a}
                         for (m, w), values in accs.items() for a in values])
    cells = pd.DataFrame([{"preset": "stage1_capacity", "cell": f"model={m}, model.width={w}", "model": m,
                           "model.width": w, "n": 3, "metric": "test_acc", "test_acc_mean": np.mean(v),
                           "test_acc_std": np.std(v, ddof=1), "params_mean": 1.0, "delta": 0.0, "verdict": "x"}
                          for (m, w), v in accs.items()])
    result = SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs), alpha=0.05)
    m = _named(result)
    depth_p = welch(np.array(accs[("resnet34", 64)]), np.array(accs[("resnet18", 64)]))
    width_p = welch(np.array(accs[("resnet18", 64)]), np.array(accs[("resnet18", 16)]))
    assert m["diffDepth"] == latex.pp(np.mean(accs[("resnet34", 64)]) - np.mean(accs[("resnet18", 64)]))
    depth_holm, width_holm = holm([depth_p, width_p])  # the two key comparisons analysed here: one family
    assert m["pDepth"] == latex.pvalue(depth_holm) and depth_p > 0.05 and m["verdictDepth"] == "within seed noise"
    assert m["diffWidth"] == latex.pp(0.935 - 0.905)
    assert m["pWidth"] == latex.pvalue(width_holm) and width_holm < 0.05 and m["verdictWidth"] == "higher"


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_speed_macros_sum_the_training_time(tiny_analysis) -> None:
    from fmnist.analysis.latex import NA
    from fmnist.analysis.macros import build_macros

    m = build_macros(tiny_analysis.result)
    runs = tiny_analysis.result.collection.completed
    assert m["trainHours"] == f"{runs['train_time_s'].sum() / 3600:.2f}"
    assert m["trainEpochs"] == f"{int(runs['epochs_completed'].sum())} epochs"
    assert m["secPerEpochResNetNine"] == NA  # the tiny sweep has no stage1_models runs


def test_seconds_per_epoch_of_a_stage1_model() -> None:
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _speed

    runs = pd.DataFrame({"preset": "stage1_models", "cell": "model=resnet9", "train_time_s": [10.0, 18.0, 40.0],
                         "epochs_completed": [5, 6, 5], "device_name": ["NVIDIA H100 80GB HBM3"] * 3})
    cells = pd.DataFrame([{"preset": "stage1_models", "cell": "model=resnet9", "model": "resnet9", "n": 3}])
    m = _speed(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    # the runs' mean of 2, 3 and 8 s per epoch (not their median, 3); 68 s in all
    assert m["secPerEpochResNetNine"] == "4.33" and m["trainHours"] == "0.02" and m["trainEpochs"] == "16 epochs"
    assert m["trainDevices"] == "NVIDIA H100 80GB HBM3"
    assert m["readSecPerEpoch"] == (r"Seconds per training epoch in the \texttt{stage1\_models} runs, validation "
                                    "included: ResNet-9 4.33.")  # which runs: a model's runs in other presets differ


def test_confusion_macros_name_the_worst_and_best_class_and_the_top_confusion() -> None:
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from fmnist.analysis.macros import _confusion
    from fmnist.analysis.predictions import ClassResults

    confusion = np.array([[5, 3, 0], [1, 3, 0], [1, 0, 7]])
    per_class = pd.DataFrame({"run_dir": ["r", "s"] * 3, "class": ["Coat", "Coat", "Bag", "Bag", "Shirt", "Shirt"],
                              "accuracy": [0.75, 0.5, 1.0, 0.5, 1.0, 0.9]})
    classes = ClassResults("model.skip=True", "stage2_skip", confusion, per_class, pd.DataFrame(), "r",
                           ("Coat", "Bag", "Shirt"))
    cells = pd.DataFrame([{"preset": "stage2_skip", "cell": "model.skip=True", "metric": "test_acc",
                           "test_acc_mean": 0.9}])
    m = _confusion(SimpleNamespace(classes=classes, cells=cells))
    assert (m["worstClass"], m["worstClassAcc"], m["bestClass"], m["bestClassAcc"]) == ("Coat", "62.50", "Shirt",
                                                                                         "95.00")
    assert (m["topConfTrue"], m["topConfPred"], m["topConfRate"]) == ("Coat", "Bag", "37.5")  # 3 of 8 coats
    assert (m["confAcc"], m["confRuns"]) == ("90.00", "2 seeds")


def test_reference_configuration_is_the_cell_most_presets_share(tmp_path: Path) -> None:
    """stage1_capacity's reference (ResNet18 at width 64) comes first in stage order, but the training setup
    describes the study's base run, the reference of most presets (ResNet9)."""
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _setup

    rows = []
    for preset, model, epochs in (("stage1_capacity", "resnet18", 7), ("stage2_norm", "resnet9", 15),
                                  ("stage2_skip", "resnet9", 15)):
        run_dir = tmp_path / preset / "0_ref"
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "config": {"trainer": {
            "epochs": epochs, "batch_size": 128}}}))
        rows.append({"preset": preset, "cell": "ref", "model": model, "run_dir": str(run_dir), "n_train": 1,
                     "n_val": 1, "n_test": 1})
    runs = pd.DataFrame(rows)
    cells = pd.DataFrame([{"preset": r["preset"], "cell": "ref", "is_reference": True, "n": 3} for r in rows])
    m = _setup(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert m["setupModel"] == "resnet9" and m["setupEpochs"] == "15 epochs" and m["setupBatch"] == "128"


def test_the_reference_configuration_counts_its_epochs_with_their_noun(tmp_path: Path) -> None:
    """\\setupEpochs carries its noun, so a 1-epoch sweep reads "trained for 1 epoch" (it read "1 epochs": main.tex
    wrote the noun after the number); without a recorded number of epochs it is n/a."""
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _setup

    def setup(trainer: dict) -> dict[str, str]:
        run_dir = tmp_path / str(len(list(tmp_path.iterdir())))
        run_dir.mkdir()
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "config": {"trainer": trainer}}))
        runs = pd.DataFrame([{"preset": "mine", "cell": "ref", "model": "resnet9", "run_dir": str(run_dir)}])
        cells = pd.DataFrame([{"preset": "mine", "cell": "ref", "is_reference": True, "n": 1}])
        return _setup(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))

    assert setup({"epochs": 1})["setupEpochs"] == "1 epoch" and setup({"epochs": 2})["setupEpochs"] == "2 epochs"
    assert setup({"batch_size": 128})["setupEpochs"] == latex.NA
    main = (ROOT / "report" / "main.tex").read_text()
    assert r"trained for \setupEpochs{} with batch size" in main and r"\setupEpochs{} epochs" not in main


@pytest.mark.slow  # the real tiny sweep (session fixture)
def test_provenance_table_names_each_presets_folder(tiny_analysis) -> None:
    from fmnist.analysis.report_tables import provenance_table

    runs = tiny_analysis.result.collection.runs
    table = provenance_table(tiny_analysis.result)
    commit = str(runs["git_commit"].dropna().iloc[0])[:7]
    folder = latex.escape(tiny_analysis.sweep.root.resolve().as_posix())  # outside the working directory: absolute
    row = rf"\texttt{{tiny}} & \texttt{{{folder}}} & {len(runs)} & {int((runs['status'] == 'completed').sum())} & 0 & "
    assert row + latex.escape(commit) in table and r"\label{tab:provenance}" in table


def test_operations_macros_count_graphs_fallbacks_and_resumes() -> None:
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _operations

    runs = pd.DataFrame({
        "precision": ["bf16", "bf16", "bf16", "fp32"],
        "cuda_graphs": ["captured", "captured", "failed: CUDA error: operation not permitted", None],
        "resumed_from_epoch": [None, 7, None, None],
        "reused_from": [None, None, None, "../stage2_skip/0_x"],  # a copy: not counted again
    })
    text = _operations(SimpleNamespace(collection=SimpleNamespace(completed=runs)))["readOperations"]
    assert text.startswith("Of the 3 trained runs, 2 replayed their training step as CUDA graphs and 1 fell back")
    assert r"(most often: \texttt{CUDA error: operation not permitted})." in text
    assert "Numeric precision: bf16 (3 runs)." in text
    assert text.endswith(" In all, 1 run was interrupted (preemption, a session's time limit) and resumed from "
                         "the last checkpoint.")
    runs["resumed_from_epoch"] = None
    text = _operations(SimpleNamespace(collection=SimpleNamespace(completed=runs)))["readOperations"]
    assert text.endswith(" No run was interrupted and resumed from a checkpoint.")  # no sentence starts with a digit
    runs["cuda_graphs"] = ["captured"] * 3 + [None]
    text = _operations(SimpleNamespace(collection=SimpleNamespace(completed=runs)))["readOperations"]
    assert text.startswith("Of the 3 trained runs, all replayed their training step as CUDA graphs.")
    runs["cuda_graphs"] = None  # CPU runs
    text = _operations(SimpleNamespace(collection=SimpleNamespace(completed=runs)))["readOperations"]
    assert text.startswith("Of the 3 trained runs, none replayed their training step as CUDA graphs.")


STUDY = ROOT / "multirun" / "study"
COMMITTED_PDF = ROOT / "report" / "main.pdf"


@pytest.mark.slow
@pytest.mark.skipif(not (COMMITTED_PDF.is_file() and any(STUDY.glob("*/*/summary.json"))),
                    reason="no committed study results and report yet (multirun/study/, report/main.pdf)")
def test_committed_report_is_what_the_committed_study_builds(tex, official_resplit_dir: Path,
                                                             tmp_path: Path) -> None:
    """report/main.pdf is built from the committed run dirs by one command (README): rebuilt into a copy of the
    report, its text is the committed PDF's text, and it is text-based."""
    report_dir = report_copy(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analyze.py"), "sweep_dir=multirun/study", "report=true",
         f"report_dir={report_dir}", f"out_dir={tmp_path / 'analysis'}", f"data_dir={official_resplit_dir}",
         f"bench_dir={sorted((ROOT / 'docs' / 'bench').glob('*/'))[-1]}"],  # what make report passes
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rebuilt, committed = pdf_text(report_dir / "main.pdf"), pdf_text(COMMITTED_PDF)
    assert len(committed) > 10_000 and "Discussion and conclusions" in committed  # text, not scanned pages
    assert rebuilt == committed


def test_a_missing_bibliography_is_one_clear_error_before_latexmk(tmp_path: Path) -> None:
    (tmp_path / "main.tex").write_text("\\documentclass{article}\n% \\bibliography{commented}\n\\begin{document}\n"
                                       "\\bibliography{references,extra.bib}\n\\end{document}\n")
    (tmp_path / "references.bib").write_text("")
    with pytest.raises(ReportError, match=r"has no extra\.bib, which main\.tex's \\bibliography needs"):
        check_report_dir(tmp_path)
    (tmp_path / "extra.bib").write_text("")
    check_report_dir(tmp_path)  # both there (and the commented-out one is not asked for)


def test_an_undefined_command_is_named_from_its_context_line() -> None:
    """TeX prints the context up to the undefined command on the l.N line: its last command is the culprit; any
    other error is quoted as it is."""
    output = ("./main.tex:42: Undefined control sequence.\n<argument> \\readBest \\fmthen\n\n"
              "l.42 \\readBest\\fmthen\n                     \\readAnswers\n")
    assert report_mod._first_error(output) == "./main.tex:42: Undefined control sequence: \\fmthen"
    other = "./main.tex:7: Missing $ inserted.\nl.7 a_b\n"
    assert report_mod._first_error(other) == "./main.tex:7: Missing $ inserted."


def test_latexmk_failure_shows_its_cause() -> None:
    """Without a TeX error, the message quotes latexmk's own causes, not its closing advice."""
    output = ("Latexmk: applying rule 'bibtex main'...\nLatexmk: I WON'T RUN 'bibtex main' because I don't find the "
              "following files:\n  references.bib\nLatexmk: Failure in processing file 'main.tex':\n   'bibtex main' "
              "needed too many passes\n----------------------\nLatexmk: If appropriate, the -f option can be used to "
              "get latexmk\n  to try to force complete processing.\n")
    assert report_mod._first_error(output) == (
        "Latexmk: I WON'T RUN 'bibtex main' because I don't find the following files: references.bib; "
        "Latexmk: Failure in processing file 'main.tex': 'bibtex main' needed too many passes")


def _special_result():
    from test_evidence import make_result, seeds

    cells = seeds({"model.skip": True, "note": "x_%&#$"}, [0.9, 0.91]) + seeds(
        {"model.skip": False, "note": "y^~\\z{"}, [0.8, 0.81])
    result = make_result({"stage2_skip": cells})
    result.figures = {"confusion": Path("/unused/confusion.pdf")}
    return result


def test_a_figure_saved_twice_is_the_same_file(tmp_path: Path) -> None:
    """Figure PDFs carry no creation date, so rebuilding the report from the same runs changes no file."""
    import matplotlib.pyplot as plt

    from fmnist.analysis import style

    files = []
    for name in ("a", "b"):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2])
        files.append(style.save(fig, tmp_path, name)[0].read_bytes())
    assert files[0] == files[1] and b"CreationDate" not in files[0]


def test_each_of_many_lines_keeps_a_colour_and_line_style_of_its_own() -> None:
    """The palette's 10 colours repeat from the 11th line on, with the next line style as the second cue."""
    from fmnist.analysis import style

    cues = [(style.color(i), style.linestyle(i)) for i in range(40)]
    assert len(set(cues)) == 40 and cues[10] == (style.color(0), "--") and cues[20] == (style.color(0), ":")
    assert [style.marker(i) for i in (0, 9, 10, 11)] == ["o", "<", "o", "s"]


def test_figure_files_have_safe_names_text_fonts_and_are_closed(tmp_path: Path) -> None:
    """A preset's or cell's name becomes a file name without separators or edge dashes; the PDF embeds TrueType
    (selectable text, no Type 3 bitmaps); a saved figure is closed (a study draws many)."""
    import matplotlib.pyplot as plt

    from fmnist.analysis import style

    names = ("stage2_skip", "lr=0.1, wd=[1, 2]", "../a/b", "$ ?")
    assert [style.slug(n) for n in names] == ["stage2_skip", "lr-0.1-wd-1-2", "..-a-b", "figure"]
    with style.context():
        fig, ax = plt.subplots()
        ax.set_title("some text")
        pdf, png = style.save(fig, tmp_path, "f")
    assert not plt.fignum_exists(fig.number) and png.read_bytes()[:4] == b"\x89PNG"
    assert b"/CIDFontType2" in pdf.read_bytes() and b"/Type3" not in pdf.read_bytes()  # TrueType glyphs, embedded


def test_newest_run_date_is_read_from_the_summaries() -> None:
    """The runs' finished_at (collected from their summary.json); runs without one are passed over."""
    from test_evidence import make_result, seeds

    result = make_result({"tiny": seeds({"model.width": 8}, [0.9, 0.8, 0.7], finished_at=[
        "2026-11-28T07:11:00+00:00", "2026-11-28T07:20:12+00:00", None])})
    assert report_mod.newest_run_date(result) == int(datetime.fromisoformat("2026-11-28T07:20:12+00:00").timestamp())
    result.collection.runs["finished_at"] = None
    assert report_mod.newest_run_date(result) is None


def test_a_partly_run_study_preset_says_how_many_of_its_cells_and_runs_it_has() -> None:
    """A study preset analysed with fewer cells (grid points, seeds aside) or runs than its grid (conf/experiment)
    is named with both counts; a complete one, and a sweep that is no study preset, are not."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import _incomplete_presets, macros_tex, study_grids

    half = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91]),
                        "my_sweep": seeds({"model.width": 8}, [0.8])})
    assert _incomplete_presets(half, study_grids()) == r"\texttt{stage2\_skip} (1 of its 2 cells, 2 of its 6 runs)"
    assert (r"\newcommand{\incompleteList}{\texttt{stage2\_skip} (1 of its 2 cells, 2 of its 6 runs)}"
            in macros_tex(half))
    one_seed = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9]) + seeds({"model.skip": False}, [0.8])})
    assert _incomplete_presets(one_seed, study_grids()) == r"\texttt{stage2\_skip} (2 of its 6 runs)"
    whole = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91, 0.92])
                         + seeds({"model.skip": False}, [0.8, 0.81, 0.82])})
    assert _incomplete_presets(whole, study_grids()) == ""


def test_tested_and_untested_flags_tell_a_partly_seeded_study_apart() -> None:
    """\\ifdata{tested}: some cell was tested against its reference; \\ifdata{untested}: some cell with a result was
    not. A study with 3 seeds in some presets and 1 in others is both, and main.tex then neither claims that every
    comparison states its seed noise nor leaves out that some differences are quoted without a test (the 3-seed
    rehearsal with seeds 1 and 2 of six presets left out read so)."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import build_macros, flags

    def flagged(presets: dict) -> set[str]:
        result = make_result(presets)
        return {f for f in flags(result, build_macros(result)) if f in ("tested", "untested")}

    three = {"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91, 0.92])
             + seeds({"model.skip": False}, [0.8, 0.81, 0.8])}
    one = {"stage2_norm": seeds({"norm": "batchnorm"}, [0.9]) + seeds({"norm": "none"}, [0.8])}
    assert flagged(three) == {"tested"} and flagged(one) == {"untested"} and flagged({**three, **one}) == {
        "tested", "untested"}
    assert flagged({"stage2_norm": seeds({"norm": "batchnorm"}, [0.9, 0.91])}) == set()  # nothing to compare with
    diverged = {"mine": seeds({"optimizer.lr": 0.1}, [0.9, 0.91])
                + [{"cell": {"optimizer.lr": 100000}, "status": "failed", "test_acc": None}] * 2}
    no_ref = {"stage2_norm": [{"cell": {"norm": "batchnorm"}, "status": "failed", "test_acc": None}]
              + seeds({"norm": "none"}, [0.8])}
    assert flagged(diverged) == flagged(no_ref) == set()  # no difference to test: not one untested for want of seeds
    key_only = {"stage1_models": seeds({"model": "resnet9"}, [0.93]) + seeds({"model": "resnet18"}, [0.92, 0.93])
                + seeds({"model": "plain18"}, [0.9, 0.91])}  # the reference has one seed; ResNet-18 vs Plain-18 two
    assert flagged(key_only) == {"tested", "untested"}  # that key comparison is tested: the abstract can't say none is
    from fmnist.analysis.evidence import key_family_cells

    keyed = make_result(three)  # skip vs no skip: a key comparison, marked in its table (pipeline.analyze)
    assert "keyed" not in flags(keyed, build_macros(keyed))
    keyed.cells = key_family_cells(keyed)
    assert "keyed" in flags(keyed, build_macros(keyed))
    main = (Path(__file__).parent.parent / "report" / "main.tex").read_text()
    abstract = main[main.index(r"\begin{abstract}"):main.index(r"\end{abstract}")]
    assert r"Every comparison\ifdata{untested}{ with two seeds" in abstract
    assert r"\ifdata{untested}{ The cells have \seedsPerCell: a difference with fewer" in abstract
    assert r"\ifdata{untested}{No difference is tested" in abstract and r"{\readNoComparison}}" in abstract
    assert "reported as within seed noise\\ifdata{untested}{, and" in main and r"\ifdata{untested}{ Nor should" in main


def test_the_abstract_introduction_and_conclusions_give_the_true_reason_nothing_is_tested(tex, tmp_path: Path) -> None:
    """main.tex's abstract, introduction and conclusions, built with the macros of hand-made sweeps, say why no
    difference is tested: too few seeds (one seed per cell, as in the committed study; or one side with two), the
    other cell's runs all failed, or a single cell. The user audit's sweep of lr=0.1 beside a diverged lr=1e5, two
    seeds each, read "needs two seeds ..., and the cells have 2 seeds", "every cell ... is run with 2 seeds" and
    "With one seed per cell"."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import macros_tex

    main = (ROOT / "report" / "main.tex").read_text()
    parts = [main[main.index(start):main.index(end)] for start, end in (
        (r"\begin{abstract}", r"\section{Implementation}"),
        (r"\paragraph{Conclusions.}", r"\section{Additional notes}"))]

    def text(presets: dict) -> str:
        report_dir = tmp_path / str(len(list(tmp_path.iterdir())))
        report_dir.mkdir()
        (report_dir / "macros.tex").write_text(macros_tex(make_result(presets)))
        (report_dir / "main.tex").write_text(
            "\\documentclass{article}\n\\usepackage{amsmath}\n\\newcommand{\\citep}[1]{}\n"
            "\\newcommand{\\citet}[1]{He}\n\\hyphenpenalty=10000\\exhyphenpenalty=10000\\sloppy\n"
            "\\input{macros}\n\\begin{document}\n"
            + "\n\n".join(parts) + "\n\\end{document}\n")
        return " ".join(pdf_text(report_mod.build_pdf(report_dir)).split())

    def runs(cell: dict, accs: list, failed: int = 0) -> list:
        return seeds(cell, accs, seed=list(range(len(accs)))) + [
            {"cell": cell, "status": "failed", "test_acc": None, "seed": len(accs) + i} for i in range(failed)]

    one_seed = text({"stage2_norm": runs({"norm": "batchnorm"}, [0.9]) + runs({"norm": "none"}, [0.8])})
    assert ("No difference is tested yet: a test against the seed noise needs two seeds or more of both cells, and "
            "the cells have 1 seed so far (3 planned).") in one_seed
    assert "every cell of every ablation is run with 1 seed so far (3 planned);" in one_seed
    assert "once both cells have two seeds or more (none has yet)" in one_seed
    assert "With one seed per cell, any difference above may be a change of seed" in one_seed
    uneven = text({"mine": runs({"lr": 0.1}, [0.9, 0.91]) + runs({"lr": 0.2}, [0.8])})
    assert "the cells have 1\u20132 seeds." in uneven and "With one seed per cell" not in uneven
    assert "With fewer than two seeds on a side of every comparison, any difference above may be" in uneven
    diverged = text({"mine": runs({"optimizer.lr": 0.1}, [0.9, 0.91]) + runs({"optimizer.lr": 100000}, [], 2)})
    assert ("No difference is tested: the only cell besides the reference, optimizer.lr=100000, has no result "
            "(2 failed).") in diverged
    assert "every cell of every ablation is run with 2 seeds (0\u20132 of them completed);" in diverged
    assert "once both cells have two seeds or more (this report has no difference to test)." in diverged
    single = text({"mine": runs({"model.width": 8}, [0.9, 0.91])})
    assert "No difference is tested: the preset has a single cell, so there is nothing to compare." in single
    for said in (diverged, single):
        assert "needs two seeds" not in said and "seed per cell" not in said and "none has yet" not in said
        assert said.count("No difference is tested:") == 2  # the abstract and the conclusions (readFindings)


def test_a_one_seed_confusion_cell_is_not_called_pooled_over_seeds() -> None:
    """\\ifdata{confpooled}: the confusion cell's matrix sums two runs or more. With one run, main.tex says "one
    seed" where it would say the matrix pools the seeds (the one-seed report read "pools 1 seed", "seeds pooled")."""
    import numpy as np
    import pandas as pd
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import build_macros, flags
    from fmnist.analysis.predictions import ClassResults

    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91])})
    per_class = pd.DataFrame({"run_dir": ["a", "b"], "class": ["Bag", "Bag"], "accuracy": [0.9, 0.8]})
    for runs, pooled in ((per_class, True), (per_class.iloc[:1], False)):
        result.classes = ClassResults("model.skip=True", "stage2_skip", np.eye(10, dtype=int), runs, pd.DataFrame(),
                                      "a")
        assert ("confpooled" in flags(result, build_macros(result))) is pooled
    result.classes = None
    assert "confpooled" not in flags(result, build_macros(result))
    main = (Path(__file__).parent.parent / "report" / "main.tex").read_text()
    assert main.count(r"\ifdata{confpooled}") == 3 and "seeds pooled)" not in main


def test_macros_escape_every_key_and_flag_what_exists(tex, tmp_path: Path) -> None:
    """Cell names with LaTeX specials build; \\result finds a cell by its name written as LaTeX text; \\ifdata,
    \\ifpreset and \\iffigure say what the analysis has."""
    from fmnist.analysis.macros import macros_tex

    (tmp_path / "macros.tex").write_text(macros_tex(_special_result()))
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\input{macros}\n\\begin{document}\n"
        "A \\result{stage2_skip}{model.skip=True, note=x_\\%\\&\\#\\$}{test_acc} B \\result{stage2_skip}{nope}{n}\n"
        "C \\ifpreset{stage2_skip}{yes}{no} \\ifpreset{stage1_models}{yes}{no} \\iffigure{confusion}{fig}{nofig} "
        "\\iffigure{misclassified}{fig}{nofig} \\ifdata{dead}{dead}{nodead} \\ifdata{best}{best}{nobest}\n"
        "\\end{document}\n")
    text = " ".join(pdf_text(report_mod.build_pdf(tmp_path)).split())
    assert "A 90.50 ± 0.71 B n/a" in text and "C yes no fig nofig nodead best" in text


def test_problems_table_breaks_long_run_names(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.report_tables import problems_table

    name = "0_data.subset=1024,data.val_fraction=0.05,model.skip=True,model.width=4,seed=0,trainer.epochs=2"
    problems = pd.DataFrame([{"run": name, "preset": "stage2_skip", "status": "failed", "error": "diverged"}] * 60)
    table = problems_table(SimpleNamespace(collection=SimpleNamespace(problems=lambda: problems)))
    assert r"\texttt{0\_\allowbreak{}data.\allowbreak{}subset=\allowbreak{}1024,\allowbreak{}" in table
    assert r"\begin{longtable}" in table  # 60 rows: not a float, it breaks across pages
    one = SimpleNamespace(collection=SimpleNamespace(problems=pd.DataFrame, runs=pd.DataFrame({"run": ["a"]})))
    assert problems_table(one) == "The only run completed.\n"
    two = SimpleNamespace(collection=SimpleNamespace(problems=pd.DataFrame, runs=pd.DataFrame({"run": ["a", "b"]})))
    assert problems_table(two) == "All 2 runs completed.\n"


def test_model_descriptions_typeset_arrows_and_sizes(tmp_path: Path) -> None:
    from fmnist.analysis.report_tables import _describe

    conf = tmp_path / "net.yaml"
    conf.write_text('# Net_A ("x"), 28x28: 28->14->7, bottleneck x4\n_target_: x\n')
    assert _describe(conf) == r"Net\_A (``x''), $28{\times}28$: 28$\to$14$\to$7, bottleneck $\times$4"
    conf.write_text("_target_: x\n")
    assert _describe(conf) == ""


def _tex_number(text: str) -> float:
    """0.01, 10^{-4}, 5{\\cdot}10^{-4} -> float."""
    m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)\{\\cdot\})?10\^\{(-?\d+)\}", text)
    return float(m.group(1) or 1) * 10.0 ** int(m.group(2)) if m else float(text)


def test_the_ablations_table_states_what_conf_runs() -> None:
    """Table tab:ablations in report/main.tex is written by hand: its presets and the grids it quotes must be the
    ones conf/experiment/ sweeps, and the optimisers' recipes those of conf/optimizer/."""
    import yaml

    text = (ROOT / "report" / "main.tex").read_text()
    table = text[text.index(r"\label{tab:ablations}"):text.index(r"\end{tabular}", text.index(r"\label{tab:ablations}"))]
    rows = dict(re.findall(r"\\texttt\{(stage[^}]*)\} & (.*?)\\\\", table.replace("\\_", "_"), re.S))
    conf = ROOT / "conf"
    sweeps = {p.stem: yaml.safe_load(p.read_text())["hydra"]["sweeper"]["params"]
              for p in (conf / "experiment").glob("stage*.yaml")}
    assert set(rows) == set(sweeps)

    def grid(preset: str, key: str) -> list[float]:
        return [float(v) for v in str(sweeps[preset][key]).split(",")]

    def quoted(row: str, before: str) -> list[float]:
        inner = re.search(re.escape(before) + r"\s*\$?\\\{(.*?)\\\}", rows[row], re.S).group(1)
        return [_tex_number(v.strip()) for v in inner.split(",")]

    assert quoted("stage2_lr", "peak lr") == grid("stage2_lr", "optimizer.lr")
    assert quoted("stage3_regularization", "weight decay") == grid("stage3_regularization", "optimizer.weight_decay")
    assert quoted("stage3_regularization", "smoothing~\\citep{szegedy2016rethinking}") == grid(
        "stage3_regularization", "trainer.label_smoothing")
    assert quoted("stage3_regularization", "classifier") == grid("stage3_regularization", "model.dropout")
    assert len(sweeps["stage2_lr"]["scheduler"].split(",")) == rows["stage2_lr"].count(";") + 1
    widths = re.search(r"w\\in\\\{(.*?)\\\}", rows["stage1_capacity"]).group(1)
    assert [float(w) for w in widths.split(",")] == grid("stage1_capacity", "model.width")
    for name, label in (("adam", "Adam"), ("adamw", "AdamW"), ("rmsprop", "RMSprop")):
        opt = yaml.safe_load((conf / "optimizer" / f"{name}.yaml").read_text())
        recipe = re.search(re.escape(label) + r"~\\citep\{[^}]*\} \(lr (.*?),", rows["stage2_optimizer"]).group(1)
        assert _tex_number(recipe.strip("$")) == float(opt["lr"]), name


def test_bench_section_quotes_every_benchmark_row() -> None:
    """The speed section joins the throughput rows of every file under the union of their modes ("--" where a
    file did not time a mode, "failed" where it failed), and says each time-to-accuracy run and jobs-per-GPU rate."""
    from fmnist.analysis.report_bench import bench_section

    machine = {"device_name": "NVIDIA H200", "torch_version": "2.11.0", "date": "2026-11-28T05:00:00+00:00",
               "precision": "bf16"}
    first = machine | {"throughput": [
        {"model": "resnet9", "batch_size": 512, "naive_s_per_epoch": 8.17, "speedup": 13.9, "ours_mode": "graphs",
         "ours_s_per_epoch": 0.401, "modes": {"eager": {"s_per_epoch": 0.83}, "graphs": {"s_per_epoch": 0.401}}}]}
    second = machine | {"throughput": [
        {"model": "resnet18", "batch_size": 128, "naive_s_per_epoch": None, "ours_mode": "graphs",
         "ours_s_per_epoch": 0.95, "modes": {"graphs": {"s_per_epoch": 0.95},
                                             "compile-default": {"error": "compilation failed"}}}],
        "time_to_accuracy": [{"preset": "fast", "epochs": 24, "test_acc": 0.9534, "train_time_s": 16.4},
                             {"preset": "fast95", "epochs": 40, "test_acc": 0.9569, "train_time_s": 35.1,
                              "model": "resnet18", "width": 64, "batch_size": 512, "n_train": 60000},
                             {"preset": "best", "status": "failed", "test_acc": None}],
        "concurrency": [{"jobs_per_gpu": 1, "jobs": 8, "runs_per_min": 4.08, "speedup_vs_first": 1.0},
                        {"jobs_per_gpu": 8, "jobs": 8, "runs_per_min": 14.03, "speedup_vs_first": 3.44}],
        "settings": {"concurrency_overrides": ["model=resnet9", "trainer.epochs=2"]}, "mps": True}
    text = bench_section([first, second], "docs/bench/2026-11-28-h200")
    assert r"Source: \texttt{docs/\allowbreak{}bench/\allowbreak{}2026-\allowbreak{}11-" in text
    assert r"model & batch & naive & eager & CUDA graphs & compile & naive / best & target (s) \\" in text
    assert r"resnet9 & 512 & 8.17 & 0.83 & 0.401 & -- & 13.9$\times$ & 0.4 (missed) \\" in text  # not 0.40
    assert r"resnet18 & 128 & -- & -- & 0.95 & failed & -- & 1 (met) \\" in text
    assert r"\texttt{fast} reached 95.34\,\% on the official test set after 24 epochs in 16.4\,s" in text
    assert (r"\texttt{fast95} (\texttt{resnet18}, width 64, batch 512, 60,000 training images) reached 95.69\,\%"
            in text)
    assert r"(aim 94.0\,\% in 10\,s: missed)" in text and r"\texttt{best} failed" in text
    assert (r"1 at a time 4.08 runs per minute and 8 at a time 14.03 runs per minute (3.4$\times$)" in text
            and "under CUDA MPS" in text and r"\texttt{model=resnet9 trainer.epochs=2}" in text)
    assert text.count("NVIDIA H200, torch 2.11.0, 2026-11-28, precision bf16") == 2  # in the caption and the jobs-per-GPU sentence
    assert bench_section([]) == "" and bench_section([machine | {"concurrency": []}]) == ""


def test_bench_section_of_partial_results_says_only_what_was_measured() -> None:
    """The table's column spec has one column per heading and its caption names every machine; without throughput
    rows the section has no table to refer to; a run marked failed is failed whatever it recorded; without an
    epoch count, a training time or CUDA MPS the sentences claim none; a CPU run is not set against the targets."""
    from fmnist.analysis.report_bench import bench_section

    def machine(device: str) -> dict:
        return {"device_name": device, "torch_version": "2.11.0", "date": "2026-11-28T05:00:00", "precision": "bf16"}

    row = {"model": "resnet9", "batch_size": 512, "naive_s_per_epoch": 8.0, "speedup": 16.0, "ours_mode": "graphs",
           "ours_s_per_epoch": 0.5, "modes": {"eager": {"s_per_epoch": 0.8}, "graphs": {"s_per_epoch": 0.5}}}
    text = bench_section([machine("NVIDIA H100") | {"throughput": [row]},
                          machine("NVIDIA H200") | {"throughput": [row]}])
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}\n\\toprule\n(.*) \\\\\n", text)
    assert len(spec.group(1)) == spec.group(2).count(" & ") + 1 == 7
    assert "(NVIDIA H100, torch 2.11.0, 2026-11-28, precision bf16 and NVIDIA H200, torch 2.11.0," in text
    assert r"& 16.0$\times$ & 0.4 (missed) \\" in text
    cpu = bench_section([machine("AMD EPYC") | {"device": "cpu", "throughput": [row], "time_to_accuracy": [
        {"preset": "fast", "epochs": 16, "test_acc": 0.9465, "train_time_s": 2354.9}]}])
    assert r"& 16.0$\times$ & -- \\" in cpu and "(aim" not in cpu  # the targets are for one H100
    text = bench_section([machine("NVIDIA H100") | {
        "time_to_accuracy": [{"preset": "fast", "status": "failed", "epochs": 3, "test_acc": 0.5, "train_time_s": 3.0},
                             {"preset": "fast95", "epochs": 40, "test_acc": 0.95, "train_time_s": None},
                             {"preset": "mine", "test_acc": 0.9, "train_time_s": 5.04}],
        "concurrency": [{"jobs_per_gpu": 1, "jobs": 4, "runs_per_min": 2.0, "speedup_vs_first": 1.0},
                        {"jobs_per_gpu": 2, "jobs": 4, "runs_per_min": 3.0, "speedup_vs_first": 1.5}]}])
    assert text.startswith("Time to accuracy") and r"\ref{tab:bench}" not in text
    assert r"\texttt{fast} failed" in text and "reached 50.00" not in text
    assert r"\texttt{fast95} reached 95.00\,\% on the official test set after 40 epochs in" in text
    assert "aim 95.5" not in text  # no training time: nothing to judge
    assert r"\texttt{mine} reached 90.00\,\% on the official test set in 5.0\,s of training" in text
    assert "(4 runs of" in text and "MPS" not in text


def test_preset_table_rows_put_validation_before_test_and_count_failed_runs() -> None:
    """A preset table row: n with its failed runs, then validation and test accuracy (mean ± std) in that order,
    then Δ and p_Holm against the reference."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.report_tables import preset_table

    ref, big = {"model": "resnet9"}, {"model": "resnet18"}
    result = make_result({"stage1_models": seeds(ref, [0.90, 0.92], best_val_acc=[0.80, 0.84])
                          + seeds(big, [0.95, 0.93], best_val_acc=[0.85, 0.83])
                          + [{"cell": big, "status": "failed", "error": "loss is nan"},
                             {"cell": big, "status": "running"}]})
    table = preset_table(result, "stage1_models")
    assert (r"resnet9 & 2 & 82.00\,$\pm$\,2.83 & 91.00\,$\pm$\,1.41 & \NA{} & \NA{} & \NA{} &  &  & "
            r"reference \\") in table  # validation and test accuracy each with its own std
    assert (r"resnet18 & 2 (+1 failed) (+1 unfinished) & 84.00\,$\pm$\,1.41 & 94.00\,$\pm$\,1.41 & \NA{} & \NA{} "
            r"& \NA{} & +3.00 & 0.168 & within seed noise \\") in table
    # a cell whose runs all failed has no result to compare: the table says so, not "too few seeds"
    result = make_result({"stage1_models": seeds(ref, [0.90, 0.92])
                          + [{"cell": big, "status": "failed", "error": "loss is nan"}] * 2})
    assert r"& no result \\" in preset_table(result, "stage1_models")


def test_a_preset_table_whose_reference_has_no_result_does_not_blame_the_seeds() -> None:
    """The reference's runs all failed: a cell with two seeds has no difference to test, and its verdict says why
    (the reference has no result), not "n < 2" beside its n of 2; the console says the same."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.console import cell_summary
    from fmnist.analysis.report_tables import preset_table

    result = make_result({"stage2_norm": [{"cell": {"norm": "batchnorm"}, "status": "failed", "test_acc": None}]
                          + seeds({"norm": "none"}, [0.8, 0.81])})
    row = next(line for line in preset_table(result, "stage2_norm").splitlines() if line.startswith("none & 2"))
    assert row.endswith(r"& reference has no result \\") and "n < 2" not in row
    assert cell_summary(result.cells).splitlines()[-1].endswith("reference has no result")


def test_per_class_table_quotes_each_class_mean_and_std() -> None:
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from fmnist.analysis.predictions import ClassResults
    from fmnist.analysis.report_tables import per_class_table

    per_class = pd.DataFrame({"run_dir": ["r", "s"] * 2, "class": ["Coat", "Coat", "Bag", "Bag"],
                              "accuracy": [0.75, 0.5, 1.0, 0.9]})
    classes = ClassResults("model.skip=True", "stage2_skip", np.array([[5, 3], [1, 3]]), per_class, pd.DataFrame(),
                           "r", ("Coat", "Bag"))
    table = per_class_table(SimpleNamespace(classes=classes))
    assert r"Coat & 62.50\,$\pm$\,17.68 \\" in table and r"Bag & 95.00\,$\pm$\,7.07 \\" in table
    assert r"mean\,$\pm$\,std over \confRuns" in table


def test_setup_macros_quote_each_split_size_and_setting_from_the_reference_run(tmp_path: Path) -> None:
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _setup

    run_dir = tmp_path / "stage2_skip" / "0_ref"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "config": {
        "trainer": {"epochs": 15, "batch_size": 512}, "optimizer": {"lr": 0.05, "momentum": 0.9,
                                                                      "weight_decay": 0.0005}}}))
    runs = pd.DataFrame([{"preset": "stage2_skip", "cell": "ref", "model": "resnet9", "optimizer": "sgd",
                          "run_dir": str(run_dir), "n_train": 54000, "n_val": 6000, "n_test": 10000,
                          "git_commit": "54e6a71f0c2d9b8e7a6f5e4d3c2b1a0f9e8d7c6b"}])
    cells = pd.DataFrame([{"preset": "stage2_skip", "cell": "ref", "is_reference": True, "n": 1}])
    m = _setup(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert (m["setupTrain"], m["setupVal"], m["setupTest"]) == ("54,000", "6,000", "10,000")
    assert (m["setupEpochs"], m["setupBatch"], m["setupOptimizer"]) == ("15 epochs", "512", "sgd")
    assert (m["setupLR"], m["setupMomentum"], m["setupWD"]) == ("0.05", "0.9", "0.0005")
    assert m["setupCommit"] == "54e6a71f0c"  # its first ten characters


def test_overview_and_preset_macros_count_statuses_and_pick_the_best_cell_by_validation() -> None:
    """nFailed and nUnfinished (unreadable and not started included) count their runs, and nRuns adds them up (a
    duplicate is not counted); the best cell is chosen by
    validation accuracy but quotes its test accuracy (mean and std), and the worst likewise: here the cell with the
    highest test accuracy has the lowest validation accuracy."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import _overview, _presets

    ref, big, odd = {"model": "resnet9"}, {"model": "resnet18"}, {"model": "vgg11"}
    result = make_result({"mine": seeds(ref, [0.90, 0.92], best_val_acc=[0.80, 0.82])
                          + seeds(big, [0.95, 0.91], best_val_acc=[0.85, 0.83])
                          + seeds(odd, [0.97, 0.99], best_val_acc=[0.70, 0.72])
                          + [{"cell": big, "status": "failed", "error": "nan"}, {"cell": big, "status": "interrupted"},
                             {"cell": odd, "status": "unreadable"}, {"cell": odd, "status": "not_started"},
                             {"cell": ref, "status": "duplicate"}]})  # a second sweep dir's copy: not another run
    m = _overview(result)
    assert (m["nRuns"], m["nCompleted"], m["nFailed"], m["nUnfinished"]) == ("10 runs", "6", "1", "3")
    assert (m["bestCell"], m["bestAcc"], m["bestStd"], m["bestN"]) == ("model=resnet18", "93.00", "2.83", "2 seeds")
    p = _presets(result, {"mine": "mine"})
    assert (p["mineBest"], p["mineBestAcc"], p["mineBestStd"]) == ("model=resnet18", "93.00", "2.83")
    assert (p["mineWorst"], p["mineWorstAcc"]) == ("model=vgg11", "98.00")
    assert (p["mineRef"], p["mineRefAcc"], p["mineRefStd"]) == ("model=resnet9", "91.00", "1.41")
    assert (p["mineCells"], p["mineRuns"], p["mineCompleted"], p["mineNCompared"]) == ("3 cells", "10 runs", "6", "2")


def test_speed_macros_count_a_copied_run_once_and_say_how_many_shared_the_machine() -> None:
    """A run that copied an identical run (reused_from) adds no GPU time or epochs, is counted as trainReused,
    and is left out of the sharing sentence; two trained runs that overlapped say so."""
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _speed

    runs = pd.DataFrame({
        "preset": "stage1_models", "cell": "model=resnet9", "train_time_s": [3600.0, 1800.0, 3600.0],
        "epochs_completed": [10, 5, 10], "run_dir": ["/a/0", "/a/1", "/b/0"], "reused_from": [None, None, "../../a/0"],
        "started_at": ["2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z", None], "hostname": "h",
        "finished_at": ["2026-01-01T01:00:00Z", "2026-01-01T01:00:00Z", None]})
    cells = pd.DataFrame([{"preset": "stage1_models", "cell": "model=resnet9", "model": "resnet9", "n": 3}])
    m = _speed(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert (m["trainHours"], m["trainEpochs"], m["trainReused"]) == ("1.50", "15 epochs", "1 run")
    assert "1 run copied the results of an identical completed run and is not counted again." in m["readReuse"]
    assert "(here" not in m["readReuse"]  # the run it copied is of the same preset: never 'up to 1 preset'
    runs.loc[2, "preset"] = "stage2_skip"  # the copy belongs to another preset: the run is shared by two
    m = _speed(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert m["readReuse"].startswith("A run that several presets share (here one run belongs to up to 2 presets) was")
    assert m["readSharing"].startswith("The runs shared their machine: on average 1.5 ran at once (at most 2)")
    assert "one of the 2 trained runs with recorded times was running for 60.0 minutes" in m["readSharing"]
    runs.loc[1, "started_at"] = "2026-01-01T01:00:00Z"  # starts when the first ends: no overlap
    runs.loc[1, "finished_at"] = "2026-01-01T01:30:00Z"
    m = _speed(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert m["readSharing"].startswith("No two of the 2 trained runs with recorded times overlapped")
    assert m["readOverhead"] == ""  # runs of versions that did not record their phases
    runs[["startup_s", "setup_s", "epochs_s", "finish_s"]] = 1.0
    m = _speed(SimpleNamespace(cells=cells, collection=SimpleNamespace(completed=runs)))
    assert m["readOverhead"].endswith("(median over 2 runs).")  # the copied run is not counted again


def test_overhead_sentence_gives_the_median_phases_of_the_trained_runs() -> None:
    """Medians over the trained runs that recorded every phase (the copied run and the one without phases are left
    out); the share outside the epochs is the median of each run's own share: 6/15 and 16/30, so 47 %."""
    import pandas as pd

    from fmnist.analysis.macros import _overhead

    runs = pd.DataFrame({"startup_s": [3.0, 5.0, 100.0, None], "setup_s": [1.0, 3.0, 100.0, 1.0],
                         "epochs_s": [10.0, 20.0, 100.0, 1.0], "finish_s": [1.0, 2.0, 100.0, 1.0],
                         "train_time_s": [9.0, 14.0, 100.0, 1.0]})
    assert _overhead(runs.drop(index=2)) == (
        "Besides its epochs (a median 11.5\\,s of training and validation per run), a run spent a median 4.0\\,s "
        "starting (process, imports, configuration), 2.0\\,s on setup (data, model, CUDA-graph capture) and 1.5\\,s "
        "testing and writing its files; 47\\,\\% of a run's wall time, checkpoint writes included, went to anything "
        "but its epochs (median over 2 runs).")
    assert _overhead(runs.drop(columns=["finish_s"])) == "" and _overhead(runs.iloc[[3]]) == ""


def test_models_table_counts_each_models_convolutions_parameters_and_flops(tmp_path: Path) -> None:
    """ResNet-9: eight 3x3 convolutions and no 1x1, 6.57 M parameters, 548 M FLOPs per image (built on the meta
    device from a conf folder holding only it)."""
    from fmnist.analysis.report_tables import models_table

    for sub, name in (("model", "resnet9"), ("norm", "batchnorm"), ("activation", "relu")):
        (tmp_path / sub).mkdir()
        shutil.copy(ROOT / "conf" / sub / f"{name}.yaml", tmp_path / sub)
    table = models_table(tmp_path)
    assert r"\texttt{resnet9} & ResNet-9 " in table and r" & 8 + 0 & 6.57\,M & 548\,M \\" in table


def test_provenance_table_counts_completed_and_copied_runs_apart_from_failed_ones() -> None:
    from test_evidence import make_result, seeds

    from fmnist.analysis.report_tables import provenance_table

    result = make_result({"mine": seeds({"model": "resnet9"}, [0.9, 0.91], git_commit=["abcdef123"] * 2,
                                        reused_from=[None, "../x"])
                          + [{"cell": {"model": "resnet9"}, "status": "failed", "error": "nan",
                              "git_commit": "1234567aa"}]})
    assert r"\texttt{mine} & \texttt{/mine} & 3 & 2 & 1 & 1234567, abcdef1 \\" in provenance_table(result)
    result = make_result({"mine": seeds({"model": "resnet9"}, [0.9] * 5, git_commit=[f"{i}abcdef" for i in range(5)])})
    assert r"& 5 & 5 & 0 & 0abcdef, 1abcdef, 2abcdef (+2) \\" in provenance_table(result)  # three, then how many more


def test_cell_result_macros_quote_the_holm_p_and_the_validation_std() -> None:
    """\\result{preset}{cell}{p} is the Holm-corrected p the preset table shows, and {val_acc} the validation mean ±
    its own std (ddof=1), not the test accuracy's."""
    from scipy import stats as scipy_stats
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import _results

    ref, worse, other = [0.90, 0.91, 0.92], [0.85, 0.86, 0.84], [0.91, 0.93, 0.92]
    result = make_result({"mine": seeds({"model": "a"}, ref, best_val_acc=[0.80, 0.82, 0.81])
                          + seeds({"model": "b"}, worse, best_val_acc=[0.70, 0.74, 0.72])
                          + seeds({"model": "c"}, other, best_val_acc=[0.81, 0.83, 0.82])})
    fields = {(cell, f): v for cell, f, v in (re.fullmatch(r"\\resultdef\{mine\}\{([^{}]*)\}\{(\w+)\}\{(.*)\}", line)
                                               .groups() for line in _results(result))}
    p_worse = scipy_stats.ttest_ind(worse, ref, equal_var=False).pvalue
    p_other = scipy_stats.ttest_ind(other, ref, equal_var=False).pvalue
    assert p_worse < p_other  # so Holm multiplies p_worse by 2 and p_other by 1 (then the running maximum)
    assert fields[("model=b", "p")] == latex.pvalue(2 * p_worse)
    assert fields[("model=c", "p")] == latex.pvalue(max(2 * p_worse, p_other))
    assert fields[("model=b", "val_acc")] == r"72.00\,$\pm$\,2.00" and fields[("model=b", "test_acc")] == (
        r"85.00\,$\pm$\,1.00")
    assert fields[("model=a", "p")] == latex.NA and fields[("model=b", "n")] == "3"


def test_preset_macros_count_the_significant_cells_and_the_most_seeds() -> None:
    from scipy import stats as scipy_stats
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import _presets

    ref, far, near = [0.90, 0.901, 0.902], [0.80, 0.801, 0.802], [0.90, 0.905]
    assert 2 * scipy_stats.ttest_ind(far, ref, equal_var=False).pvalue < 0.05  # Holm, two tests
    assert scipy_stats.ttest_ind(near, ref, equal_var=False).pvalue > 0.05
    result = make_result({"mine": seeds({"model": "a"}, ref) + seeds({"model": "b"}, far)
                          + seeds({"model": "c"}, near)})
    p = _presets(result, {"mine": "mine"})
    assert (p["mineNSig"], p["mineNCompared"], p["mineSeeds"]) == ("1", "2", "3 seeds")


def test_the_overview_says_how_many_seeds_and_runs_of_the_study_grid_ran() -> None:
    """seedsPerCell adds 'so far' when some cell ran fewer seeds than the grid plans; studyShare is empty once every
    planned run is there."""
    from types import SimpleNamespace

    import pandas as pd

    from fmnist.analysis.macros import _seeds_per_cell, _study_share

    grids = {"a": [[f"x={x}", f"seed={s}"] for x in (1, 2) for s in (0, 1, 2)]}

    def result(seeds_per_cell: tuple[int, int]):
        runs = pd.DataFrame([{"preset": "a", "cell": f"x={x}", "seed": s}
                             for x, n in zip((1, 2), seeds_per_cell) for s in range(n)])
        return SimpleNamespace(collection=SimpleNamespace(runs=runs, swept={"a": ["x"]}))

    partial, whole = result((1, 3)), result((3, 3))
    assert _seeds_per_cell(partial, grids) == {"seedsPerCell": "1--3 seeds so far (3 planned)",
                                               "seedsPlanned": "3 seeds"}
    assert _seeds_per_cell(whole, grids)["seedsPerCell"] == "3 seeds"
    for status, said in (("completed", "3 seeds"), ("failed", "3 seeds (0--3 of them completed)")):
        whole.collection.runs["status"] = ["completed"] * 3 + [status] * 3  # x=2's seeds all completed, or failed
        assert _seeds_per_cell(whole, grids)["seedsPerCell"] == said
    partial.collection.runs["status"] = "failed"
    assert _seeds_per_cell(partial, grids)["seedsPerCell"] == "1--3 seeds so far (3 planned; none completed)"
    partial.collection.runs["status"] = ["completed", "completed", "failed", "completed"]
    assert _seeds_per_cell(partial, grids)["seedsPerCell"] == "1--3 seeds so far (3 planned; 1--2 of them completed)"
    assert _study_share(partial, grids).startswith(", 4 of the 6 runs the study plans")
    assert _study_share(whole, grids) == ""


def test_dead_unit_macros_are_means_over_the_runs_and_per_activation() -> None:
    import pandas as pd
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import build_macros

    result = make_result({"stage2_activation": seeds({"activation": "relu"}, [0.9, 0.9])
                          + seeds({"activation": "gelu"}, [0.9])})
    dead = [{"run_dir": d, "preset": "stage2_activation", "activation": a, "dead_fraction": f, "zero_fraction": z,
             "negative_capable": a == "gelu"}
            for d, a, f, z in zip(result.collection.runs["run_dir"], ("relu", "relu", "gelu"), (0.0, 0.1, 0.5),
                                  (0.4, 0.6, 0.2))]
    result.dead_runs = pd.DataFrame(dead)
    result.dead_layers = pd.DataFrame([{**r, "layer": "layer1.0"} for r in dead])
    m = build_macros(result)
    assert (m["deadRuns"], m["deadMean"], m["zeroMean"]) == ("3 runs", "20.00", "40.00")  # means, not medians
    assert (m["deadRelu"], m["zeroRelu"], m["deadGelu"], m["zeroGelu"]) == ("5.00", "50.00", "50.00", "20.00")


def _dead_result(activations: dict[str, float]):
    """A stage2_activation analysis with one run per activation and its dead fraction (zero fraction: half of it)."""
    import pandas as pd
    from test_evidence import make_result, seeds

    result = make_result({"stage2_activation": [run for a in activations for run in seeds({"activation": a}, [0.9])]})
    result.dead_runs = pd.DataFrame([{"run_dir": d, "preset": "stage2_activation", "activation": a,
                                      "dead_fraction": f, "zero_fraction": f / 2, "negative_capable": False}
                                     for d, (a, f) in zip(result.collection.runs["run_dir"], activations.items())])
    result.dead_layers = pd.DataFrame([{**r, "layer": "layer1.0"} for r in result.dead_runs.to_dict("records")])
    return result


def test_activations_whose_names_differ_only_in_what_a_macro_cannot_hold_get_macros_of_their_own() -> None:
    """relu6 beside relu_6 (both deadReluSix), 6 beside six, and an activation named runs (deadRuns, the run count):
    each activation's dead/zero macros are its own, none is defined twice and the fixed macros keep their values."""
    from fmnist.analysis.macros import build_macros, macros_tex

    result = _dead_result({"relu": 0.01, "relu6": 0.02, "relu_6": 0.03, "6": 0.04, "six": 0.05, "runs": 0.06})
    m = build_macros(result)
    assert (m["deadRelu"], m["deadReluSix"], m["deadReluSixAltTwo"]) == ("1.00", "2.00", "3.00")
    assert (m["deadSix"], m["deadSixAltTwo"], m["zeroSixAltTwo"]) == ("4.00", "5.00", "2.50")
    assert (m["deadRuns"], m["deadRunsAltTwo"], m["zeroRunsAltTwo"]) == ("6 runs", "6.00", "3.00")
    assert m["deadGelu"] == latex.NA  # a built-in activation the runs lack keeps its macros
    names = re.findall(r"\\newcommand\{\\([^}]*)\}", macros_tex(result))
    assert len(names) == len(set(names)) and all(re.fullmatch("[A-Za-z]+", n) for n in names)


def test_the_prose_names_a_users_activation_by_its_target_like_the_built_in_ones(tmp_path: Path) -> None:
    """A user's activation options (mish, relu6 and relu_6 from --config-dir) are named by their _target_'s class,
    as the built-in relu is ReLU, not by their file names (mish beside ReLU); two of one class by their option too."""
    from fmnist.analysis.macros import activation_names, build_macros

    targets = {"relu": "torch.nn.ReLU", "mish": "torch.nn.Mish", "relu6": "torch.nn.ReLU6", "relu_6": "torch.nn.ReLU6"}
    result = _dead_result(dict.fromkeys(targets, 0.01))
    dirs = [tmp_path / str(i) for i in range(len(targets))]
    for run_dir, target in zip(dirs, targets.values()):
        run_dir.mkdir()
        (run_dir / "summary.json").write_text(json.dumps({"status": "completed", "config": {
            "activation": {"_target_": target, "_partial_": True}}}))
    result.collection.runs["run_dir"] = result.dead_runs["run_dir"] = list(map(str, dirs))
    assert activation_names(result.collection.runs) == {"relu": "ReLU", "mish": "Mish", "relu6": "ReLU6 (relu6)",
                                                        "relu_6": r"ReLU6 (relu\_6)"}
    assert (r"dead units are ReLU 1.00\,\%, Mish 1.00\,\%, ReLU6 (relu6) 1.00\,\% and ReLU6 (relu\_6) 1.00\,\%."
            in build_macros(result)["readDead"])
    unreadable = _dead_result({"relu": 0.01, "my_act": 0.02})  # no run config to read: the option's own name
    assert activation_names(unreadable.collection.runs) == {"relu": "ReLU", "my_act": r"my\_act"}


def test_presets_whose_names_differ_only_in_what_a_file_name_cannot_hold_get_files_of_their_own(
        tmp_path: Path, analyze_config) -> None:
    """name='v0.1 x' beside name=v0.1-x: both slugs were v0.1-x, so one preset's figures and table file replaced the
    other's and both sections showed the same ones under one \\label defined twice. Each now has files of its own."""
    from test_analysis import fake_sweep, quick_analysis

    from fmnist.analysis.report_tables import preset_table, presets_section

    for name, accs in (("v0.1 x", (0.9, 0.9, 0.8, 0.8)), ("v0.1-x", (0.7, 0.7, 0.6, 0.6))):
        for run in fake_sweep(tmp_path / name, accs):
            summary = json.loads((run / "summary.json").read_text())
            summary["config"]["name"] = name
            (run / "summary.json").write_text(json.dumps(summary))
    result = quick_analysis(analyze_config, f"[{tmp_path / 'v0.1 x'},{tmp_path / 'v0.1-x'}]", tmp_path / "out",
                            "figures=true")
    assert {"accuracy_v0.1-x", "accuracy_v0.1-x-2", "curves_v0.1-x", "curves_v0.1-x-2"} <= set(result.figures)
    first, second = preset_table(result, "v0.1 x"), preset_table(result, "v0.1-x")
    assert r"\label{tab:preset-v0.1-x}" in first and "90.00" in first
    assert r"\label{tab:preset-v0.1-x-2}" in second and "70.00" in second
    section = presets_section(result)
    assert r"\input{tables/preset_v0.1-x}" in section and r"\input{tables/preset_v0.1-x-2}" in section
    assert r"\reportfigure{accuracy_v0.1-x-2}" in section


def test_a_preset_whose_macros_would_be_other_macros_gets_a_prefix_of_its_own() -> None:
    """A preset named n would define \\nRuns and \\nCompleted, the overview's counts of all runs."""
    from test_evidence import make_result, seeds

    from fmnist.analysis.macros import build_macros, preset_prefixes

    result = make_result({"n": seeds({"norm": "none"}, [0.9]), "other": seeds({"norm": "none"}, [0.8, 0.8])})
    m = build_macros(result)
    assert m["nRuns"] == "3 runs" and preset_prefixes(result, taken=["nRuns"])["n"] == "nAltTwo"
    assert m["nAltTwoRuns"] == "1 run" and m["nAltTwoBestAcc"] == "90.00"


def test_preset_captions_and_the_per_class_table_say_one_seed_when_there_is_one() -> None:
    """The curves and accuracy captions (presets_section) and the per-class table describe a spread over seeds only
    when some cell ran two seeds or more."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd
    from test_evidence import make_result, seeds

    from fmnist.analysis.predictions import ClassResults
    from fmnist.analysis.report_tables import per_class_table, presets_section

    for accs, seeded in (([0.9], False), ([0.9, 0.91], True)):
        runs = seeds({"model.skip": True}, accs, seed=list(range(len(accs))))
        result = make_result({"stage2_skip": runs + seeds({"model.skip": False}, [0.8], seed=[0])})
        result.figures = {"curves_stage2_skip": Path("/unused/c.pdf"), "accuracy_stage2_skip": Path("/unused/a.pdf")}
        text = presets_section(result)
        assert ("mean over seeds with a $\\pm1$ std band" in text) is seeded
        assert ("(one seed per cell)" in text) is not seeded and ("dotted: the reference; *:" in text) is seeded
    per_class = pd.DataFrame({"run_dir": ["r"], "class": ["Bag"], "accuracy": [0.9]})
    one = ClassResults("model.skip=True", "stage2_skip", np.eye(2, dtype=int), per_class, pd.DataFrame(), "r",
                       ("Bag", "Coat"))
    assert "(\\confPreset), one run." in per_class_table(SimpleNamespace(classes=one))


def test_the_ensembles_table_lists_the_cells_of_largest_churn_first_and_counts_the_rest() -> None:
    """13 cells, churn 1..13 %: the table lists 12, from 13 % down to 2 %, each row's numbers in its columns; with
    12 cells or fewer it says it lists every one."""
    from types import SimpleNamespace

    import pandas as pd
    from test_evidence import _ensemble

    from fmnist.analysis.report_tables import ENSEMBLE_ROWS, ensembles_table

    rows = [_ensemble(f"x={i}", 2, 0.001 * i, 0.01 * i, 0.002, 0.003) for i in range(1, 14)]
    tex = ensembles_table(SimpleNamespace(ensembles=pd.DataFrame(rows)))
    assert ENSEMBLE_ROWS == 12 and "the 12 of the 13 cells with two seeds or more whose seeds disagree most" in tex
    body = [line for line in tex.splitlines() if line.startswith(r"\texttt{stage2\_skip}")]
    assert [b.split(" & ")[1] for b in body] == [latex.breakable(f"x={i}") for i in range(13, 1, -1)]
    # seeds, single run mean ± std, ensemble, gain, churn, accuracy difference, all wrong, any wrong
    assert body[0].split(" & ")[2:] == ["2", r"90.00\,$\pm$\,0.30", "91.30", "+1.30", "13.00", "0.20", "5.00",
                                        r"10.00 \\"]
    few = ensembles_table(SimpleNamespace(ensembles=pd.DataFrame(rows[:2])))
    assert "every cell with two seeds or more, largest churn first" in few
    assert ensembles_table(SimpleNamespace(ensembles=pd.DataFrame())) == ""


def test_the_seed_ensembles_paragraph_and_table_appear_only_with_two_seeds(tex, tmp_path: Path, analyze_config) -> None:
    """main.tex's "Seed ensembles." paragraph, built from an analysis of hand-made runs: with two seeds of a cell it
    quotes the numbers of ensembles.csv and inputs its table; with one seed, flag, sentence and table are absent."""
    from test_analysis import quick_analysis
    from test_ensembles import seeded_cell

    from fmnist.analysis.macros import build_macros, flags, macros_tex
    from fmnist.analysis.report_tables import ensembles_table

    main = (ROOT / "report" / "main.tex").read_text()
    start = main.index(r"\ifdata{ensembles}{\paragraph{Seed ensembles.}")
    end = main.index(r"\input{tables/ensembles}}{}", start) + len(r"\input{tables/ensembles}}{}")
    for seeds in ("AB", "A"):
        sweep, report_dir = tmp_path / seeds / "sweep", tmp_path / seeds / "report"
        seeded_cell(sweep, seeds=seeds)
        result = quick_analysis(analyze_config, sweep, tmp_path / seeds / "out")
        (report_dir / "tables").mkdir(parents=True)
        (report_dir / "macros.tex").write_text(macros_tex(result))
        (report_dir / "tables" / "ensembles.tex").write_text(ensembles_table(result))
        (report_dir / "main.tex").write_text(
            "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{array}\n\\usepackage{graphicx}\n"
            f"\\input{{macros}}\n\\begin{{document}}\nBEFORE\n\n{main[start:end]}\n\nAFTER\n\\end{{document}}\n")
        text = " ".join(pdf_text(report_mod.build_pdf(report_dir)).split())
        if seeds == "AB":  # seeds A and B of tests/test_ensembles.py: 3/4 right each, 2 of 4 images apart
            assert "ensembles" in flags(result, build_macros(result))
            assert "Seed ensembles. The seeds of a cell are compared image by image" in text
            assert "For the only cell with two seeds or more, all runs of fake (2 seeds)" in text
            assert "Two seeds disagree on 50.00 % of the test images, while their test accuracies differ by 0.00 pp" \
                   in text and "seeds of the same accuracy still disagree on those images" in text
            assert "fake all runs 2 75.00 ± 0.00 50.00 −25.00 50.00 0.00 0.00 50.00" in text  # ensemble: 12, 13 wrong
            assert "??" not in text and not PROSE_NA.search(text)
        else:
            assert "BEFORE AFTER" in text and "Seed ensembles" not in text
            assert "ensembles" not in flags(result, build_macros(result))
            assert ensembles_table(result) == "" and r"\newcommand{\readEnsembles}{}" in macros_tex(result)


def test_generated_sentences_join_with_one_space_whether_or_not_some_are_empty(tex: None, tmp_path: Path) -> None:
    """A run of generated sentences (\\readBest, \\readAnswers, \\readFindings, ...) is joined by \\fmthen (macros.tex):
    an empty one adds no second space (TeX keeps both space tokens around an empty macro; pdftotext hides that,
    the words' positions do not). main.tex leaves no generated sentence between two plain spaces."""
    from fmnist.analysis.macros import PREAMBLE

    main = (ROOT / "report" / "main.tex").read_text()
    assert not re.search(r"\\read\w+\{\} +\\read", main)
    assert not re.search(r"\\fmthen\\read\w+\n(?!\n)", main)  # a line's end after a control word is no space: {}
    body = "\n\n".join([r"First sentence. Second. Third.",
                        r"First sentence.\fmthen\Empty\fmthen\Second{} Third.",
                        r"First sentence.\fmthen\Second\fmthen\Empty{} Third.",
                        r"First sentence. \Empty{} Second. Third."])
    (tmp_path / "join.tex").write_text("\n".join([
        r"\documentclass{article}", PREAMBLE, r"\begin{document}",
        r"\newcommand{\Empty}{}\newcommand{\Second}{Second.}", body, r"\end{document}"]))
    subprocess.run(["pdflatex", "-interaction=batchmode", "join.tex"], cwd=tmp_path, capture_output=True, check=True)
    html = subprocess.run(["pdftotext", "-bbox", "join.pdf", "-"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout
    second = [float(x) for x in re.findall(r'<word xMin="([\d.]+)"[^>]*>Second\.</word>', html)]
    third = [float(x) for x in re.findall(r'<word xMin="([\d.]+)"[^>]*>Third\.</word>', html)]
    assert len(second) == len(third) == 4
    assert second[1] == pytest.approx(second[0], abs=0.01) and second[2] == pytest.approx(second[0], abs=0.01)
    assert third[1] == pytest.approx(third[0], abs=0.01) and third[2] == pytest.approx(third[0], abs=0.01)
    assert second[3] > second[0] + 1  # the plain-space form this replaces: two spaces around the empty macro


def test_models_per_class_table_shows_a_class_a_model_has_no_images_of_as_na(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A class without test images in one model's runs (another data_dir) is n/a there; the bold highest of its
    column is taken among the others (float('\\NA{}') stopped the whole report with a ValueError)."""
    import pandas as pd

    from fmnist.analysis import report_tables

    table = pd.DataFrame([{"cell": "a", "n": 1, "overall": 0.9, "shirt": 0.5, "bag": float("nan")},
                          {"cell": "b", "n": 1, "overall": 0.8, "shirt": 0.6, "bag": 0.9}])
    monkeypatch.setattr(report_tables, "preset_class_accuracy", lambda result, preset: table)
    monkeypatch.setattr(report_tables, "model_name", lambda result, cell: cell)
    text = report_tables.models_per_class_table(None)
    rows = [line for line in text.splitlines() if line.startswith(("a &", "b &"))]
    assert rows == [r"a & 1 & 50.0 & \NA{} & \textbf{90.0} \\", r"b & 1 & \textbf{60.0} & 90.0 & 80.0 \\"]
