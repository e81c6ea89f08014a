"""The discussion's evidence (fmnist.analysis.evidence): which comparison each sentence rests on, that it quotes
the right numbers, and that it calls a difference an effect only when the test says so. The run tables are
built by hand (the numbers must be known to check them); `aggregate` and Welch's test are the real ones."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fmnist.analysis import evidence, latex, report_tables
from fmnist.analysis.collect import CURVE_FIELDS, Collection, cell_label, curve_fields
from fmnist.analysis.pipeline import AnalysisResult
from fmnist.analysis.stats import aggregate, holm, welch

ALPHA = 0.05


def make_result(presets: dict[str, list[dict[str, Any]]], dead: pd.DataFrame | None = None) -> AnalysisResult:
    """An analysis of hand-made runs: preset -> rows of {"cell": {param: value, ...}, field: value, ...}; the swept
    parameters are the keys of the first row's cell."""
    rows, swept = [], {}
    for preset, runs in presets.items():
        keys = list(runs[0]["cell"])
        swept[preset] = keys
        for i, run in enumerate(runs):
            rows.append({"preset": preset, "status": run.get("status", "completed"), "run_dir": f"/{preset}/{i}",
                         "cell": cell_label(run["cell"]), **run["cell"],
                         **{k: v for k, v in run.items() if k not in ("cell", "status")}})
    collection = Collection(pd.DataFrame(rows), pd.DataFrame(columns=["run_dir", "epoch"]), swept)
    result = AnalysisResult(Path("/unused"), collection, aggregate(collection, {}, ALPHA), ALPHA)
    if dead is not None:
        result.dead_runs = dead
    return result


def seeds(cell: dict[str, Any], accs: list[float], /, **fields: list[float]) -> list[dict[str, Any]]:
    """One run per seed of `cell` with these test accuracies and per-seed `fields`."""
    return [{"cell": cell, "test_acc": a, **{k: v[i] for k, v in fields.items()}} for i, a in enumerate(accs)]


def test_curve_fields_of_a_metrics_table() -> None:
    metrics = pd.DataFrame({"epoch": [2, 1], "train_loss": [0.3, 0.9], "train_acc": [0.95, 0.7],
                            "val_acc": [0.91, 0.8]})  # out of order on purpose: epochs are sorted
    got = curve_fields(metrics)
    assert got == pytest.approx({"train_loss_final": 0.3, "train_acc_final": 0.95, "gap_final": 0.04,
                                 "val_acc_epoch1": 0.8, "train_loss_epoch1": 0.9})
    no_val = curve_fields(metrics.drop(columns="val_acc"))
    assert no_val["gap_final"] is None and no_val["val_acc_epoch1"] is None and no_val["train_loss_final"] == 0.3
    assert curve_fields(None) == dict.fromkeys(CURVE_FIELDS) and curve_fields(metrics.iloc[:0]) == curve_fields(None)


def test_cells_that_start_above_chance_level_loss_are_listed() -> None:
    """A cell whose first-epoch training loss averages above ln 10 is named with its loss and seeds; the others
    are not, and without any such cell the sentence says so."""
    res50, res9 = {"model": "resnet50"}, {"model": "resnet9"}
    result = make_result({"stage1_models": seeds(res50, [0.89, 0.88], train_loss_epoch1=[3.0, 2.5])
                          + seeds(res9, [0.94, 0.93], train_loss_epoch1=[0.5, 0.6])})
    text = evidence.unstable_starts(result)
    assert "In 1 of 2 cells the mean training loss of the first epoch is above $\\ln 10 = 2.30$" in text
    assert "model=resnet50, 2.75 (2 seeds)" in text and "resnet9" not in text
    calm = make_result({"stage1_models": seeds(res9, [0.94, 0.93], train_loss_epoch1=[2.25, 2.3])})  # just below
    assert evidence.unstable_starts(calm).startswith("In every cell the mean training loss of the first epoch stays")
    assert evidence.unstable_starts(make_result({"stage1_models": seeds(res9, [0.94])})) == latex.NA  # no curves read
    # just above ln 10 = 2.302585: never '2.30 ... above 2.30' (the 3-seed rehearsal listed cells so)
    close = make_result({"stage1_models": seeds(res50, [0.5, 0.5], train_loss_epoch1=[2.3030, 2.3030])
                         + seeds(res9, [0.9, 0.9], train_loss_epoch1=[3.0, 3.0])})
    text = evidence.unstable_starts(close)
    assert "above $\\ln 10 = 2.3026$" in text and "model=resnet50, 2.3030 (2 seeds)" in text
    assert "model=resnet9, 3.0000 (2 seeds)" in text
    assert text.index("model=resnet9") < text.index("model=resnet50")  # the highest loss first


def test_plain_net_that_trains_worse_is_an_optimisation_gap() -> None:
    res, plain = {"model": "resnet18"}, {"model": "plain18"}
    result = make_result({"stage1_models": seeds(res, [0.93, 0.931, 0.929], train_loss_final=[0.10, 0.11, 0.09])
                          + seeds(plain, [0.91, 0.912, 0.908], train_loss_final=[0.30, 0.31, 0.29])})
    text = evidence.evidence_macros(result)["readResVsPlainEighteen"]
    p_acc = welch(np.array([0.93, 0.931, 0.929]), np.array([0.91, 0.912, 0.908]))
    p_loss = welch(np.array([0.30, 0.31, 0.29]), np.array([0.10, 0.11, 0.09]))
    assert r"scores 2.00\,pp higher than the plain net" in text and evidence.p_math(p_acc) in text
    assert "0.300 vs.\\ 0.100" in text and evidence.p_math(p_loss) in text
    assert "harder to optimise" in text
    assert "first epoch" not in text  # no first-epoch losses read: no sentence on them


def test_residual_vs_plain_ends_with_how_each_net_started() -> None:
    res, plain = {"model": "resnet18"}, {"model": "plain18"}
    result = make_result({"stage1_models": seeds(res, [0.92, 0.921], train_loss_final=[0.19, 0.18],
                                                 train_loss_epoch1=[1.2, 1.1])
                          + seeds(plain, [0.93, 0.931], train_loss_final=[0.14, 0.15], train_loss_epoch1=[0.7, 0.6])})
    text = evidence.evidence_macros(result)["readResVsPlainEighteen"]
    p_early = welch(np.array([0.7, 0.6]), np.array([1.2, 1.1]))
    assert text.endswith(f"Over the first epoch their training losses average 0.650 (plain) and 1.150 (residual; "
                         f"{evidence.p_math(p_early)}).")


def test_plain_net_that_trains_as_well_is_a_generalisation_gap() -> None:
    skip, noskip = {"model.skip": True}, {"model.skip": False}
    loss = [0.10, 0.12, 0.11]
    result = make_result({"stage2_skip": seeds(skip, [0.93, 0.931, 0.929], train_loss_final=loss)
                          + seeds(noskip, [0.91, 0.912, 0.908], train_loss_final=loss[::-1])})
    text = evidence.evidence_macros(result)["readSkipVsNoSkip"]
    assert "do not differ significantly" in text and "generalisation rather than in optimisation" in text
    assert "harder to optimise" not in text


def test_a_plain_net_that_trains_worse_but_scores_as_well_has_no_gap_to_explain() -> None:
    res, plain = {"model": "resnet18"}, {"model": "plain18"}
    result = make_result({"stage1_models": seeds(res, [0.93, 0.92, 0.94], train_loss_final=[0.10, 0.11, 0.09])
                          + seeds(plain, [0.925, 0.935, 0.93], train_loss_final=[0.30, 0.31, 0.29])})
    text = evidence.evidence_macros(result)["readResVsPlainEighteen"]
    assert "within seed noise of each other in test accuracy" in text
    assert "also" not in text and "rather than overfitting" not in text
    assert "harder to optimise, though its test accuracy is not significantly lower." in text


def test_a_plain_net_that_trains_worse_but_scores_higher_is_not_said_to_score_no_lower() -> None:
    res, plain = {"model": "resnet18"}, {"model": "plain18"}
    result = make_result({"stage1_models": seeds(res, [0.91, 0.912, 0.908], train_loss_final=[0.10, 0.11, 0.09])
                          + seeds(plain, [0.93, 0.931, 0.929], train_loss_final=[0.30, 0.31, 0.29])})
    text = evidence.evidence_macros(result)["readResVsPlainEighteen"]
    assert r"scores 2.00\,pp lower than the plain net" in text
    assert text.endswith("it is harder to optimise, yet it scores higher in test accuracy.")
    assert "not significantly lower" not in text


def test_a_difference_within_seed_noise_is_not_called_an_effect() -> None:
    skip, noskip = {"model.skip": True}, {"model.skip": False}
    result = make_result({"stage2_skip": seeds(skip, [0.93, 0.92, 0.94], train_loss_final=[0.1, 0.2, 0.3])
                          + seeds(noskip, [0.925, 0.935, 0.93], train_loss_final=[0.2, 0.1, 0.25])})
    text = evidence.evidence_macros(result)["readSkipVsNoSkip"]
    assert "within seed noise of each other in test accuracy" in text
    assert "higher than" not in text and "lower than" not in text
    assert "no sign that the plain net is harder to optimise" in text


def test_missing_presets_give_empty_sentences_and_single_seeds_no_test() -> None:
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.93]) + seeds({"model.skip": False}, [0.92])})
    macros = evidence.evidence_macros(result)
    assert set(macros) >= {"readResVsPlainEighteen", "readDepth", "readWidth", "readNorm", "readLrSchedule",
                           "readDeadActivation", "readDeadLr", "readAugment", "readRegularization"}
    assert macros["readNorm"] == "" and macros["readResVsPlainEighteen"] == "" and macros["readLrSchedule"] == ""
    assert "too few seeds for a test" in macros["readSkipVsNoSkip"]
    assert report_tables.lr_schedules_table(result) == "" and report_tables.main_effects_table(result) == ""


def test_depth_and_width_quote_parameters_and_gaps() -> None:
    def cell(model: str, width: int, accs: list[float], params: int, gaps: list[float]) -> list[dict[str, Any]]:
        return seeds({"model": model, "model.width": width}, accs, params=[params] * 3, gap_final=gaps)

    result = make_result({"stage1_capacity": cell("resnet18", 16, [0.90, 0.905, 0.91], 700_000, [0.01, 0.012, 0.011])
                          + cell("resnet18", 64, [0.93, 0.935, 0.94], 11_200_000, [0.05, 0.051, 0.049])
                          + cell("resnet34", 64, [0.935, 0.93, 0.94], 21_300_000, [0.06, 0.05, 0.055])})
    macros = evidence.evidence_macros(result)
    assert (r"ResNet-34 at width 64 (1.9$\times$ the parameters) and ResNet-18 at width 64 are within seed noise"
            in macros["readDepth"])
    assert r"ResNet-18 at width 64 (16.0$\times$ the parameters) scores 3.00\,pp higher" in macros["readWidth"]
    assert r"+5.00\,pp for the larger net and +1.10\,pp for the smaller" in macros["readWidth"]


def test_normalisation_quotes_the_first_epoch_and_divergences() -> None:
    bn, none = {"norm": "batchnorm"}, {"norm": "none"}
    runs = (seeds(bn, [0.93, 0.931, 0.932], val_acc_epoch1=[0.80, 0.81, 0.82])
            + seeds(none, [0.905, 0.907], val_acc_epoch1=[0.60, 0.62])
            + [{"cell": none, "status": "failed", "test_acc": None}])
    text = evidence.evidence_macros(make_result({"stage2_norm": runs}))["readNorm"]
    assert r"ResNet-9 without normalisation scores 2.50\,pp lower than ResNet-9 with BatchNorm" in text
    assert r"the unnormalised net reaches 61.00\,\% validation accuracy against 81.00\,\%" in text and "speeds up early training" in text
    assert r"Of its 3 runs, 1 failed (Table~\ref{tab:problems})" in text


def test_a_cell_whose_runs_all_diverged_is_reported_not_left_out() -> None:
    runs = (seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "groupnorm"}, [0.93, 0.92, 0.94])
            + [{"cell": {"norm": "none"}, "status": "failed", "test_acc": None} for _ in range(3)]
            + [{"cell": {"norm": "none"}, "status": "running", "test_acc": None}])
    macros = evidence.evidence_macros(make_result({"stage2_norm": runs}))
    assert macros["readNorm"] == (r"ResNet-9 without normalisation has no completed run: 3 of its 4 runs failed "
                                  r"(Table~\ref{tab:problems}), so there is no accuracy to compare.")
    assert "norm=none no completed run (3 failed)" in macros["readNorms"] and "norm=groupnorm within" in \
        macros["readNorms"]


def test_a_cell_still_running_is_neither_failed_nor_untested() -> None:
    """A cell whose only run is still running has no result yet: it is not listed among the cells whose runs all
    failed, and neither it nor the failed cell counts as a comparison not tested yet."""
    runs = (seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "none"}, [0.90, 0.901, 0.902])
            + [{"cell": {"norm": "groupnorm"}, "status": "failed", "test_acc": None},
               {"cell": {"norm": "layernorm"}, "status": "running", "test_acc": None}])
    result = make_result({"stage2_norm": runs})
    summary = evidence.preset_summary(result, "stage2_norm")
    assert summary.endswith(r" Without a completed run: norm=groupnorm (1 failed); see Table~\ref{tab:problems}.")
    assert "layernorm" not in summary
    assert evidence.findings(result).startswith("Comparisons of a cell with its preset's reference cell: 1; ")
    assert evidence.untested_count(result.cells) == 0


def test_with_no_difference_to_test_the_text_says_why_rather_than_blaming_the_seeds() -> None:
    """A sweep whose other cell diverged (every run failed), a single-cell sweep and a preset whose reference failed
    have no difference to test whatever their seeds: no_comparison says which, findings says the same, and none counts
    as untested for want of seeds (the report said "needs two seeds ..., and the cells have 2 seeds"). With one seed
    per cell the reason is the seeds, and no_comparison has nothing to say."""
    failed = [{"cell": {"optimizer.lr": 100000}, "status": "failed", "test_acc": None} for _ in range(2)]
    diverged = make_result({"mine": seeds({"optimizer.lr": 0.1}, [0.9, 0.91]) + failed})
    said = ("No difference is tested: the only cell besides the reference, optimizer.lr=100000, has no result "
            "(2 failed).")
    assert evidence.no_comparison(diverged.cells) == said == evidence.findings(diverged)
    assert evidence.untested_count(diverged.cells) == 0
    single = make_result({"mine": seeds({"model.width": 8}, [0.9, 0.91])})
    assert evidence.no_comparison(single.cells) == evidence.findings(single) == (
        "No difference is tested: the preset has a single cell, so there is nothing to compare.")
    two = make_result({"a": seeds({"model.width": 8}, [0.9]), "b": seeds({"model.width": 16}, [0.9])})
    assert evidence.no_comparison(two.cells) == ("No difference is tested: each of the 2 presets has a single cell, so "
                                                 "there is nothing to compare.")
    several = make_result({"mine": seeds({"lr": 0.1}, [0.9]) + [{"cell": {"lr": 1}, "status": "failed"},
                                                                  {"cell": {"lr": 2}, "status": "running"}]})
    assert evidence.no_comparison(several.cells) == ("No difference is tested: none of the 2 cells besides the "
                                                     "reference has a result (1 failed, 1 unfinished).")
    no_ref = make_result({"stage2_norm": [{"cell": {"norm": "batchnorm"}, "status": "failed", "test_acc": None}]
                          + seeds({"norm": "none"}, [0.8, 0.81]) + seeds({"norm": "groupnorm"}, [0.85, 0.86])})
    assert evidence.untested_count(no_ref.cells) == 0  # no difference from a reference without a result
    assert evidence.no_comparison(no_ref.cells) == ("No difference is tested: the reference cell, norm=batchnorm, has "
                                                    "no result (1 failed) to compare the other cells with.")
    assert ("the reference norm=batchnorm has no completed run. No cell could therefore be tested against the "
            "reference.") in evidence.preset_summary(no_ref, "stage2_norm")
    nothing = make_result({"mine": [{"cell": {"lr": lr}, "status": "failed"} for lr in (1, 2)]})
    assert evidence.no_comparison(nothing.cells) == "No difference is tested: no cell has a result (2 failed)."
    one_seed = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.9]) + seeds({"norm": "none"}, [0.8])})
    assert evidence.no_comparison(one_seed.cells) == latex.NA and evidence.untested_count(one_seed.cells) == 1
    assert evidence.findings(one_seed) == "No comparison with a reference cell had at least two seeds on both sides."


def test_normalisation_and_augmentation_claim_an_effect_only_in_its_direction() -> None:
    """BatchNorm is said to speed up early training only when the unnormalised net is significantly slower after one
    epoch, augmentation to act as a regulariser only when it significantly narrows the gap; normalisation's accuracy
    (the key comparison, asked the other way round) carries the p corrected across the questions."""
    bn, none = {"norm": "batchnorm"}, {"norm": "none"}
    result = make_result({
        "stage2_norm": seeds(bn, [0.93, 0.931, 0.932], val_acc_epoch1=[0.80, 0.81, 0.82])
        + seeds(none, [0.90, 0.901, 0.902], val_acc_epoch1=[0.85, 0.86, 0.87]),
        "stage2_skip": seeds({"model.skip": True}, [0.93, 0.931, 0.932])
        + seeds({"model.skip": False}, [0.92, 0.93, 0.94]),
        "stage3_augment": seeds({"augment": "none"}, [0.91, 0.912, 0.908], gap_final=[0.01, 0.011, 0.009])
        + seeds({"augment": "standard"}, [0.93, 0.931, 0.929], gap_final=[0.08, 0.081, 0.079])})
    macros = evidence.evidence_macros(result)
    early = evidence.compare(result, "stage2_norm", none, bn, "val_acc_epoch1")
    assert early is not None and early.significant(ALPHA) and early.diff > 0
    assert macros["readNorm"].endswith(r"the unnormalised net reaches 86.00\,\% validation accuracy against 81.00\,\% "
                                       rf"with BatchNorm ({evidence.p_math(early.p)}).")
    key = evidence.key_comparisons(result).set_index("question").loc["normalisation"]
    assert key["p_holm"] != key["p"] and evidence.p_math(key["p_holm"], evidence.HOLM) in macros["readNorm"]
    gap = evidence.compare(result, "stage3_augment", {"augment": "none"}, {"augment": "standard"}, "gap_final")
    assert gap is not None and gap.significant(ALPHA) and gap.diff < 0
    assert "regulariser" not in macros["readAugment"] and macros["readAugment"].endswith(
        rf"+1.00\,pp without augmentation and +8.00\,pp with it ({evidence.p_math(gap.p)}).")


def test_cells_above_and_below_their_reference_are_listed_largest_difference_first() -> None:
    runs = (seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "groupnorm"}, [0.94, 0.941, 0.942])
            + seeds({"norm": "layernorm"}, [0.95, 0.951, 0.952]) + seeds({"norm": "instancenorm"}, [0.92, 0.921, 0.922])
            + seeds({"norm": "none"}, [0.90, 0.901, 0.902]))
    result = make_result({"stage2_norm": runs})
    assert result.cells["significant"].sum() == 4
    items = re.findall(r"\\item \\texttt\{stage2\\_norm\}: (norm=\w+)", evidence.findings(result))
    assert items == ["norm=layernorm", "norm=groupnorm"]
    items = re.findall(r"\\item \\texttt\{stage2\\_norm\}: (norm=\w+)", evidence.negative_results(result))
    assert items == ["norm=none", "norm=instancenorm"]


def test_learning_rate_against_schedule_spread_and_table() -> None:
    accs = {("cosine", 0.1): 0.93, ("cosine", 0.3): 0.90, ("constant", 0.1): 0.925, ("constant", 0.3): 0.88}
    runs = [run for (sched, lr), a in accs.items()
            for run in seeds({"optimizer.lr": lr, "scheduler": sched}, [a - 0.001, a, a + 0.001])]
    result = make_result({"stage2_lr": runs})
    text, table = evidence.lr_schedule_spread(result)
    assert set(table["scheduler"]) == {"cosine", "constant"} and (table["best_lr"] == 0.1).all()
    assert table.set_index("scheduler")["spread"].to_dict() == pytest.approx({"cosine": 0.03, "constant": 0.045})
    # within a schedule accuracy moves by (3 + 4.5) / 2 pp; within a learning rate by (0.5 + 2) / 2 pp
    assert r"by 3.75\,pp on average within a schedule" in text and r"by 1.25\,pp within a learning rate" in text
    assert "best learning rate is 0.1 for every schedule" in text
    # against the seed noise (0.1 pp) the schedules' 1.25 pp is an effect too (pooling lr into the noise hid it)
    assert "Both the learning rate and the schedule move accuracy significantly (two-way ANOVA" in text
    tex = report_tables.lr_schedules_table(result)
    assert r"\label{tab:lr-schedules}" in tex and r"\texttt{cosine} & 0.1 & 93.00 & 0.3 & 90.00 & 3.00 & 0" in tex


def test_two_significant_settings_without_an_interaction_are_both_said_to_matter() -> None:
    """Learning rate and schedule add up (each schedule 1 pp below the other at every learning rate): both main effects
    are significant, their interaction is not and goes unmentioned."""
    accs = {("cosine", 0.1): 0.93, ("cosine", 0.3): 0.90, ("constant", 0.1): 0.92, ("constant", 0.3): 0.89}
    runs = [run for (sched, lr), a in accs.items()
            for run in seeds({"optimizer.lr": lr, "scheduler": sched}, [a - 0.001, a, a + 0.001])]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "Both the learning rate and the schedule move accuracy significantly (two-way ANOVA" in text
    assert text.endswith(", their interaction $p=1$).")


def test_a_learning_rate_whose_runs_all_diverged_is_counted_and_named() -> None:
    runs = [run for lr, a in ((0.01, 0.90), (0.1, 0.93)) for sched in ("cosine", "constant")
            for run in seeds({"optimizer.lr": lr, "scheduler": sched}, [a - 0.001, a, a + 0.001])]
    runs += [{"cell": {"optimizer.lr": 0.3, "scheduler": "constant"}, "status": "failed", "test_acc": None}] * 3
    result = make_result({"stage2_lr": runs})
    text, table = evidence.lr_schedule_spread(result)
    assert table.set_index("scheduler")["failed"].to_dict() == {"cosine": 0, "constant": 3}
    assert evidence.preset_summary(result, "stage2_lr").endswith(
        r" Without a completed run: optimizer.lr=0.3, scheduler=constant (3 failed); see Table~\ref{tab:problems}.")
    assert (r"Every run failed at learning rate 0.3 with the constant schedule (3 runs); see Table~\ref{tab:problems}. "
            "The spreads and best learning rates above leave this cell out.") in text
    assert r"\texttt{constant} & 0.1 & 93.00 & 0.01 & 90.00 & 3.00 & 3" in report_tables.lr_schedules_table(result)


def test_main_effects_pool_the_other_factors() -> None:
    runs = []
    for wd in (0.0, 5e-4):
        for ls in (0.0, 0.1):
            base = 0.90 + (0.02 if wd else 0.0)  # weight decay helps by 2 pp, label smoothing not at all
            runs += seeds({"optimizer.weight_decay": wd, "trainer.label_smoothing": ls, "model.dropout": 0.0},
                          [base - 0.002, base, base + 0.002])
    result = make_result({"stage3_regularization": runs})
    effects = evidence.main_effects(result)
    wd = effects[effects["key"] == "optimizer.weight_decay"].set_index("level")
    assert wd.loc[5e-4, "n"] == 6 and wd.loc[5e-4, "delta"] == pytest.approx(0.02) and wd.loc[5e-4, "p"] < 1e-3
    ls = effects[effects["key"] == "trainer.label_smoothing"].set_index("level")
    assert ls.loc[0.1, "delta"] == pytest.approx(0.0) and ls.loc[0.1, "p"] == pytest.approx(1.0)  # two-sided
    assert "dropout" not in set(effects["factor"])  # one level only: no main effect to estimate
    text = evidence.evidence_macros(result)["readRegularization"]
    assert r"weight decay 0.0005: higher by 2.00\,pp" in text and "label smoothing 0.1: within seed noise" in text
    table = report_tables.main_effects_table(result)
    assert r"\label{tab:main-effects}" in table
    # 6 runs per level (2 cells x 3 seeds); the baseline level has no difference or test of its own
    assert r"weight decay & 0 & 6 & 90.00 &  &  \\" in table
    assert r"weight decay & 0.0005 & 6 & 92.00 & +2.00 & $<$0.001 \\" in table
    assert r"label smoothing & 0 & 6 & 91.00 &  &  \\" in table
    assert r"label smoothing & 0.1 & 6 & 91.00 & +0.00 & 1 \\" in table


def test_a_main_effect_is_tested_against_the_seed_noise_not_against_the_other_factors() -> None:
    """Label smoothing moves accuracy by 5 pp, weight decay by 0.5 pp, the seeds by 0.1 pp: pooled over label
    smoothing, weight decay's runs spread by 5 pp and a two-sample test of them sees no effect."""
    runs = []
    for wd in (0.0, 5e-4):
        for ls in (0.0, 0.1):
            acc = 0.90 + (0.005 if wd else 0.0) + (0.05 if ls else 0.0)
            cell = {"optimizer.weight_decay": wd, "trainer.label_smoothing": ls}
            runs += seeds(cell, [acc - 0.001, acc, acc + 0.001])
    effects = evidence.main_effects(make_result({"stage3_regularization": runs}))
    wd = effects[effects["key"] == "optimizer.weight_decay"].set_index("level")
    pooled = welch(np.array([r["test_acc"] for r in runs if r["cell"]["optimizer.weight_decay"]]),
                   np.array([r["test_acc"] for r in runs if not r["cell"]["optimizer.weight_decay"]]))
    assert pooled > ALPHA and wd.loc[5e-4, "p"] < 1e-4 and wd.loc[5e-4, "delta"] == pytest.approx(0.005)
    # two-sided t-test against the seed noise: variance 1e-6 within each of the 4 cells, 12 - 4 = 8 degrees of
    # freedom, 6 runs on either side
    t = 0.005 / math.sqrt(1e-6 * (1 / 6 + 1 / 6))
    assert wd.loc[5e-4, "p"] == pytest.approx(2 * scipy_stats.t.sf(t, 8), rel=1e-6)
    ls = effects[effects["key"] == "trainer.label_smoothing"].set_index("level")
    t = 0.05 / math.sqrt(1e-6 * (1 / 6 + 1 / 6))
    assert ls.loc[0.1, "p"] == pytest.approx(2 * scipy_stats.t.sf(t, 8), rel=1e-6)

def test_main_effects_name_their_baseline_when_it_is_not_none() -> None:
    runs = [run for wd, a in ((1e-4, [0.90, 0.91, 0.89]), (5e-4, [0.92, 0.93, 0.91]))
            for run in seeds({"optimizer.weight_decay": wd, "trainer.label_smoothing": 0.0}, a)]
    text = evidence.regularisation(make_result({"stage3_regularization": runs}),
                                   evidence.main_effects(make_result({"stage3_regularization": runs})))
    assert "against the runs at its lowest level" in text and "without it" not in text
    assert "(Table~\\ref{tab:main-effects}): weight decay 0.0005 (vs.\\ 0.0001): " in text


def test_dead_units_by_activation_and_by_learning_rate() -> None:
    acts = {"relu": (0.10, 0.90), "leaky_relu": (0.05, 0.91), "elu": (0.02, 0.92), "gelu": (0.01, 0.93),
            "silu": (0.0, 0.94)}
    runs, dead_rows = [], []
    for act, (dead, acc) in acts.items():
        for s in range(3):
            i = len(runs)
            runs.append({"cell": {"activation": act}, "test_acc": acc + 0.001 * s})
            dead_rows.append({"run_dir": f"/stage2_activation/{i}", "preset": "stage2_activation",
                              "activation": act, "optimizer.lr": 0.1, "dead_fraction": dead + 0.001 * s})
    for lr, dead in ((0.01, 0.02), (0.3, 0.20)):
        dead_rows += [{"run_dir": f"/lr/{lr}/{s}", "preset": "stage2_lr", "activation": "relu", "optimizer.lr": lr,
                       "dead_fraction": dead + 0.01 * s} for s in range(3)]
    result = make_result({"stage2_activation": runs}, dead=pd.DataFrame(dead_rows))
    macros = evidence.evidence_macros(result)
    assert "relu 10.10" not in macros["readDeadActivation"]  # the per-activation list is \readDead's, not repeated
    # one point per activation (5): the smallest two-sided p of a perfect ordering is 2/5! = 0.0167
    assert (r"Across the 5 activations of \texttt{stage2\_activation} (each one's mean over its seeds), the rank "
            r"correlation between the dead fraction and test accuracy is $\rho=-1.00$ ($p=0.0167$, permutation test): "
            "more dead units go with lower accuracy.") in macros["readDeadActivation"]
    assert r"21.00\,\% of the units are dead at learning rate 0.3 against 3.00\,\% at 0.01" in macros["readDeadLr"]
    assert "large steps kill units" in macros["readDeadLr"]
    lr_runs = result.dead_runs["preset"] == "stage2_lr"
    result.dead_runs.loc[lr_runs, "dead_fraction"] = 0.0
    assert evidence.dead_by_lr(result) == ("With ReLU, no unit is dead at any of the 2 learning rates, 0.01 to 0.3 "
                                           "(all schedules pooled).")
    result.dead_runs = pd.concat([result.dead_runs, pd.DataFrame([{
        "run_dir": "/lr/0.1/0", "preset": "stage2_lr", "activation": "relu", "optimizer.lr": 0.1,
        "dead_fraction": 0.05}])], ignore_index=True)  # units died only in between: nothing to test at the ends
    assert evidence.dead_by_lr(result) == ("With ReLU, no unit is dead at learning rate 0.3 or at 0.01 (all schedules "
                                           "pooled).")


def test_dead_units_of_few_activations_are_not_a_relation_however_many_seeds() -> None:
    """Three activations, ten seeds each: the runs of one activation are not independent evidence about
    activations, so the test has three points, and no ordering of three is significant (pooling the 30 runs
    gave p < 0.001)."""
    acts = {"relu": (0.10, 0.90), "gelu": (0.01, 0.93), "silu": (0.0, 0.94)}
    runs, dead_rows = [], []
    for act, (dead, acc) in acts.items():
        for s in range(10):
            dead_rows.append({"run_dir": f"/stage2_activation/{len(runs)}", "preset": "stage2_activation",
                              "activation": act, "dead_fraction": dead + 0.001 * s})
            runs.append({"cell": {"activation": act}, "test_acc": acc + 0.001 * s})
    text = evidence.evidence_macros(make_result({"stage2_activation": runs}, dead=pd.DataFrame(dead_rows)))[
        "readDeadActivation"]
    assert "Across the 3 activations" in text and r"$\rho=-1.00$ ($p=0.333$, permutation test)" in text
    assert text.endswith("no significant relation between dead units and accuracy (with 3 activations, no ordering "
                         "could be significant).")


def test_augmentation_compares_the_generalisation_gap() -> None:
    none, standard = {"augment": "none"}, {"augment": "standard"}
    result = make_result({"stage3_augment": seeds(none, [0.91, 0.912, 0.908], gap_final=[0.08, 0.081, 0.079])
                          + seeds(standard, [0.93, 0.931, 0.929], gap_final=[0.01, 0.011, 0.009])})
    text = evidence.evidence_macros(result)["readAugment"]
    assert r"ResNet-9 with crop + flip scores 2.00\,pp higher than ResNet-9 without augmentation" in text
    assert r"+8.00\,pp without augmentation and +1.00\,pp with it" in text and "acts as a regulariser" in text


def test_findings_and_negative_results_list_the_significant_cells() -> None:
    runs = (seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "none"}, [0.90, 0.901, 0.902])
            + seeds({"norm": "groupnorm"}, [0.925, 0.935, 0.93]) + seeds({"norm": "layernorm"}, [0.95, 0.951, 0.952]))
    result = make_result({"stage2_norm": runs})
    macros = evidence.evidence_macros(result)
    found, negative = macros["readFindings"], macros["readNegative"]
    assert "reference cell: 3; significant after Holm's correction: 2 (1 higher, 1 lower); within seed noise: 1." \
        in found
    assert r"\item \texttt{stage2\_norm}: norm=layernorm is higher than norm=batchnorm by 2.00\,pp" in found
    assert "norm=none" not in found and found.count(r"\item ") == 1
    assert negative.startswith("Of the 3 alternatives we tried, 1 is within seed noise of the reference.")
    assert "In all, 1 cell scores significantly lower" in negative
    assert r"\item \texttt{stage2\_norm}: norm=none is lower than norm=batchnorm by 3.00\,pp" in negative
    summary = evidence.preset_summary(result, "stage2_norm")
    for text in (negative, summary):  # a count never starts a sentence
        assert not re.search(r"(^|[.:] )\d", text), text
    assert "groupnorm" not in found + negative and negative.count(r"\item ") == 1
    single = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.9])})
    assert "at least two seeds" in evidence.evidence_macros(single)["readFindings"]
    assert evidence.evidence_macros(single)["readNegative"] == (  # measured, not called a negative result
        "No cell can be called worse than its reference yet: no comparison has two seeds on both sides. Measured on "
        r"the seeds so far, the cell furthest below its preset's reference: norm=none of \texttt{stage2\_norm} "
        r"($-$3.00\,pp against norm=batchnorm); the further seeds will tell whether it is an effect.")
    two = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "groupnorm"}, [0.92])
                       + seeds({"norm": "none"}, [0.9])})
    assert ("the 2 cells furthest below their preset's reference: norm=none of \\texttt{stage2\\_norm} ($-$3.00\\,pp "
            "against norm=batchnorm) and norm=groupnorm") in evidence.negative_results(two)  # furthest first
    level = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.9]) + seeds({"norm": "none"}, [0.93])})
    assert evidence.evidence_macros(level)["readNegative"] == ""  # nothing below its reference


def test_confusion_groups_share_of_errors() -> None:
    from fmnist.analysis.predictions import ClassResults
    from fmnist.data.resplit import CLASS_NAMES

    names = list(CLASS_NAMES)
    confusion = np.diag(np.full(10, 90))
    shirt, tshirt, coat, sneaker, boot, bag = (names.index(c) for c in
                                               ("Shirt", "T-shirt/top", "Coat", "Sneaker", "Ankle boot", "Bag"))
    confusion[shirt, tshirt], confusion[shirt, coat], confusion[shirt, bag] = 6, 2, 2  # 10 shirt errors
    confusion[sneaker, boot] = 5
    confusion[bag, tshirt] = 5  # 20 errors: 8 upper-body, 5 footwear, 7 across groups
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91])})
    two_runs = pd.DataFrame({"run_dir": ["a", "b"], "class": ["Bag", "Bag"], "accuracy": [0.9, 0.9]})
    result.classes = ClassResults("model.skip=True", "stage2_skip", confusion, two_runs, pd.DataFrame(), "")
    text = evidence.evidence_macros(result)["readConfusionGroups"]
    assert r"Of all 20 test errors (seeds pooled), 40.0\,\% confuse two upper-body garments" in text
    assert r"and 25.0\,\% two kinds of footwear" in text
    one_run = two_runs.iloc[:1]
    result.classes = ClassResults("model.skip=True", "stage2_skip", confusion * 100, one_run, pd.DataFrame(), "")
    # as other counts; one run's errors are not "pooled" over seeds
    assert "Of all 2,000 test errors, 40.0" in evidence.evidence_macros(result)["readConfusionGroups"]
    assert r"Shirt is taken for: T-shirt/top 60.0\,\%, Coat 20.0\,\%, Bag 20.0\,\%." in text


def test_every_alternative_against_the_reference_as_its_table_has_it() -> None:
    runs = (seeds({"optimizer": "sgd"}, [0.93, 0.931, 0.932]) + seeds({"optimizer": "adam"}, [0.90, 0.901, 0.902])
            + seeds({"optimizer": "adamw"}, [0.925, 0.935, 0.93]) + seeds({"optimizer": "rmsprop"}, [0.92]))
    result = make_result({"stage2_optimizer": runs})
    text = evidence.evidence_macros(result)["readOptimizers"]
    cells = result.cells.set_index("cell")
    assert text.startswith("Against optimizer=sgd (Holm-corrected within the preset, "
                           "Table~\\ref{tab:preset-stage2_optimizer}): optimizer=adam lower by 3.00\\,pp ($p_\\mathrm{Holm}")
    assert evidence.p_math(cells.loc["optimizer=adamw", "p_holm"], evidence.HOLM) in text
    assert "optimizer=adamw within seed noise" in text and "optimizer=rmsprop $-$1.10\\,pp (too few seeds" in text
    assert evidence.evidence_macros(result)["readNorms"] == ""  # no stage2_norm runs


def test_key_comparisons_table_has_one_row_per_analysed_question(tmp_path: Path) -> None:
    skip = seeds({"model.skip": True}, [0.93, 0.931, 0.932]) + seeds({"model.skip": False}, [0.92, 0.93, 0.94])
    norm = seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "none"}, [0.90, 0.901, 0.902])
    result = make_result({"stage2_skip": skip, "stage2_norm": norm})
    rows = evidence.key_comparisons(result).set_index("question")
    assert list(rows.index) == ["skip connections, ResNet-9", "normalisation"]  # the others were not analysed
    norm = rows.loc["normalisation"]
    assert (norm["a"], norm["b"], norm["n_a"], norm["n_b"]) == ("BatchNorm", "none", 3, 3)
    assert norm["delta"] == pytest.approx(0.03) and norm["p"] < ALPHA and norm["verdict"] == "higher"
    assert rows.loc["skip connections, ResNet-9", "verdict"] == "within seed noise"
    tex = report_tables.key_comparisons_table(result)
    assert tex.startswith(r"Table~\ref{tab:key-comparisons}") and r"\label{tab:key-comparisons}" in tex
    assert r"normalisation & \texttt{stage2\_norm} & BatchNorm & none & 3 / 3 & 93.10 & 90.10 & +3.00 &" in tex
    assert report_tables.key_comparisons_table(make_result({"stage2_lr": seeds({"optimizer.lr": 0.1}, [0.9])})) == ""
    # 95 % confidence interval of the difference (Welch), and the forest plot of the rows
    low, high = rows.loc["normalisation", ["ci_low", "ci_high"]]
    ci = scipy_stats.ttest_ind([0.93, 0.931, 0.932], [0.90, 0.901, 0.902], equal_var=False).confidence_interval()
    assert (low, high) == pytest.approx((ci.low, ci.high)) and low < norm["delta"] < high
    from fmnist.analysis import figures, style

    with style.context():
        written = figures.key_comparisons(evidence.key_comparisons(result), tmp_path)
    assert {p.name for p in written} == {"key_comparisons.pdf", "key_comparisons.png"}
    assert all(p.stat().st_size > 1000 for p in written)


def test_a_key_comparison_has_one_holm_p_wherever_it_is_quoted() -> None:
    """BatchNorm against none is a key comparison and a comparison with stage2_norm's reference. Corrected within the
    preset (3 comparisons) its p was 0.064, across the questions (2 here) 0.043: the table called it seed noise and
    the answers an effect. key_family_cells gives it the questions' p everywhere and corrects the preset's other
    comparisons among themselves."""
    norm = (seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932]) + seeds({"norm": "none"}, [0.9167, 0.92, 0.9233])
            + seeds({"norm": "groupnorm"}, [0.925, 0.935, 0.93]) + seeds({"norm": "layernorm"}, [0.92, 0.93, 0.94]))
    skip = seeds({"model.skip": True}, [0.93, 0.931, 0.932]) + seeds({"model.skip": False}, [0.92, 0.93, 0.94])
    result = make_result({"stage2_norm": norm, "stage2_skip": skip})
    raw = result.cells.set_index("cell")["p_value"]
    before = result.cells.set_index("cell").loc["norm=none"]
    assert before["p_holm"] == pytest.approx(3 * raw["norm=none"]) and before["verdict"] == "within seed noise"
    result.cells = evidence.key_family_cells(result)
    cells = result.cells.set_index("cell")
    key = evidence.key_comparisons(result).set_index("question").loc["normalisation"]
    none = cells.loc["norm=none"]
    assert bool(none["key_comparison"]) and not cells.loc[["norm=groupnorm", "norm=layernorm"], "key_comparison"].any()
    assert none["p_holm"] == pytest.approx(key["p_holm"]) == pytest.approx(2 * raw["norm=none"])
    assert none["verdict"] == "lower" and bool(none["significant"]) and key["verdict"] == "higher"
    assert cells.loc["model.skip=False", "p_holm"] == pytest.approx(
        evidence.key_comparisons(result).set_index("question").loc["skip connections, ResNet-9", "p_holm"])
    others = holm([raw["norm=groupnorm"], raw["norm=layernorm"]])  # the preset's family without the key comparison
    assert list(cells.loc[["norm=groupnorm", "norm=layernorm"], "p_holm"]) == pytest.approx(others)
    p = evidence.p_math(key["p_holm"], evidence.HOLM)
    macros = evidence.evidence_macros(result)
    assert rf"norm=none lower by 1.10\,pp ({p}, across the questions)" in macros["readNorms"]
    assert "or across the questions where so marked" in macros["readNorms"]
    assert rf"norm=none is lower than norm=batchnorm by 1.10\,pp ({p}, across the questions)" in macros["readNegative"]
    assert rf"Normalisation: BatchNorm against none, higher by 1.10\,pp ({p})" in macros["readAnswers"]
    assert evidence.p_math(before["p_holm"], evidence.HOLM) not in "".join(macros.values())
    table = report_tables.preset_table(result, "stage2_norm")
    assert rf"{latex.pvalue(key['p_holm'])}$^\dagger$ & lower" in table and "corrected across the questions" in table
    assert "dagger" not in report_tables.preset_table(make_result({"stage2_norm": norm}), "stage2_norm")


def test_residual_vs_plain_leaves_the_comparisons_with_the_reference_in_the_presets_family() -> None:
    """stage1_models' reference is ResNet-9, so its key comparison (ResNet-18 against Plain-18) is not a comparison
    with the reference: the preset's table keeps each cell's p against ResNet-9, Holm-corrected within the preset."""
    runs = (seeds({"model": "resnet9"}, [0.93, 0.931, 0.932]) + seeds({"model": "resnet18"}, [0.92, 0.925, 0.93])
            + seeds({"model": "plain18"}, [0.90, 0.91, 0.905]))
    result = make_result({"stage1_models": runs})  # the reference is the first cell, model=resnet9
    assert evidence.key_comparisons(result)["question"].tolist() == ["residual vs plain, 18 layers"]
    cells = evidence.key_family_cells(result).set_index("cell")
    assert not cells["key_comparison"].any()
    raw = cells["p_value"]
    assert list(cells.loc[["model=resnet18", "model=plain18"], "p_holm"]) == pytest.approx(
        holm([raw["model=resnet18"], raw["model=plain18"]]))


def test_key_comparisons_are_in_the_order_of_the_questions() -> None:
    """Residual vs plain, skip connections, then depth and width (stage 1), then the stage-2 and -3 questions."""
    result = make_result({
        "stage2_norm": seeds({"norm": "batchnorm"}, [0.93, 0.931]) + seeds({"norm": "none"}, [0.90, 0.901]),
        "stage1_capacity": [{**r, "model.width": 4} for r in seeds({"model": "resnet18"}, [0.90, 0.91])
                            + seeds({"model": "resnet34"}, [0.91, 0.92])],
        "stage2_skip": seeds({"model.skip": True}, [0.93, 0.931]) + seeds({"model.skip": False}, [0.92, 0.93])})
    assert evidence.key_comparisons(result)["question"].tolist() == [
        "skip connections, ResNet-9", "depth", "normalisation"]


def test_depth_and_width_follow_the_widths_the_runs_used() -> None:
    """No width 64/16 in the runs: depth compares at the largest width both depths ran, width the smallest and the
    largest width of ResNet-18, and the key comparisons table says the same."""
    def cell(model: str, width: int, accs: list[float]) -> list[dict[str, Any]]:
        params = width * (2 if model == "resnet34" else 1)
        return seeds({"model": model, "model.width": width}, accs, params=[params] * 3)

    result = make_result({"stage1_capacity": cell("resnet18", 8, [0.80, 0.81, 0.82])
                          + cell("resnet18", 32, [0.9, 0.91, 0.92]) + cell("resnet34", 32, [0.905, 0.915, 0.925])
                          + cell("resnet34", 8, [0.79, 0.8, 0.81])})
    macros = evidence.evidence_macros(result)
    assert macros["readDepth"].startswith(
        r"ResNet-34 at width 32 (2.0$\times$ the parameters) and ResNet-18 at width 32")
    assert macros["readWidth"].startswith(r"ResNet-18 at width 32 (4.0$\times$ the parameters) scores 10.00\,pp higher "
                                          "than ResNet-18 at width 8")
    assert "width 64" not in macros["readCapacity"] + macros["sumCapacity"]
    assert "The best cell" not in macros["sumCapacity"]  # the preset's own subsection states it
    assert r"ResNet-18 at width 32 reaches 91.00\,$\pm$\,1.00\,\% and ResNet-18 at width 8 81.00" in macros[
        "sumCapacity"]
    rows = evidence.key_comparisons(result).set_index("question")
    assert rows.loc["width", ["a", "b"]].tolist() == ["ResNet-18 at width 32", "ResNet-18 at width 8"]
    assert rows.loc["width", "delta"] == pytest.approx(0.10) and rows.loc["depth", "verdict"] == "within seed noise"


def test_a_width_the_sweep_held_fixed_is_read_off_the_runs() -> None:
    """stage1_capacity sweeping only the model (every run at width 4): depth at width 4, no width comparison."""
    runs = [{**r, "model.width": 4} for r in seeds({"model": "resnet18"}, [0.90, 0.91, 0.92])
            + seeds({"model": "resnet34"}, [0.91, 0.92, 0.93])]
    result = make_result({"stage1_capacity": runs})
    macros = evidence.evidence_macros(result)
    assert "ResNet-34 at width 4 and ResNet-18 at width 4 are within seed noise" in macros["readDepth"]
    assert macros["readWidth"] == "" and list(evidence.key_comparisons(result)["question"]) == ["depth"]


def test_single_seeds_quote_the_difference_and_draw_no_conclusion() -> None:
    skip, noskip = {"model.skip": True}, {"model.skip": False}
    result = make_result({"stage2_skip": seeds(skip, [0.93], train_loss_final=[0.1])
                          + seeds(noskip, [0.92], train_loss_final=[0.3])})
    macros = evidence.evidence_macros(result)
    text = macros["readSkipVsNoSkip"]
    assert r"differ by +1.00\,pp in test accuracy; with too few seeds for a test we draw no conclusion." in text
    assert "within seed noise" not in text and "no sign" not in text and "harder to optimise" not in text
    assert "final training losses are 0.300 (plain) and 0.100 (residual; too few seeds for a test)" in text
    assert "too few seeds for a test" in macros["sumSkip"] and "within seed noise" not in macros["sumSkip"]
    c = evidence.Comparison(0.93, 0.92, float("nan"), 1, 1)
    assert evidence.effect(c, ALPHA) == r"$\Delta$\,=\,+1.00\,pp (too few seeds for a test)"


def test_preset_summary_names_the_reference_and_counts_with_grammar() -> None:
    runs = (seeds({"optimizer": "sgd"}, [0.93, 0.931, 0.932]) + seeds({"optimizer": "adam"}, [0.90, 0.901, 0.902])
            + seeds({"optimizer": "adamw"}, [0.925, 0.935, 0.93]) + seeds({"optimizer": "rmsprop"}, [0.92]))
    result = make_result({"stage2_optimizer": runs, "stage2_norm": seeds({"norm": "batchnorm"}, [0.93])})
    text = evidence.preset_summary(result, "stage2_optimizer")
    assert text.startswith(r"The best cell is the reference, optimizer=sgd (93.10\,\%).")  # not compared with itself
    assert "Of the 2 comparisons with the reference, 1 is significant after Holm's correction" in text
    assert text.endswith("Of the other cells, 1 has too few seeds for a test.")
    assert evidence.preset_summary(result, "stage2_norm") == (r"The only cell with completed runs is norm=batchnorm "
                                                             r"(93.00\,\% over 1 seed).")
    assert evidence.preset_summary(result, "stage2_skip") == latex.NA  # not analysed: the paragraph is left out
    best = evidence.evidence_macros(result)["readBest"]
    assert r"reaches 93.10\,$\pm$\,0.10\,\% test accuracy over 3 seeds." in best
    one = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.95])})
    assert r"$\pm$" not in evidence.best_sentence(one) and "over 1 seed." in evidence.best_sentence(one)
    assert evidence.preset_summary(one, "stage2_norm").endswith(
        "With fewer than two seeds on a side, no cell could be tested against the reference.")


def test_the_best_cell_is_chosen_on_validation_not_on_the_test_set() -> None:
    """The report quotes the best cell's test accuracy: picking it by that test accuracy would select on the test
    set (and quote the luckiest of many cells); validation picks it, test accuracy is only quoted."""
    from fmnist.analysis.pipeline import choose_cell

    runs = (seeds({"norm": "batchnorm"}, [0.90, 0.91], best_val_acc=[0.95, 0.96])
            + seeds({"norm": "groupnorm"}, [0.92, 0.93], best_val_acc=[0.90, 0.91]))
    result = make_result({"stage2_norm": runs})
    assert evidence.best_cell(result)["cell"] == "norm=batchnorm" == choose_cell(result.cells, None)["cell"]
    macros = evidence.evidence_macros(result)
    assert macros["readBest"].startswith(r"The best cell by validation accuracy, norm=batchnorm of "
                                         r"\texttt{stage2\_norm}, reaches 90.50\,$\pm$\,0.71\,\%")
    assert macros["sumSkip"] == "" and r"The best cell by validation accuracy is the reference, norm=batchnorm " \
        r"(test accuracy 90.50\,\%)." in evidence.preset_summary(result, "stage2_norm")  # says which accuracy it quotes
    hidden = make_result({"stage2_norm": [{**r, "test_acc": None} for r in runs]})  # no test labels: validation
    assert evidence.evidence_macros(hidden)["readBest"].startswith("The best cell, norm=batchnorm")


def test_negative_results_agree_in_number() -> None:
    result = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932])
                          + seeds({"norm": "none"}, [0.925, 0.935, 0.93])})
    assert evidence.negative_results(result) == (
        "The only alternative we tried is within seed noise of the reference. With the seeds we ran and at this "
        "training length, its difference from the reference cannot be told apart from seed noise; that does not show "
        "that it has no effect.")


def test_a_partly_seeded_study_counts_what_it_could_not_test() -> None:
    """Some cells with three seeds, others with one: the negative results and findings count the tested comparisons
    as such and say how many could not be tested (the 3-seed rehearsal with seeds 1 and 2 of six presets left out read
    'All 9 alternatives we tried are within seed noise' beside 43 untested ones)."""
    result = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932])
                          + seeds({"norm": "none"}, [0.925, 0.935, 0.93]),
                          "stage2_optimizer": seeds({"optimizer": "sgd"}, [0.93]) + seeds({"optimizer": "adam"}, [0.9])
                          + seeds({"optimizer": "adamw"}, [0.91])})
    assert evidence.negative_results(result) == (
        "The only alternative tested so far is within seed noise of the reference. With the seeds we ran and at this "
        "training length, its difference from the reference cannot be told apart from seed noise; that does not show "
        "that it has no effect. The other 2 alternatives have fewer than two seeds on a side so far and are not tested "
        "yet.")
    assert evidence.findings(result).startswith(
        "Comparisons of a cell with its preset's reference cell tested so far: 1; significant after Holm's correction: "
        "0 (0 higher, 0 lower); within seed noise: 1; not tested yet (fewer than two seeds on a side): 2.")
    whole = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93, 0.931, 0.932])
                         + seeds({"norm": "none"}, [0.925, 0.935, 0.93])})
    assert "so far" not in evidence.negative_results(whole) + evidence.findings(whole)


def test_learning_rate_is_not_said_to_matter_more_without_a_significant_test() -> None:
    accs = {("cosine", 0.1): [0.93, 0.83, 0.88], ("cosine", 0.3): [0.80, 0.95, 0.85],
            ("constant", 0.1): [0.92, 0.86, 0.87], ("constant", 0.3): [0.84, 0.90, 0.85]}
    runs = [run for (sched, lr), a in accs.items() for run in seeds({"optimizer.lr": lr, "scheduler": sched}, a)]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "Neither moves accuracy beyond seed noise (two-way ANOVA" in text and "matters more" not in text


def test_a_significant_interaction_is_not_read_as_one_setting_mattering_alone() -> None:
    """The schedules average the same, but cosine gains 10 pp from the larger learning rate and constant 2 pp: only the
    learning rate's main effect is significant, yet the schedule matters at a given learning rate (the rehearsal of
    the 3-seed study read 'Only the learning rate moves accuracy significantly' beside an interaction p of 0.016)."""
    accs = {("cosine", 0.01): 0.80, ("cosine", 0.1): 0.90, ("constant", 0.01): 0.84, ("constant", 0.1): 0.86}
    runs = [run for (sched, lr), a in accs.items()
            for run in seeds({"optimizer.lr": lr, "scheduler": sched}, [a - 0.001, a, a + 0.001])]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "Of the two main effects only the learning rate's is significant (two-way ANOVA" in text
    assert ("but their interaction is significant too: how much the schedule moves accuracy depends on the learning "
            "rate, so the schedule matters at some values of the learning rate.") in text
    assert "Only the" not in text and "matters more" not in text
    assert "schedule $p=1$" in text and "their interaction $p<0.001$" in text
    crossed = {("cosine", 0.01): 0.80, ("cosine", 0.1): 0.90, ("constant", 0.01): 0.90, ("constant", 0.1): 0.80}
    runs = [run for (sched, lr), a in crossed.items()
            for run in seeds({"optimizer.lr": lr, "scheduler": sched}, [a - 0.001, a, a + 0.001])]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "Neither main effect is significant (two-way ANOVA" in text and "but their interaction is: how" in text
    assert "Neither moves accuracy beyond seed noise" not in text


def test_learning_rate_is_not_said_to_matter_more_than_a_schedule_that_was_not_varied() -> None:
    runs = [run for lr, a in ((0.01, [0.80, 0.81, 0.79]), (0.1, [0.93, 0.92, 0.94]))
            for run in seeds({"optimizer.lr": lr, "scheduler": "cosine"}, a)]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "The learning rate moves accuracy beyond seed noise (two-way ANOVA" in text
    assert "schedule not testable" in text and "Only" not in text and "matters more" not in text
    assert text.startswith(r"Across the 2 learning rates, test accuracy moves by 13.00\,pp on average within a "
                           "schedule. The best") and "across the 1 schedule" not in text


def test_pooled_dead_units_count_each_trained_network_once() -> None:
    """A run that copied an identical run (reused_from) has the same dead units: pooled over presets, it counts once;
    without a dead unit no cell or layer is named."""
    from fmnist.analysis.macros import build_macros

    result = make_result({"stage2_skip": [{"cell": {"model.skip": True}, "test_acc": 0.9, "reused_from": None},
                                          {"cell": {"model.skip": False}, "test_acc": 0.8, "reused_from": None}],
                          "stage2_norm": [{"cell": {"norm": "batchnorm"}, "test_acc": 0.9,
                                           "reused_from": "../../stage2_skip/0"}]})
    result.collection.runs["run_dir"] = ["/s/stage2_skip/0", "/s/stage2_skip/1", "/s/stage2_norm/0"]
    dead = [{"run_dir": d, "preset": d.split("/")[2], "activation": "relu", "dead_fraction": f, "zero_fraction": 0.5,
             "negative_capable": False} for d, f in zip(result.collection.runs["run_dir"], (0.0, 0.0, 0.0))]
    result.dead_runs = pd.DataFrame(dead)
    result.dead_layers = pd.DataFrame([{**r, "layer": "layer1.0"} for r in dead])
    assert list(evidence.distinct_dead_runs(result)["run_dir"]) == ["/s/stage2_skip/0", "/s/stage2_skip/1"]
    macros = build_macros(result)
    assert macros["readDead"].startswith(r"Over 2 runs (1 copy of an identical run not counted again), 0.00\,\% of "
                                         r"units are dead")
    assert "No unit is dead." in macros["readDead"] and "lost the most" not in macros["readDead"]
    table = report_tables.dead_table(result)
    assert r"relu & 2 & " in table and "& none &" in table


def test_counts_in_words() -> None:
    assert latex.plural(1, "seed") == "1 seed" and latex.plural(3, "seed") == "3 seeds"
    assert latex.plural(2, "copy", "copies") == "2 copies" and latex.plural(None, "run") == latex.NA
    assert latex.share(0, 1, "comparison", "significant") == "the only comparison is not significant"
    assert latex.share(0, 3, "comparison", "significant") == "none of the 3 comparisons is significant"
    assert latex.share(1, 3, "comparison", "significant") == "of the 3 comparisons, 1 is significant"
    assert latex.share(2, 3, "comparison", "significant") == "of the 3 comparisons, 2 are significant"
    assert latex.share(3, 3, "comparison", "significant") == "all 3 comparisons are significant"
    assert latex.and_join(["a", "b", "c"]) == "a, b and c" and latex.and_join(["a"]) == "a"


def _dead_row(preset: str, i: int, activation: str, lr: float, dead: float) -> dict[str, Any]:
    return {"run_dir": f"/{preset}/{i}", "preset": preset, "activation": activation, "optimizer.lr": lr,
            "dead_fraction": dead, "zero_fraction": 0.5, "negative_capable": activation != "relu"}


def test_dead_units_are_compared_only_where_nothing_else_changes() -> None:
    """By activation: the activation sweep's runs, not ReLU pooled over other models and optimisers; by learning
    rate: the learning-rate sweep's runs, not Adam's 1e-3 beside SGD's 0.1."""
    from fmnist.analysis.macros import build_macros

    result = make_result({
        "stage2_activation": seeds({"activation": "relu"}, [0.9, 0.91]) + seeds({"activation": "gelu"}, [0.9, 0.91]),
        "stage2_optimizer": seeds({"optimizer": "adam"}, [0.8, 0.81]),
        "stage2_lr": seeds({"optimizer.lr": 0.01}, [0.8, 0.81]) + seeds({"optimizer.lr": 0.1}, [0.9, 0.91])})
    dead = ([_dead_row("stage2_activation", i, a, 0.1, d) for i, (a, d) in enumerate(
        [("relu", 0.0), ("relu", 0.0), ("gelu", 0.1), ("gelu", 0.1)])]
        + [_dead_row("stage2_optimizer", i, "relu", 1e-3, 0.5) for i in range(2)]
        + [_dead_row("stage2_lr", i, "relu", lr, 0.2) for i, lr in enumerate((0.01, 0.01, 0.1, 0.1))])
    result.dead_runs = pd.DataFrame(dead)
    result.dead_layers = pd.DataFrame([{**r, "layer": "layer1.0"} for r in dead])
    by_act = evidence.dead_runs_sweeping(result, "activation")
    assert set(by_act["preset"]) == {"stage2_activation"} and len(by_act) == 4
    assert set(evidence.dead_runs_sweeping(result, "optimizer.lr", fallback=False)["preset"]) == {"stage2_lr"}
    assert r"relu & 2 & 0.00\,$\pm$\,0.00" in report_tables.dead_table(result)
    assert (r"In the runs that sweep the activation, all else equal, dead units are ReLU 0.00\,\% and GELU 10.00\,\%"
            in build_macros(result)["readDead"])
    no_sweep = make_result({"stage2_optimizer": seeds({"optimizer": "adam"}, [0.8, 0.81])})
    no_sweep.dead_runs = pd.DataFrame([_dead_row("stage2_optimizer", i, "relu", 1e-3, 0.5) for i in range(2)])
    assert evidence.dead_runs_sweeping(no_sweep, "optimizer.lr", fallback=False).empty
    assert len(evidence.dead_runs_sweeping(no_sweep, "activation")) == 2


def test_the_dead_unit_captions_name_the_runs_they_pool() -> None:
    """With a preset that sweeps the activation, the dead-unit table and the per-layer figure pool its runs, all else
    equal, and their captions say so; without one they pool every run, and the captions say that no preset sweeps the
    activation (they claimed the activation sweep's runs whatever was analysed). \\readDead then compares no
    activations "all else equal"."""
    from fmnist.analysis.macros import build_macros

    swept = make_result({"stage2_activation": seeds({"activation": "relu"}, [0.9]) + seeds({"activation": "gelu"},
                                                                                           [0.9])})
    swept.dead_runs = pd.DataFrame([_dead_row("stage2_activation", i, a, 0.1, 0.1) for i, a in enumerate(
        ("relu", "gelu"))])
    unswept = make_result({"stage2_optimizer": seeds({"optimizer": "adam"}, [0.8]) + seeds({"optimizer": "sgd"},
                                                                                           [0.8])})
    unswept.dead_runs = pd.DataFrame([_dead_row("stage2_optimizer", i, a, 0.1, 0.1) for i, a in enumerate(
        ("relu", "gelu"))])  # two activations, but other settings differ between them
    for result in (swept, unswept):
        result.dead_layers = pd.DataFrame([{**r, "layer": "layer1.0"} for _, r in result.dead_runs.iterrows()])
    sweeping = "the runs of the presets that sweep the activation (all else equal"
    pooled = "all the analysed runs (no preset sweeps the activation, so their other settings may differ"
    assert rf"mean\,$\pm$\,std over {sweeping}; a run that copied" in report_tables.dead_table(swept)
    assert rf"mean\,$\pm$\,std over {pooled}; a run that copied" in report_tables.dead_table(unswept)
    assert "sweep the activation" not in report_tables.dead_table(unswept)
    m, m_unswept = build_macros(swept), build_macros(unswept)
    assert (m["deadActivationRuns"], m_unswept["deadActivationRuns"]) == (f"{sweeping})", f"{pooled})")
    assert "In the runs that sweep the activation, all else equal, dead units are ReLU" in m["readDead"]
    assert "all else equal" not in m_unswept["readDead"] and "GELU" not in m_unswept["readDead"]
    main = (Path(__file__).parent.parent / "report" / "main.tex").read_text()
    assert r"per activation layer, for each activation function; mean\,$\pm$\,std over \deadActivationRuns.}" in main


def test_dead_by_layer_keeps_one_colour_and_legend_entry_per_activation(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from fmnist.analysis import figures, style

    drawn = []
    monkeypatch.setattr(style, "save", lambda fig, out_dir, name: drawn.append(fig) or [])
    layers = pd.DataFrame([{"model": m, "activation": a, "layer_index": j, "layer": f"l{j}", "dead_fraction": 0.1,
                            "zero_fraction": 0.5} for m, acts in (("resnet18", ["relu"]), ("resnet9", ["gelu", "relu"]))
                           for a in acts for j in range(2)])
    figures.dead_by_layer(layers, tmp_path)
    fig = drawn[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["relu", "gelu"]
    resnet9 = fig.axes[1]
    colours = {line.get_label(): line.get_color() for line in resnet9.get_lines()}
    assert colours["relu"] == style.color(0) and colours["gelu"] == style.color(1)


def test_p_values_next_to_alpha_stay_on_their_side_of_it() -> None:
    below, above = evidence.Comparison(0.93, 0.91, 0.0496, 3, 3), evidence.Comparison(0.93, 0.91, 0.0504, 3, 3)
    assert evidence.effect(below, 0.05).startswith("higher") and "$p=0.0496$" in evidence.effect(below, 0.05)
    assert evidence.effect(above, 0.05).startswith("within seed noise") and "$p=0.0504$" in evidence.effect(above, 0.05)
    assert [latex.pvalue(p) for p in (0.0004, 0.004123, 0.687, None)] == ["$<$0.001", "0.00412", "0.687", latex.NA]


def test_a_cell_named_by_fewer_keys_than_the_preset_sweeps_shares_the_reference_values_of_the_rest() -> None:
    def cell(model: str, width: int) -> dict[str, Any]:
        return {"model": model, "model.width": width}

    result = make_result({"stage1_models": seeds(cell("resnet18", 64), [0.93, 0.94]) + seeds(cell("plain18", 16),
                          [0.80, 0.81]) + seeds(cell("plain18", 64), [0.90, 0.91]) + seeds(cell("resnet18", 16),
                          [0.85, 0.86]) + seeds(cell("vgg11", 16), [0.7, 0.7]) + seeds(cell("vgg11", 32), [0.8, 0.8])})
    plain = evidence.find_cell(result, "stage1_models", {"model": "plain18"})
    assert plain is not None and plain["model.width"] == 64  # as the reference (resnet18 at width 64), not 16
    assert evidence.find_cell(result, "stage1_models", cell("plain18", 16))["model.width"] == 16
    assert evidence.find_cell(result, "stage1_models", {"model": "vgg11"}) is None  # 16 or 32: neither is quoted


def test_two_way_anova_matches_the_balanced_sums_of_squares() -> None:
    rng = np.random.default_rng(0)
    rows = [{"lr": lr, "s": sched, "acc": 0.9 + 0.02 * i - 0.005 * j + 0.01 * (i * j == 2) + rng.normal(0, 0.004)}
            for i, lr in enumerate((0.01, 0.1, 0.3)) for j, sched in enumerate(("a", "b")) for _ in range(3)]
    runs = pd.DataFrame(rows)
    y, grand = runs["acc"], runs["acc"].mean()
    cell = runs.groupby(["lr", "s"])["acc"].transform("mean")
    ss_err = ((y - cell) ** 2).sum()
    ss_lr = 6 * ((runs.groupby("lr")["acc"].mean() - grand) ** 2).sum()
    ss_s = 9 * ((runs.groupby("s")["acc"].mean() - grand) ** 2).sum()
    ss_int = ((cell - grand) ** 2).sum() - ss_lr - ss_s
    expected = [scipy_stats.f.sf(ss / df / (ss_err / 12), df, 12) for ss, df in ((ss_lr, 2), (ss_s, 1), (ss_int, 2))]
    assert evidence.two_way_anova(runs, "lr", "s", "acc") == pytest.approx(expected)
    missing = evidence.two_way_anova(runs.iloc[1:], "lr", "s", "acc")  # unbalanced: still three finite p
    assert all(0 <= p <= 1 for p in missing)
    assert math.isnan(evidence.two_way_anova(runs[runs["s"] == "a"], "lr", "s", "acc")[1])  # one schedule


def test_the_conclusions_answer_each_question_in_a_list() -> None:
    skip, noskip = {"model.skip": True}, {"model.skip": False}
    result = make_result({"stage2_skip": seeds(skip, [0.93, 0.931, 0.929]) + seeds(noskip, [0.90, 0.901, 0.899])})
    text = evidence.evidence_macros(result)["readAnswers"]
    p = welch(np.array([0.93, 0.931, 0.929]), np.array([0.90, 0.901, 0.899]))  # one question: Holm's p is p
    assert text.startswith(r"The study's questions (Table~\ref{tab:key-comparisons}; test accuracy")
    assert (rf"\item Skip connections, ResNet-9: skips against no skips, higher by 3.00\,pp "
            rf"({evidence.p_math(p, evidence.HOLM)}).") in text
    assert text.count(r"\item ") == 1 and text.endswith(r"\end{itemize}")
    assert evidence.evidence_macros(make_result({"other": seeds({"x": 1}, [0.5])}))["readAnswers"] == ""


def test_key_comparisons_are_holm_corrected_across_the_questions_wherever_they_are_quoted() -> None:
    """A question whose comparison is significant alone (p=0.038) but not among the questions' family (Holm) is
    within seed noise in the conclusions, the key-comparison table and the discussion's sentence alike; a single
    test on another number (the training loss) stays uncorrected."""
    skip, noskip = [0.930, 0.932, 0.934], [0.925, 0.927, 0.929]
    res, plain = [0.930, 0.932, 0.934], [0.9255, 0.9275, 0.9295]
    result = make_result({
        "stage2_skip": seeds({"model.skip": True}, skip, train_loss_final=[0.10, 0.11, 0.09])
        + seeds({"model.skip": False}, noskip, train_loss_final=[0.30, 0.31, 0.29]),
        "stage1_models": seeds({"model": "resnet18"}, res) + seeds({"model": "plain18"}, plain)})
    p_skip, p_res = welch(np.array(skip), np.array(noskip)), welch(np.array(res), np.array(plain))
    holm_skip, holm_res = holm([p_skip, p_res])
    assert p_skip < ALPHA <= holm_skip  # the case this test is about
    table = evidence.key_comparisons(result).set_index("preset")
    assert table.loc["stage2_skip", "p"] == pytest.approx(p_skip)
    assert table.loc["stage2_skip", "p_holm"] == pytest.approx(holm_skip)
    assert table.loc["stage1_models", "p_holm"] == pytest.approx(holm_res)
    assert set(table["verdict"]) == {"within seed noise"}
    macros = evidence.evidence_macros(result)
    corrected = evidence.p_math(holm_skip, evidence.HOLM)
    assert rf"skips against no skips, within seed noise ($\Delta$\,=\,+0.50\,pp, {corrected})" in macros["readAnswers"]
    prose = macros["readSkipVsNoSkip"]
    assert "are within seed noise of each other in test accuracy" in prose and corrected in prose
    assert evidence.p_math(welch(np.array([0.30, 0.31, 0.29]), np.array([0.10, 0.11, 0.09]))) in prose  # the loss
    assert f"& {latex.pvalue(p_skip)} & {latex.pvalue(holm_skip)} & within seed noise" in \
        report_tables.key_comparisons_table(result)


def test_cells_that_lost_the_most_units_are_named_with_their_own_layers() -> None:
    """The cells above 1 % dead units, most first, each against its preset's reference (Welch, with seeds on both
    sides) and with its own worst layer: a layer name is never pooled across cells (stem.2 of one model is not
    stem.2 of another), and a copy of an identical run is not listed twice."""
    result = make_result({
        "stage2_optimizer": seeds({"optimizer": "sgd"}, [0.94, 0.93]) + seeds({"optimizer": "rmsprop"}, [0.94, 0.93]),
        "stage1_models": seeds({"model": "resnet9"}, [0.94]) + seeds({"model": "resnet50"}, [0.89])
        + seeds({"model": "resnet18"}, [0.92])})
    result.collection.runs["reused_from"] = [None] * 6 + [None]
    rows = [("stage2_optimizer", 0, "optimizer=sgd", 0.0), ("stage2_optimizer", 1, "optimizer=sgd", 0.0),
            ("stage2_optimizer", 2, "optimizer=rmsprop", 0.14), ("stage2_optimizer", 3, "optimizer=rmsprop", 0.16),
            ("stage1_models", 0, "model=resnet9", 0.0), ("stage1_models", 1, "model=resnet50", 0.013),
            ("stage1_models", 2, "model=resnet18", 0.003)]
    result.dead_runs = pd.DataFrame([{"run_dir": f"/{p}/{i}", "preset": p, "cell": c, "activation": "relu",
                                      "dead_fraction": f, "zero_fraction": 0.5, "negative_capable": False}
                                     for p, i, c, f in rows])
    layers = {"/stage2_optimizer/2": {"layer3.4.res1.2": 0.6, "stem.2": 0.0},
              "/stage2_optimizer/3": {"layer3.4.res1.2": 0.5, "stem.2": 0.0},
              "/stage1_models/1": {"stem.2": 0.28, "stages.0.0.act3": 0.2},
              "/stage1_models/2": {"stem.2": 0.11}}
    result.dead_layers = pd.DataFrame([{"run_dir": d, "layer": name, "dead_fraction": f}
                                       for d, by in layers.items() for name, f in by.items()])
    text = evidence.dead_concentration(result)
    p = welch(np.array([0.14, 0.16]), np.array([0.0, 0.0]))
    assert text.startswith(r" The cells that lost the most units: optimizer=rmsprop of \texttt{stage2\_optimizer}, "
                           r"15.00\,\% (2 seeds; reference optimizer=sgd: 0.00\,\%, " + evidence.p_math(p))
    assert r"most in \texttt{layer3.4.res1.2} (55.0\,\% of its units)" in text
    assert (r"model=resnet50 of \texttt{stage1\_models}, 1.30\,\% (1 seed; reference model=resnet9: 0.00\,\%, "
            r"too few seeds for a test), most in \texttt{stem.2} (28.0\,\% of its units)") in text
    assert "resnet18" not in text and text.endswith(r"every other cell lost at most 0.30\,\%.")
    assert text.index("rmsprop") < text.index("resnet50")
    result.dead_runs["dead_fraction"] = result.dead_runs["dead_fraction"].clip(upper=0.005)
    assert evidence.dead_concentration(result) == r" No cell lost more than 1\,\% of its units."


def test_seeds_per_cell_say_how_many_the_study_grid_plans() -> None:
    """A study preset whose cells ran fewer seeds than its grid says so, and the abstract how much of the study
    the report rests on; a sweep of one's own states what ran."""
    from fmnist.analysis.macros import build_macros

    study = make_result({"stage2_norm": [{**r, "seed": 0} for r in seeds({"norm": "batchnorm"}, [0.9])]
                         + [{**r, "seed": 0} for r in seeds({"norm": "none"}, [0.8])]})
    m = build_macros(study)
    assert m["seedsPerCell"] == "1 seed so far (3 planned)" and m["seedsPlanned"] == "3 seeds"
    assert m["studyShare"].startswith(", 2 of the 192 runs the study plans (Section~")  # 64 cells x 3 seeds
    own = make_result({"mine": [{**r, "seed": s} for s, r in enumerate(seeds({"lr": 0.1}, [0.9, 0.91]))]})
    assert build_macros(own)["seedsPerCell"] == "2 seeds" == build_macros(own)["seedsPlanned"]
    assert build_macros(own)["studyShare"] == ""  # not the study: nothing is planned


def test_the_most_dead_layer_names_its_model_when_the_runs_span_several() -> None:
    """Without a preset that sweeps the activation, the dead-unit table pools every run: the same layer name in two
    models is two layers, so the most dead one is found per model and named with it."""
    result = make_result({"stage1_models": seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "resnet50"}, [0.89])})
    dead = [{"run_dir": f"/stage1_models/{i}", "preset": "stage1_models", "cell": f"model={m}", "model": m,
             "activation": "relu", "dead_fraction": f, "zero_fraction": 0.5, "negative_capable": False}
            for i, (m, f) in enumerate((("resnet18", 0.01), ("resnet50", 0.02)))]
    result.dead_runs = pd.DataFrame(dead)
    result.dead_layers = pd.DataFrame([{**dead[i], "layer": layer, "dead_fraction": f} for i, layer, f in (
        (0, "stem.2", 0.20), (1, "stem.2", 0.0), (1, "stages.0.0.act3", 0.15))])  # stem.2 pooled: 10 %
    assert r"relu & 2 & 1.50\,$\pm$\,0.71 & 50.00\,$\pm$\,0.00 & \texttt{stem.2} of resnet18 (20.0\,\%)" in (
        report_tables.dead_table(result))
    one_model = result.dead_layers[result.dead_layers["model"] == "resnet50"]
    assert evidence.most_dead_layer(one_model) == (r"\texttt{stages.0.0.act3}", 0.15)
    assert evidence.most_dead_layer(one_model.assign(dead_fraction=0.0)) is None


def test_runs_that_shared_a_machine_are_read_as_such() -> None:
    """Per-run times measured while several runs shared the GPU are not one run's: the speed note says how many ran
    at once (from started_at / finished_at per host) and the wall-clock time they took; runs that did not overlap
    are said to have had the machine to themselves."""
    from fmnist.analysis.macros import _sharing

    def run(host: str, start: str, end: str) -> dict[str, str]:
        return {"hostname": host, "started_at": f"2026-11-28T07:{start}+00:00",
                "finished_at": f"2026-11-28T07:{end}+00:00"}

    # host a: one run 00-10, two 10-20, one 30-40; host b: one run 00-20 (another machine: not sharing)
    runs = pd.DataFrame([run("a", "00:00", "20:00"), run("a", "10:00", "20:00"), run("a", "30:00", "40:00"),
                         run("b", "00:00", "20:00")])
    text = _sharing(runs)
    # run time 20 + 10 + 10 + 20 = 60 min; busy 20 + 10 (host a) + 20 (host b) = 50 min: 1.2 at once on average
    assert text.startswith("The runs shared their machine: on average 1.2 ran at once (at most 2)")
    assert text.endswith("at least one of the 4 trained runs with recorded times was running for 50.0 minutes of "
                         "wall-clock time in all.")
    alone = _sharing(runs.iloc[[0, 2]])
    assert alone.startswith("No two of the 2 trained runs with recorded times overlapped")
    assert _sharing(runs.drop(columns=["started_at"])) == ""  # summaries of earlier versions
    back_to_back = pd.DataFrame([run("a", "00:00", "10:00"), run("a", "10:00", "20:00")])
    assert "No two of the 2" in _sharing(back_to_back)  # one ending as the next starts is not sharing


def test_one_seed_per_cell_is_said_to_test_nothing() -> None:
    """With one seed no comparison is tested: the report's `tested` flag is off (main.tex words the abstract, the
    introduction and the conclusions for it), the per-preset comparisons do not claim a Holm correction, and the best
    cell says how close the next one is."""
    from fmnist.analysis.macros import build_macros, flags

    single = make_result({"stage2_norm": [
        {**r, "n_val": 6000} for r in seeds({"norm": "batchnorm"}, [0.93], best_val_acc=[0.9450])
        + seeds({"norm": "none"}, [0.92], best_val_acc=[0.9443333])]})
    macros = build_macros(single)
    assert "tested" not in flags(single, macros)
    assert evidence.against_reference(single, "stage2_norm").startswith(r"Against norm=batchnorm (Table~\ref{")
    assert macros["readBest"].endswith(r"With one seed this ranking is not tested: the next cell, norm=none of "
                                       r"\texttt{stage2\_norm}, is 0.07\,pp lower in validation accuracy (4 of the "
                                       "6,000 validation images).")
    seeded = make_result({"stage2_norm": seeds({"norm": "batchnorm"}, [0.93, 0.931])
                          + seeds({"norm": "none"}, [0.92, 0.921])})
    macros = build_macros(seeded)
    assert "tested" in flags(seeded, macros) and "next cell" not in macros["readBest"]
    seven = make_result({"stage2_norm": [  # 7/6000 in floating point is 6.99999...: rounded, not cut
        {**r, "n_val": 6000} for r in seeds({"norm": "batchnorm"}, [0.93], best_val_acc=[5600 / 6000])
        + seeds({"norm": "none"}, [0.92], best_val_acc=[5593 / 6000])]})
    assert evidence.best_sentence(seven).endswith("(7 of the 6,000 validation images).")
    assert "(Holm-corrected within the preset, Table" in evidence.against_reference(seeded, "stage2_norm")


def test_learning_rate_combinations_not_run_yet_are_named() -> None:
    """A partly run learning rate x schedule grid says which combinations the spreads leave out, and a ranking of one
    seed is not a tested difference; a combination whose runs all failed is a failure, not a missing cell."""
    runs = (seeds({"optimizer.lr": 0.1, "scheduler": "cosine"}, [0.93])
            + seeds({"optimizer.lr": 0.3, "scheduler": "cosine"}, [0.92])
            + seeds({"optimizer.lr": 0.1, "scheduler": "constant"}, [0.91]))
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": runs}))
    assert "one seed per cell: a ranking, not a tested difference" in text
    assert text.endswith("1 of the 4 combinations has no run yet (learning rate 0.3 with constant); the spreads and the "
                         "best and worst learning rates leave them out.")
    failed = runs + [{"cell": {"optimizer.lr": 0.3, "scheduler": "constant"}, "status": "failed", "test_acc": None}]
    text, _ = evidence.lr_schedule_spread(make_result({"stage2_lr": failed}))
    assert "no run yet" not in text and "Every run failed at learning rate 0.3 with the constant schedule" in text
    partly = runs + seeds({"optimizer.lr": 0.1, "scheduler": "cosine"}, [0.931])  # one cell with two seeds
    assert "one seed per cell" not in evidence.lr_schedule_spread(make_result({"stage2_lr": partly}))[0]


def test_the_residual_pairs_named_are_the_ones_analysed() -> None:
    """He et al.'s finding closes with the depths of the residual vs plain pairs that are in the analysed sweeps."""
    models = make_result({"stage1_models": seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.91])})
    assert evidence.residual_discussion(models).endswith("our pair is 18 layers deep.")
    both = make_result({"stage1_models": seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.91]),
                        "stage2_skip": seeds({"model.skip": True}, [0.93]) + seeds({"model.skip": False}, [0.92])})
    assert evidence.residual_discussion(both).endswith("our pairs are 9 and 18 layers deep.")


def test_a_preset_that_sweeps_the_activations_class_sweeps_the_activation() -> None:
    """-m activation._target_=torch.nn.ReLU,torch.nn.Mish compares activations with all else equal, as activation=...
    does: its dead units are compared as such, not as 'all the analysed runs' whose other settings may differ."""
    swept = make_result({"mine": seeds({"activation._target_": "torch.nn.ReLU"}, [0.9])
                         + seeds({"activation._target_": "torch.nn.Mish"}, [0.9])})
    assert evidence.dead_runs_named(swept, "activation", "the activation") == (
        "the runs of the presets that sweep the activation", "all else equal")
    other = make_result({"mine": seeds({"optimizer.lr": 0.1}, [0.9]) + seeds({"optimizer.lr": 0.2}, [0.9])})
    assert evidence.dead_runs_named(other, "activation", "the activation")[0] == "all the analysed runs"


def test_presets_whose_names_differ_only_in_punctuation_get_macros_of_their_own() -> None:
    """stage2-norm beside stage2_norm: both would be \\stageTwoNorm...; the second gets its own prefix, so neither
    preset's numbers are quoted under the other's name."""
    from fmnist.analysis.macros import build_macros, preset_prefixes

    result = make_result({"stage2_norm": seeds({"norm": "none"}, [0.93]),
                          "stage2-norm": seeds({"norm": "none"}, [0.84])})
    prefixes = preset_prefixes(result)
    assert prefixes["stage2_norm"] == "stageTwoNorm" and prefixes["stage2-norm"] == "stageTwoNormAltTwo"
    macros = build_macros(result)
    assert macros["stageTwoNormBestAcc"] == "93.00" and macros["stageTwoNormAltTwoBestAcc"] == "84.00"


# ------------------------------------------------------------------------------------------ per-class differences
def with_classes(result: AnalysisResult, accuracy: dict[str | tuple[str, str], list[dict[str, float]]],
                 images: int | dict[str, int] = 1000) -> AnalysisResult:
    """`result` with per-class test accuracies (class_accuracy_table's shape): cell label (or (preset, cell label)
    where presets share a label) -> one {class: accuracy} per run of that cell, in run order; classes not named
    score 0.9; `images` per class (1000 where not named)."""
    from fmnist.data.resplit import CLASS_NAMES

    rows = []
    for (preset, cell), group in result.collection.runs.groupby(["preset", "cell"], sort=False):
        for run_dir, per_class in zip(group["run_dir"], accuracy.get((preset, cell), accuracy.get(cell, []))):
            for name in CLASS_NAMES:
                acc = per_class.get(name, 0.9)
                n = images.get(name, 1000) if isinstance(images, dict) else images
                rows.append({"run_dir": run_dir, "preset": preset, "cell": cell, "class": name,
                             "images": n, "correct": round(acc * n), "accuracy": acc})
    result.class_runs = pd.DataFrame(rows)
    return result


def test_class_differences_test_each_class_over_seeds_holm_corrected_within_the_comparison() -> None:
    models = seeds({"model": "resnet18"}, [0.92, 0.921, 0.922]) + seeds({"model": "plain18"}, [0.93, 0.931, 0.932])
    result = make_result({"stage1_models": models})
    shirt_a, shirt_b = [0.80, 0.81, 0.82], [0.86, 0.87, 0.88]
    coat_a, coat_b = [0.90, 0.95, 0.85], [0.91, 0.86, 0.96]
    with_classes(result, {"model=resnet18": [{"Shirt": s, "Coat": c} for s, c in zip(shirt_a, coat_a)],
                          "model=plain18": [{"Shirt": s, "Coat": c} for s, c in zip(shirt_b, coat_b)]})
    table = evidence.class_differences(result).set_index("class")
    assert len(table) == 10 and set(table["question"]) == {"residual vs plain, 18 layers"}
    shirt = table.loc["Shirt"]
    assert (shirt["a"], shirt["b"], shirt["n_a"], shirt["n_b"]) == ("ResNet-18", "Plain-18", 3, 3)
    assert (shirt["cell_a"], shirt["cell_b"]) == ("model=resnet18", "model=plain18")
    assert shirt["delta"] == pytest.approx(-0.06) and shirt["images"] == 1000
    p_shirt, p_coat = welch(np.array(shirt_a), np.array(shirt_b)), welch(np.array(coat_a), np.array(coat_b))
    assert shirt["p"] == pytest.approx(p_shirt) and table.loc["Coat", "p"] == pytest.approx(p_coat)
    # the eight equal classes have p = 1 (no variance, equal means); Holm corrects across the ten classes
    ps = [table.loc[c, "p"] for c in table.index]
    assert table["p_holm"].tolist() == pytest.approx(holm(ps))
    assert shirt["p_holm"] == pytest.approx(min(1.0, 10 * p_shirt))
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert r"The test set has 1,000 images per class, so 1\,pp of a class is 10 images." in text
    assert (r"residual vs plain, 18 layers --- ResNet-18 against Plain-18, $-$0.70\,pp overall: Shirt $-$6.00\,pp "
            rf"($p_\mathrm{{Holm}}={latex.p_digits(shirt['p_holm'])}$), Coat $-$1.00\,pp.") in text
    assert "The class that moved most is an upper-body garment" in text
    assert (r" 1 of the 10 tested per-class differences passes Holm's correction across the classes of its comparison "
            r"($\alpha=0.05$): residual vs plain, 18 layers: Shirt $-$6.00\,pp.") in text


def test_class_differences_are_holm_corrected_within_each_comparison_and_count_only_the_tested_ones() -> None:
    """Three comparisons: two tested over seeds (3 against 2 seeds, 2 against 2), one with a seed each. Holm corrects
    across the ten classes of a comparison, not across all of them; the count of tested differences leaves out the
    untested comparison; a cell of another preset with the same label, and a cell no comparison uses, stay out."""
    models = (seeds({"model": "resnet18"}, [0.92, 0.921, 0.922]) + seeds({"model": "plain18"}, [0.93, 0.931])
              + seeds({"model": "vgg11"}, [0.9]))
    norm = seeds({"norm": "batchnorm"}, [0.93, 0.931]) + seeds({"norm": "none"}, [0.90, 0.901])
    skip = seeds({"model.skip": True}, [0.93]) + seeds({"model.skip": False}, [0.92])
    rerun = seeds({"model": "resnet18"}, [0.5])  # same cell label as stage1_models' ResNet-18, another preset
    result = make_result({"stage1_models": models, "stage2_norm": norm, "stage2_skip": skip, "stage1_rerun": rerun})
    shirt_a, shirt_b = [0.80, 0.801, 0.802], [0.86, 0.861]
    coat_a, coat_b = [0.95, 0.951], [0.85, 0.851]
    with_classes(result, {("stage1_models", "model=resnet18"): [{"Shirt": s} for s in shirt_a],
                          ("stage1_models", "model=plain18"): [{"Shirt": s} for s in shirt_b],
                          "model=vgg11": [{"Bag": 0.0}],  # 1,000 errors of a cell no comparison uses
                          "norm=batchnorm": [{"Coat": c, "Trouser": t} for c, t in zip(coat_a, [0.90, 0.91])],
                          "norm=none": [{"Coat": c, "Trouser": t} for c, t in zip(coat_b, [0.85, 0.86])],
                          "model.skip=True": [{"Pullover": 0.95}], "model.skip=False": [{"Pullover": 0.90}],
                          ("stage1_rerun", "model=resnet18"): [{"Shirt": 0.1}]})
    table = evidence.class_differences(result)
    assert len(table) == 30 and table["p_holm"].notna().sum() == 20
    shirt = table[(table["question"] == "residual vs plain, 18 layers") & (table["class"] == "Shirt")].iloc[0]
    assert (shirt["n_a"], shirt["n_b"]) == (3, 2) and shirt["acc_a"] == pytest.approx(0.801)
    assert shirt["delta"] == pytest.approx(0.801 - 0.8605)
    p_shirt = welch(np.array(shirt_a), np.array(shirt_b))
    coat = table[(table["question"] == "normalisation") & (table["class"] == "Coat")].iloc[0]
    p_coat = welch(np.array(coat_a), np.array(coat_b))
    assert shirt["p_holm"] == pytest.approx(10 * p_shirt) and coat["p_holm"] == pytest.approx(10 * p_coat)
    assert max(shirt["p_holm"], coat["p_holm"]) < ALPHA
    trouser = table[(table["question"] == "normalisation") & (table["class"] == "Trouser")].iloc[0]
    assert trouser["p"] < ALPHA < trouser["p_holm"]  # significant uncorrected only: not listed below
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert "In all 3 comparisons the class that moved most is an upper-body garment" in text
    runs, upper = result.class_runs, ["T-shirt/top", "Pullover", "Coat", "Shirt"]
    compared = runs[(runs["preset"] != "stage1_rerun") & (runs["cell"] != "model=vgg11")]
    errors = compared["images"] - compared["correct"]
    share = errors[compared["class"].isin(upper)].sum() / errors.sum()
    all_errors = runs["images"] - runs["correct"]  # with vgg11's 1,000 Bag errors and the other preset's run
    assert latex.pct(share, 1) != latex.pct(all_errors[runs["class"].isin(upper)].sum() / all_errors.sum(), 1)
    assert rf"these four classes hold {latex.pct(share, 1)}\,\% of the compared cells' test errors." in text
    assert (r" 2 of the 20 tested per-class differences pass Holm's correction across the classes of its comparison "
            r"($\alpha=0.05$): residual vs plain, 18 layers: Shirt $-$5.95\,pp; normalisation: Coat +10.00\,pp.") \
        in text


def test_class_differences_with_one_seed_are_quoted_untested_and_name_the_two_largest() -> None:
    models = seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.93])
    norm = seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.90])
    result = make_result({"stage1_models": models, "stage2_norm": norm})
    with_classes(result, {"model=resnet18": [{"Bag": 0.95, "Shirt": 0.80, "Sandal": 0.92}],
                          "model=plain18": [{}],
                          "norm=batchnorm": [{"Shirt": 0.95}], "norm=none": [{"Ankle boot": 0.5}]}, images=200)
    table = evidence.class_differences(result)
    assert table["p"].isna().all() and table["p_holm"].isna().all()
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert r"1\,pp of a class is 2 images" in text
    # the two classes that moved most, largest first; the overall difference is the image-weighted mean
    assert r"ResNet-18 against Plain-18, $-$0.30\,pp overall: Shirt $-$10.00\,pp, Bag +5.00\,pp;" in text
    assert r"BatchNorm against none, +4.50\,pp overall: Ankle boot +40.00\,pp, Shirt +5.00\,pp." in text
    assert "In 1 of the 2 comparisons the class that moved most is an upper-body garment" in text
    # the upper-body share of the compared cells' errors, counted from the images and correct columns
    runs = result.class_runs
    errors = runs["images"] - runs["correct"]
    share = errors[runs["class"].isin(["T-shirt/top", "Pullover", "Coat", "Shirt"])].sum() / errors.sum()
    assert rf"these four classes hold {latex.pct(share, 1)}\,\% of the compared cells' test errors." in text
    assert text.endswith("No per-class difference is tested yet: that needs two seeds or more of both cells.")


def test_class_differences_need_per_class_results_of_both_cells() -> None:
    models = seeds({"model": "resnet18"}, [0.92, 0.93]) + seeds({"model": "plain18"}, [0.93, 0.94])
    result = make_result({"stage1_models": models})
    assert evidence.class_differences(result).empty  # no predictions read at all
    assert evidence.evidence_macros(result)["readClassDifferences"] == ""
    with_classes(result, {"model=resnet18": [{}, {}]})  # the plain net's predictions are missing
    assert evidence.class_differences(result).empty
    assert evidence.evidence_macros(result)["readClassDifferences"] == ""
    with_classes(result, {"model=resnet18": [{}, {}], "model=plain18": [{}, {}]})
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert "None of the 10 tested per-class differences passes Holm's correction" in text
    assert "In all" not in text and "The class that moved most is an upper-body garment" in text


def test_one_comparison_whose_largest_move_is_no_garment_and_a_class_one_side_lacks() -> None:
    """100 images per class: 1 pp is 1 image (singular); with one comparison, its largest move (Bag) is said not to be
    an upper-body garment; a class without test images in one cell's runs has no difference."""
    norm = seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.90])
    result = make_result({"stage2_norm": norm})
    with_classes(result, {"norm=batchnorm": [{"Bag": 0.95, "Shirt": 0.93}], "norm=none": [{}]}, images=100)
    runs = result.class_runs
    result.class_runs = runs[~((runs["cell"] == "norm=none") & (runs["class"] == "Sandal"))]
    table = evidence.class_differences(result)
    assert len(table) == 9 and "Sandal" not in set(table["class"])
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert r"The test set has 100 images per class, so 1\,pp of a class is 1 image. " in text
    assert r"BatchNorm against none, +0.89\,pp overall: Bag +5.00\,pp, Shirt +3.00\,pp." in text
    assert " The class that moved most is not an upper-body garment (T-shirt/top, Pullover, Coat, Shirt);" in text
    with_classes(result, {"norm=batchnorm": [{"Bag": 0.95}], "norm=none": [{}]}, images=250)
    assert r"The test set has 250 images per class, so 1\,pp of a class is 2.5 images. " in \
        evidence.evidence_macros(result)["readClassDifferences"]
    from fmnist.data.resplit import CLASS_NAMES

    perfect = make_result({"stage2_norm": norm})  # no test error at all: no share of the errors to quote
    with_classes(perfect, {"norm=batchnorm": [dict.fromkeys(CLASS_NAMES, 1.0)],
                           "norm=none": [dict.fromkeys(CLASS_NAMES, 1.0)]})
    text = evidence.evidence_macros(perfect)["readClassDifferences"]
    assert "upper-body" not in text and "test errors" not in text and text.endswith("that needs two seeds or more "
                                                                                      "of both cells.")


def test_class_difference_heat_map_has_a_row_per_comparison_and_bold_tested_differences(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from fmnist.analysis import figures, style

    models = seeds({"model": "resnet18"}, [0.92, 0.921, 0.922]) + seeds({"model": "plain18"}, [0.93, 0.931, 0.932])
    norm = seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.90])
    result = make_result({"stage1_models": models, "stage2_norm": norm})
    with_classes(result, {"model=resnet18": [{"Shirt": s, "Bag": b} for s, b in zip((0.80, 0.81, 0.82),
                                                                                     (0.90, 0.91, 0.92))],
                          "model=plain18": [{"Shirt": s, "Bag": b} for s, b in zip((0.86, 0.87, 0.88),
                                                                                    (0.87, 0.88, 0.89))],
                          "norm=batchnorm": [{"Coat": 0.95}], "norm=none": [{"Coat": 0.90}]})
    saved = []
    real_save = style.save

    def keep(fig, out_dir, name):
        saved.append([t for t in fig.axes[0].texts])
        return real_save(fig, out_dir, name)

    with style.context(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(style, "save", keep)
        written = figures.class_differences(evidence.class_differences(result), ALPHA, tmp_path)
    plt.close("all")
    assert {p.name for p in written} == {"class_differences.pdf", "class_differences.png"}
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in saved[0]}
    shirt, coat = 6, 4  # column of the class (CLASS_NAMES order); row 0: residual vs plain, row 1: normalisation
    assert texts[(0, shirt)].get_text() == "−6.0" and texts[(0, shirt)].get_fontweight() == "bold"
    assert texts[(0, coat)].get_text() == "0.0" and texts[(0, coat)].get_fontweight() == "normal"
    assert texts[(1, coat)].get_text() == "+5.0" and texts[(1, coat)].get_fontweight() == "normal"  # untested
    bag = 8  # p < alpha, but fails Holm's correction (p_Holm between alpha and 1): not bold
    assert texts[(0, bag)].get_text() == "+3.0" and texts[(0, bag)].get_fontweight() == "normal"
    p_bag = evidence.class_differences(result).query("`class` == 'Bag' and question != 'normalisation'").iloc[0]
    assert p_bag["p"] < ALPHA < p_bag["p_holm"] < 1
    assert figures.class_differences(evidence.class_differences(make_result({"stage1_models": models})), ALPHA,
                                     tmp_path) == []


def test_an_unbalanced_test_set_weights_each_class_by_its_images() -> None:
    """The overall difference is the per-class differences weighted by the classes' test images (the accuracy
    difference itself), not their plain mean, when the classes differ in size."""
    norm = seeds({"norm": "batchnorm"}, [0.93]) + seeds({"norm": "none"}, [0.90])
    result = make_result({"stage2_norm": norm})
    with_classes(result, {"norm=batchnorm": [{"Shirt": 1.0}], "norm=none": [{"Shirt": 0.5}]},
                 images={"Shirt": 1100, "Bag": 100})
    text = evidence.evidence_macros(result)["readClassDifferences"]
    assert "The test set has 100 to 1,100 images per class. Per class" in text
    overall = 0.5 * 1100 / (8 * 1000 + 1100 + 100)  # Shirt's +50 pp over all 9,200 images
    assert rf"BatchNorm against none, {latex.pp(overall)}\,pp overall: Shirt +50.00\,pp" in text


def test_the_models_class_by_class_name_the_hardest_class_and_the_widest_spread() -> None:
    models = (seeds({"model": "resnet9"}, [0.94, 0.95]) + seeds({"model": "resnet50"}, [0.89, 0.90])
              + seeds({"model": "vgg11"}, [0.92, 0.93]))
    result = make_result({"stage1_models": models})
    with_classes(result, {"model=resnet9": [{"Shirt": 0.82, "Coat": 0.95}, {"Shirt": 0.84, "Coat": 0.95}],
                          "model=resnet50": [{"Shirt": 0.64, "Coat": 0.80}, {"Shirt": 0.66, "Coat": 0.80}],
                          "model=vgg11": [{"Shirt": 0.76, "Coat": 0.97}, {"Shirt": 0.78, "Coat": 0.97}]})
    table = evidence.classes.preset_class_accuracy(result, "stage1_models").set_index("cell")
    assert list(table.index) == ["model=resnet9", "model=resnet50", "model=vgg11"]
    assert table.loc["model=resnet50", "Shirt"] == pytest.approx(0.65) and table["n"].tolist() == [2, 2, 2]
    # overall: the image-weighted mean of the classes (8 classes at 0.9 and Shirt, Coat), averaged over runs
    assert table.loc["model=resnet9", "overall"] == pytest.approx((8 * 0.9 + 0.83 + 0.95) / 10)
    text = evidence.evidence_macros(result)["readModelClasses"]
    assert (r"every model of \texttt{stage1\_models} finds Shirt hardest, and the models differ most on it: from "
            r"65.00\,\% (ResNet-50) to 83.00\,\% (ResNet-9), a spread of 18.00\,pp against 3.30\,pp in overall "
            r"test accuracy (ResNet-50 to ResNet-9).") in text
    assert text.endswith("Averaged over seeds, the per-class differences between models are quoted, not tested.")
    tex = report_tables.models_per_class_table(result)
    assert r"\label{tab:models-per-class}" in tex and r"mean over the seeds ($n$)" in tex
    assert r"ResNet-9 & 2 & 90.0 & 90.0 & 90.0 & 90.0 & 95.0 & 90.0 & \textbf{83.0} & 90.0 & 90.0 & 90.0 & " \
           r"\textbf{89.8} \\" in tex
    assert r"VGG-11 & 2 & 90.0 & 90.0 & 90.0 & 90.0 & \textbf{97.0} & 90.0 & 77.0 &" in tex
    assert r"\textbf{90.0}" not in tex  # a class where every model scores the same has no bold


def test_the_models_class_by_class_when_they_disagree_on_the_hardest_class() -> None:
    models = seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.93])
    result = make_result({"stage1_models": models})
    with_classes(result, {"model=resnet18": [{"Shirt": 0.70, "Coat": 0.80}], "model=plain18": [{"Coat": 0.65}]})
    text = evidence.evidence_macros(result)["readModelClasses"]
    assert (r"the hardest class of the models of \texttt{stage1\_models} is Shirt for 1 of the 2 models. They differ "
            r"most on Shirt: from 70.00\,\% (ResNet-18) to 90.00\,\% (Plain-18), a spread of 20.00\,pp against "
            r"0.50\,pp in overall test accuracy (ResNet-18 to Plain-18).") in text
    assert text.endswith("With one seed per model, the per-class differences between models are quoted, not tested.")
    assert "one seed per model" in report_tables.models_per_class_table(result)
    alone = make_result({"stage1_models": seeds({"model": "resnet18"}, [0.92])})
    with_classes(alone, {"model=resnet18": [{}]})
    assert evidence.evidence_macros(alone)["readModelClasses"] == ""
    assert report_tables.models_per_class_table(alone) == ""


def test_the_models_class_by_class_when_they_share_the_hardest_class_but_differ_most_on_another() -> None:
    """Both models find Shirt hardest, but differ most on Coat; a cell of another preset with the same label stays
    out; one model with two seeds: the numbers are averaged over seeds."""
    models = seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.93, 0.93])
    result = make_result({"stage1_models": models, "stage1_rerun": seeds({"model": "resnet18"}, [0.5])})
    with_classes(result, {("stage1_models", "model=resnet18"): [{"Shirt": 0.70, "Coat": 0.95, "Trouser": 1.0}],
                          "model=plain18": [{"Shirt": 0.75, "Coat": 0.80, "Trouser": 0.99}] * 2,
                          ("stage1_rerun", "model=resnet18"): [{"Shirt": 0.1, "Coat": 0.1}]})
    text = evidence.evidence_macros(result)["readModelClasses"]
    # overall: ResNet-18 (7 × 0.9 + 0.70 + 0.95 + 1) / 10 = 89.5 %, Plain-18 (7 × 0.9 + 0.75 + 0.80 + 0.99) / 10
    # = 88.4 %
    assert (r"Per class (Table~\ref{tab:models-per-class}), every model of \texttt{stage1\_models} finds Shirt hardest "
            r"(70.00 to 75.00\,\%). They differ most on Coat: from 80.00\,\% (Plain-18) to 95.00\,\% (ResNet-18), a "
            r"spread of 15.00\,pp against 1.10\,pp in overall test accuracy (Plain-18 to ResNet-18). Averaged over "
            r"seeds, the per-class") in text
    tex = report_tables.models_per_class_table(result)
    assert r"mean over the seeds ($n$)" in tex
    assert r"ResNet-18 & 1 & 90.0 & \textbf{100.0} &" in tex and r"Plain-18 & 2 & 90.0 & 99.0 &" in tex  # by value


def test_confusion_similarity_relates_confusions_to_look_alike_classes() -> None:
    from fmnist.analysis.predictions import ClassResults
    from fmnist.analysis.similarity import mantel, pair_confusion
    from fmnist.data.resplit import CLASS_NAMES

    names = list(CLASS_NAMES)
    shirt, tshirt, coat, pullover = (names.index(c) for c in ("Shirt", "T-shirt/top", "Coat", "Pullover"))
    rng = np.random.default_rng(0)
    similarity = rng.uniform(0.1, 0.5, (10, 10))
    similarity = (similarity + similarity.T) / 2
    np.fill_diagonal(similarity, 1.0)
    confusion = np.diag(np.full(10, 90))
    for i in range(10):  # errors grow with likeness: the pairs' confusions follow the similarity
        for j in range(10):
            if i != j:
                confusion[i, j] = round(20 * similarity[i, j])
    similarity[shirt, coat] = similarity[coat, shirt] = 0.97
    similarity[shirt, pullover] = similarity[pullover, shirt] = 0.95
    similarity[shirt, tshirt] = similarity[tshirt, shirt] = 0.9
    confusion[shirt, tshirt], confusion[tshirt, shirt] = 40, 30  # the most confused pair, 3rd most alike
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9])})
    one_run = pd.DataFrame({"run_dir": ["a"], "class": ["Bag"], "accuracy": [0.9]})
    result.classes = ClassResults("model.skip=True", "stage2_skip", confusion, one_run, pd.DataFrame(), "")
    assert evidence.evidence_macros(result)["readConfusionSimilarity"] == ""  # no training images read
    result.class_similarity = similarity
    text = evidence.evidence_macros(result)["readConfusionSimilarity"]
    assert text.startswith(r"On the training images, the mean image of Shirt is most alike that of Coat ($r=0.970$), "
                           r"then Pullover (0.950) and T-shirt/top (0.900). Across the 45 pairs of classes, the more "
                           r"alike two classes' mean images are, the more often \confCell{} confuses them")
    rho, p = mantel(similarity, pair_confusion(confusion))
    assert (rf"(Spearman's $\rho={rho:.2f}$, $p<0.001$ from relabelling the classes, a Mantel "
            r"test~\citep{mantel1967detection})") in text and p < 1e-3
    rate = pair_confusion(confusion)[tshirt, shirt]
    assert text.endswith(rf"Its most confused pair, T-shirt/top and Shirt ({latex.pct(rate, 1)}\,\% of their test "
                         r"images, the two directions averaged), is the 3rd most alike of the 45 by mean image.")
    result.class_similarity = _symmetric_noise(10)  # likeness unrelated to the confusions
    text = evidence.evidence_macros(result)["readConfusionSimilarity"]
    assert r"how often \confCell{} confuses two classes is not related beyond chance to how alike" in text
    most = similarity.copy()
    most[shirt, tshirt] = most[tshirt, shirt] = 0.99  # the most confused pair is now the most alike
    result.class_similarity = most
    text = evidence.evidence_macros(result)["readConfusionSimilarity"]
    assert text.startswith(r"On the training images, the mean image of Shirt is most alike that of T-shirt/top "
                           r"($r=0.990$), then Coat (0.970) and Pullover (0.950).")
    assert text.endswith("the two directions averaged), is the most alike of the 45 by mean image.")
    result.class_similarity = 1 - similarity  # the more alike by this measure, the less confused
    text = evidence.evidence_macros(result)["readConfusionSimilarity"]
    assert r"the more alike two classes' mean images are, the less often \confCell{} confuses them" in text
    result.class_similarity = similarity[:9, :9]  # another number of classes than the confusion matrix
    assert evidence.evidence_macros(result)["readConfusionSimilarity"] == ""
    result.class_similarity = similarity
    result.classes.confusion = np.diag(np.full(10, 100))  # no confusion at all: nothing to relate
    assert evidence.evidence_macros(result)["readConfusionSimilarity"] == ""


def _symmetric_noise(n: int) -> np.ndarray:
    m = np.random.default_rng(5).uniform(0, 1, (n, n))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    return m


def test_ordinals() -> None:
    assert [latex.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 45, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "45th", "101st", "111th"]
def _ensemble(cell: str, n_runs: int, gain: float, churn: float, acc_diff: float, acc_std: float,
              wrong_all: float = 0.05, wrong_any: float = 0.1) -> dict[str, Any]:
    """A row of the ensembles table (fmnist.analysis.ensembles) of stage2_skip."""
    return {"preset": "stage2_skip", "cell": cell, "n_runs": n_runs, "n_images": 100, "acc_mean": 0.9,
            "acc_std": acc_std, "ensemble_acc": 0.9 + gain, "gain": gain, "churn": churn, "acc_diff": acc_diff,
            "wrong_all": wrong_all, "wrong_any": wrong_any}


def test_seed_ensembles_quote_the_gain_the_churn_against_the_accuracy_and_the_cell_that_disagrees_most() -> None:
    """Means over the cells, each counted once; the gain's range; churn as a multiple of the seeds' difference in
    accuracy (the least it can be); the cell with the largest churn named with its accuracy std."""
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91])})
    result.ensembles = pd.DataFrame([_ensemble("model.skip=True", 2, 0.015, 0.06, 0.01, 0.007, 0.05, 0.11),
                                     _ensemble("model.skip=False", 3, -0.005, 0.08, 0.01, 0.002, 0.15, 0.25)])
    m = evidence.ensemble_macros(result)
    assert (m["ensCells"], m["ensSeeds"], m["ensGain"], m["ensGainMin"], m["ensGainMax"]) == (
        "2 cells", "2--3 seeds", "+0.50", "$-$0.50", "+1.50")
    assert (m["ensChurn"], m["ensAccDiff"], m["ensAccStd"], m["ensWrongAll"], m["ensWrongAny"]) == (
        "7.00", "1.00", "0.45", "10.00", "18.00")
    assert (m["ensTopCell"], m["ensTopPreset"], m["ensTopChurn"], m["ensTopStd"]) == (
        "model.skip=False", r"\texttt{stage2\_skip}", "8.00", "0.20")
    text = evidence.evidence_macros(result)["readEnsembles"]
    assert text.startswith(r"Over the 2 cells with two seeds or more (2--3 seeds), averaging the seeds' predicted "
                           r"probabilities raises test accuracy by 0.50\,pp on average over the mean single run (per "
                           r"cell from $-$0.50 to +1.50\,pp). Two seeds disagree on 7.00\,\% of the test images on "
                           r"average, while their test accuracies differ by 1.00\,pp on average (std over the seeds "
                           r"0.45\,pp, on average over the cells): churn is at least the difference in accuracy, and "
                           r"here it is 7.0 times that difference, so most images")
    assert r"On average over the cells, 10.00\,\% of the test images are wrong for every seed and 18.00\,\% for" in text
    assert text.endswith(r"The largest churn is that of model.skip=False (\texttt{stage2\_skip}): its seeds disagree "
                         r"on 8.00\,\% of the test images, with a test-accuracy std of 0.20\,pp.")


def test_one_seed_ensemble_that_loses_and_churns_little_says_so() -> None:
    """One cell: no average, no range, no cell named as the largest; a negative gain lowers accuracy; churn under
    twice the accuracy difference is not said to exceed it; no ensembles: every macro n/a, no sentence."""
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91])})
    result.ensembles = pd.DataFrame([_ensemble("model.skip=True", 3, -0.002, 0.015, 0.01, 0.005)])
    text = evidence.seed_ensembles(result)
    assert text.startswith(r"For the only cell with two seeds or more, model.skip=True of \texttt{stage2\_skip} "
                           r"(3 seeds), averaging the seeds' predicted probabilities lowers test accuracy by 0.20\,pp "
                           r"over the mean single run. Two seeds disagree on 1.50\,\% of the test images, while")
    assert "here it is 1.5 times that difference. Of the test images, 5.00" in text
    assert "on average" not in text and "largest churn" not in text and "most images" not in text
    result.ensembles = pd.DataFrame()
    assert evidence.seed_ensembles(result) == latex.NA and evidence.evidence_macros(result)["readEnsembles"] == ""
    assert set(evidence.ensemble_macros(result).values()) == {latex.NA}


def test_seed_ensembles_that_change_nothing_and_seeds_of_equal_accuracy_that_still_disagree() -> None:
    """A gain of zero, or one that is zero but for floating point (an ensemble at 93.00 % of seeds at 94.16 % and
    91.84 %), leaves the accuracy unchanged; seeds of equal accuracy that disagree on some images are said to; the
    same number of seeds in every cell is said once for each."""
    result = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9, 0.91])})
    result.ensembles = pd.DataFrame([_ensemble("model.skip=True", 2, 0.0, 0.02, 0.0, 0.0),
                                     _ensemble("model.skip=False", 2, 0.0, 0.03, 0.0, 0.0)])
    text = evidence.seed_ensembles(result)
    assert text.startswith(r"Over the 2 cells with two seeds or more (2 seeds each), averaging the seeds' predicted "
                           r"probabilities leaves test accuracy unchanged over the mean single run (per cell from "
                           r"+0.00 to +0.00\,pp). Two seeds disagree on 2.50\,\% of the test images on average, while "
                           r"their test accuracies differ by 0.00\,pp on average (std over the seeds 0.00\,pp, on "
                           r"average over the cells): seeds of the same accuracy still disagree on those images. ")
    gain = 0.93 - float(np.mean(np.array([9416, 9184]) / 10000))
    assert gain != 0 and round(100 * gain, 2) == 0
    result.ensembles = pd.DataFrame([_ensemble("model.skip=True", 2, gain, 0.03, 0.0232, 0.0164)])
    assert "averaging the seeds' predicted probabilities leaves test accuracy unchanged over the mean single run. " \
        in evidence.seed_ensembles(result)


def test_calibration_reads_confidence_against_accuracy_and_tests_label_smoothing() -> None:
    reg = {"optimizer.weight_decay": 1e-4, "model.dropout": 0.0}
    smooth, plain = {**reg, "trainer.label_smoothing": 0.1}, {**reg, "trainer.label_smoothing": 0.0}
    runs = (seeds(plain, [0.92, 0.93, 0.94], test_ece=[0.030, 0.032, 0.034], test_confidence=[0.96, 0.97, 0.98])
            + seeds(smooth, [0.92, 0.93, 0.94], test_ece=[0.010, 0.011, 0.012], test_confidence=[0.92, 0.93, 0.94]))
    result = make_result({"stage3_regularization": runs})
    text = evidence.evidence_macros(result)["readCalibration"]
    assert text.startswith(r"Over 6 trained networks, the mean confidence (the highest predicted probability) is "
                           r"95.00\,\% against a test accuracy of 93.00\,\%: over-confident by 2.00\,pp on average, "
                           r"with an expected calibration error (ECE over 15 confidence "
                           r"bins~\citep{guo2017calibration}) of 2.15\,\%; by cell it "
                           r"ranges from 1.10\,\% (")
    assert r"to 3.20\,\% (" in text
    p = welch(np.array([0.010, 0.011, 0.012]), np.array([0.030, 0.032, 0.034]))
    assert text.endswith(r"Label smoothing 0.1 against none, ECE 1.10 against 3.20\,\%: lower by 2.10\,pp "
                         r"($p<0.001$).") and p < 0.001
    under = make_result({"stage2_skip": seeds({"model.skip": True}, [0.95], test_ece=[0.01], test_confidence=[0.93])})
    assert "under-confident by 2.00\\,pp" in evidence.evidence_macros(under)["readCalibration"]
    assert "by cell it ranges" not in evidence.evidence_macros(under)["readCalibration"]  # one cell
    assert evidence.evidence_macros(make_result({"stage2_skip": seeds({"model.skip": True}, [0.9])}))[
        "readCalibration"] == ""  # no calibration recorded


def test_key_churn_sets_the_cells_disagreement_beside_their_accuracy_and_seed_churn() -> None:
    norm = seeds({"norm": "batchnorm"}, [0.93, 0.94]) + seeds({"norm": "none"}, [0.90, 0.91])
    models = seeds({"model": "resnet18"}, [0.92]) + seeds({"model": "plain18"}, [0.93])
    result = make_result({"stage1_models": models, "stage2_norm": norm})
    assert evidence.evidence_macros(result)["readKeyChurn"] == ""  # no predictions compared
    result.pair_churn = pd.DataFrame([
        {"question": "residual vs plain, 18 layers", "preset": "stage1_models", "a": "ResNet-18", "b": "Plain-18",
         "n_a": 1, "n_b": 1, "between": 0.0479, "within_a": math.nan, "within_b": math.nan},
        {"question": "normalisation", "preset": "stage2_norm", "a": "BatchNorm", "b": "none", "n_a": 2, "n_b": 2,
         "between": 0.06, "within_a": 0.05, "within_b": 0.055}])
    text = evidence.evidence_macros(result)["readKeyChurn"]
    assert text.startswith(r"A run of each question's cell $a$ and a run of its cell $b$ predict different classes for "
                           r"this share of the test images: residual vs plain, 18 layers --- ResNet-18 against "
                           r"Plain-18: 4.79\,\% (accuracy difference $-$1.00\,pp); normalisation --- BatchNorm "
                           r"against none: 6.00\,\% (accuracy difference +3.00\,pp; two seeds of BatchNorm: 5.00\,\%, "
                           r"of none: 5.50\,\%).")
    assert text.endswith("For the only comparison with two seeds of both cells, the two settings disagree more often "
                         "than two seeds of either setting do (a description, not a test).")
    two = pd.concat([result.pair_churn, result.pair_churn.iloc[[1]].assign(question="x", between=0.04)])
    result.pair_churn = two
    assert evidence.evidence_macros(result)["readKeyChurn"].endswith(
        "In 1 of the 2 comparisons with two seeds of both cells, the two settings disagree more often than two seeds "
        "of either setting do (a description, not a test).")
    assert "In both comparisons with two seeds" in evidence.evidence_macros(result.__class__(**{
        **result.__dict__, "pair_churn": two.assign(between=0.07)}))["readKeyChurn"]
    result.pair_churn = two.assign(between=0.01)
    assert evidence.evidence_macros(result)["readKeyChurn"].endswith(
        "In none of the 2 comparisons with two seeds of both cells do the two settings disagree more often than two "
        "seeds of either setting (a description, not a test).")
    result.pair_churn = two.iloc[:1]
    assert evidence.evidence_macros(result)["readKeyChurn"].endswith(
        "so these shares cannot yet be set against the disagreement that a change of seed alone brings.")


def test_calibration_counts_each_network_once_and_only_runs_with_calibrated_predictions() -> None:
    """A run copied from another (reused_from) is one trained network; a run without predictions (no ECE) is left
    out of the accuracy too; confidence equal to accuracy is neither over- nor under-confident."""
    skip = [{"cell": {"model.skip": True}, "test_acc": 0.90, "test_ece": 0.02, "test_confidence": 0.92,
             "reused_from": None},
            {"cell": {"model.skip": True}, "test_acc": 0.94, "test_ece": 0.04, "test_confidence": 0.94,
             "reused_from": None},
            {"cell": {"model.skip": False}, "test_acc": 0.50, "test_ece": math.nan, "test_confidence": math.nan,
             "reused_from": None}]
    copy = [{"cell": {"norm": "batchnorm"}, "test_acc": 0.90, "test_ece": 0.02, "test_confidence": 0.92,
             "reused_from": "../../stage2_skip/0"}]
    result = make_result({"stage2_skip": skip, "stage2_norm": copy})
    assert evidence.evidence_macros(result)["readCalibration"].startswith(
        r"Over 2 trained networks, the mean confidence (the highest predicted probability) is 93.00\,\% against a "
        r"test accuracy of 92.00\,\%: over-confident by 1.00\,pp on average, with an expected calibration error (ECE "
        r"over 15 confidence bins~\citep{guo2017calibration}) of 3.00\,\%")
    reg = {"optimizer.weight_decay": 1e-4, "model.dropout": 0.0}
    smooth = seeds({**reg, "trainer.label_smoothing": 0.1}, [0.92, 0.93], test_ece=[0.01, 0.02],
                   test_confidence=[0.92, 0.93])
    plain = seeds({**reg, "trainer.label_smoothing": 0.0}, [0.92, 0.93], test_ece=[math.nan] * 2,
                  test_confidence=[math.nan] * 2)  # the reference's predictions are missing: nothing to compare
    text = evidence.evidence_macros(make_result({"stage3_regularization": smooth + plain}))["readCalibration"]
    assert text.endswith(r"of 1.50\,\%.") and "smoothing" not in text
    even = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9], test_ece=[0.01], test_confidence=[0.9])})
    assert (r"is 90.00\,\% against a test accuracy of 90.00\,\%: as confident as right, with an expected calibration "
            "error") in evidence.evidence_macros(even)["readCalibration"]
    slight = make_result({"stage2_skip": seeds({"model.skip": True}, [0.9], test_ece=[0.01], test_confidence=[0.9004])})
    assert r"over-confident by 0.04\,pp on average" in evidence.evidence_macros(slight)["readCalibration"]
