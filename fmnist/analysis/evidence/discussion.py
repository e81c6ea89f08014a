r"""The discussion's paragraphs, and :func:`evidence_macros`: every sentence of the discussion and the results
section as a macro (report/macros.tex; each expands to nothing when its data is not in the analysed sweeps):

* ``\readResVsPlainEighteen``, ``\readSkipVsNoSkip``: residual vs plain at equal depth, with training losses
  (optimisation or generalisation?); ``\readResidual``: both, introduced, for the discussion;
* ``\readDepth``, ``\readWidth`` (``\readCapacity``: both): ResNet-34 vs 18 at the largest width both were trained
  at, ResNet-18 at its largest vs its smallest width (:func:`capacity_pairs`), with parameters and generalisation
  gaps;
* ``\readNorm``: no normalisation vs BatchNorm, with the accuracy after one epoch and failures;
* ``\readLrSchedule``: how much the learning rate and the schedule each move accuracy, and whether either does
  beyond seed noise (two-way ANOVA against the seed noise; with ``tables/lr_schedules.tex``);
* ``\readDeadActivation``, ``\readDeadLr``: dead units by activation and against accuracy; by learning rate;
* ``\readAugment``: no augmentation vs crop + flip, with generalisation gaps;
* ``\readRegularization``: the main effect of each regularisation factor (with ``tables/main_effects.tex``);
* ``\readOptimizers``, ``\readActivations``, ``\readNorms``, ``\readAugments``: every alternative against the
  preset's reference, as its table has it (Holm-corrected);
* ``\readNormalisation``, ``\readOptimisation``, ``\readAugmentation``: a discussion paragraph's sentences together;
* ``\readConfusionGroups``: how the confusion cell's errors fall into look-alike class groups;
  ``\readConfusionSimilarity``: whether it confuses the classes whose mean training images are alike (Mantel test);
* ``\readClassDifferences``: the key comparisons class by class; ``\readModelClasses``: the stage-1 models class by
  class (:mod:`.classes`, with ``tables/models_per_class.tex``);
* ``\readEnsembles``: what the seeds of a cell do image by image: ensemble gain, churn, images always wrong;
  ``\readKeyChurn``: the key comparisons image by image, against two seeds of one cell;
* ``\readCalibration``: confidence against accuracy, the ECE, and label smoothing, mixup and CutMix against it;
* ``\readBest``, ``\readFindings``, ``\readNegative``: the best cell; the cells that beat / lose to their preset's
  reference (Holm);
* ``\readUnstable``: the cells whose first epoch's training loss was above chance level;
* ``\sumModels``, ``\sumCapacity``, ``\sumSkip``: the results section's paragraphs on stage 1 and skip connections
  (:func:`preset_summary`, the best cell against the reference, for the other presets).
"""

from __future__ import annotations

import pandas as pd

from fmnist.analysis.evidence.classes import class_reading, confusion_similarity, models_by_class
from fmnist.analysis.evidence.churn import key_churn, seed_ensembles
from fmnist.analysis.evidence.confidence import calibration_reading
from fmnist.analysis.evidence.comparisons import RES_VS_PLAIN, SKIP, capacity_pairs
from fmnist.analysis.evidence.dead_units import dead_by_activation, dead_by_lr
from fmnist.analysis.evidence.factorial import lr_schedule_spread, main_effects, regularisation
from fmnist.analysis.evidence.readings import (against_reference, augmentation, capacity, confusion_groups,
                                               normalisation, residual_vs_plain)
from fmnist.analysis.evidence.summaries import (answers, best_sentence, capacity_summary, findings, models_summary,
                                                negative_results, no_comparison, pair_summary, preset_summary,
                                                unstable_starts)
from fmnist.analysis.evidence.wording import _join
from fmnist.analysis.latex import NA
from fmnist.analysis.pipeline import AnalysisResult


def residual_discussion(result: AnalysisResult) -> str:
    """Both residual vs plain comparisons, each introduced, and He et al.'s finding they test."""
    models, skip = residual_vs_plain(result, RES_VS_PLAIN), residual_vs_plain(result, SKIP)
    text = _join("ResNet-18 against Plain-18 (the same 18 layers without residual additions). " + models
                 if models != NA else NA,
                 "ResNet-9 with and without its two residual additions (identical parameters). " + skip
                 if skip != NA else NA)
    depths = " and ".join(d for d, sentence in (("9", skip), ("18", models)) if sentence != NA)
    pairs = f"our pair is {depths} layers deep." if " and " not in depths else f"our pairs are {depths} layers deep."
    return _join(text, f"{HE_FINDING} {pairs}" if text else NA)


def capacity_discussion(result: AnalysisResult) -> str:
    """Depth and width, and the capacity figure when it was drawn."""
    pairs = capacity_pairs(result)
    text = _join(capacity(result, pairs.get("Depth")), capacity(result, pairs.get("Width")))
    figure = (r"Figure~\ref{fig:capacity} sets accuracy against parameters, FLOPs and training time."
              if text and "capacity" in result.figures else NA)
    return _join(text, figure)


#: What He et al. (2016) found on depth, which the residual vs plain pairs (9 and 18 layers) are read against;
#: the sentence ends with the depths of the pairs analysed.
HE_FINDING = (r"\citet{he2016deep} found plain nets harder to optimise as they grow deeper (on CIFAR-10 the training "
              r"error of plain nets rose from 20 to 56 layers; on ImageNet plain-34 trained worse than plain-18), "
              r"while at 18 layers their plain and residual nets reached about the same accuracy, the residual one "
              r"converging faster;")
#: What the optimiser comparison holds fixed (conf/optimizer/).
OPTIMIZER_NOTE = (r"Each optimiser runs with its own conventional learning rate and weight decay "
                  r"(Table~\ref{tab:ablations}: SGD at 0.1, Adam, AdamW and RMSprop at $10^{-3}$), so this compares "
                  "the optimisers as commonly used, not each at its tuned best.")
#: Why the gaps of mixup and cutmix are not comparable.
MIXING_NOTE = ("For mixup and cutmix the training accuracy is measured on mixed images (a prediction earns the "
               "weight of its class in the mixed label), so their gaps are not comparable with the others'.")


def optimisation_discussion(result: AnalysisResult, lr_text: str) -> str:
    """The optimisers against the reference, then learning rate against schedule with its table."""
    optimizers = against_reference(result, "stage2_optimizer")
    return _join(optimizers, OPTIMIZER_NOTE if optimizers != NA else NA,
                 lr_text + r" \input{tables/lr_schedules}" if lr_text != NA else NA)


def augmentation_discussion(result: AnalysisResult, effects: pd.DataFrame) -> str:
    """Augmentation (crop + flip against none, every alternative against the reference), then regularisation
    with its table of main effects."""
    augments = against_reference(result, "stage3_augment")
    reg = regularisation(result, effects)
    return _join(augmentation(result), augments, MIXING_NOTE if augments != NA else NA,
                 reg + r" \input{tables/main_effects}" if reg != NA else NA)


# ------------------------------------------------------------------------------------------ macros
def evidence_macros(result: AnalysisResult) -> dict[str, str]:
    """Name -> LaTeX sentence of every ``\\read...`` and ``\\sum...`` macro (empty when its data is not in the
    analysed sweeps)."""
    lr_text, _ = lr_schedule_spread(result)
    effects, pairs, norm = main_effects(result), capacity_pairs(result), normalisation(result)
    sentences = {
        "readResVsPlainEighteen": residual_vs_plain(result, RES_VS_PLAIN),
        "readSkipVsNoSkip": residual_vs_plain(result, SKIP),
        "readResidual": residual_discussion(result),
        "readDepth": capacity(result, pairs.get("Depth")),
        "readWidth": capacity(result, pairs.get("Width")),
        "readCapacity": capacity_discussion(result),
        "readNorm": norm,
        "readNormalisation": _join(norm, against_reference(result, "stage2_norm")),
        "readLrSchedule": lr_text,
        "readOptimisation": optimisation_discussion(result, lr_text),
        "readDeadActivation": dead_by_activation(result),
        "readDeadLr": dead_by_lr(result),
        "readAugment": augmentation(result),
        "readRegularization": regularisation(result, effects),
        "readAugmentation": augmentation_discussion(result, effects),
        "readOptimizers": against_reference(result, "stage2_optimizer"),
        "readActivations": against_reference(result, "stage2_activation"),
        "readNorms": against_reference(result, "stage2_norm"),
        "readAugments": against_reference(result, "stage3_augment"),
        "readConfusionGroups": confusion_groups(result),
        "readClassDifferences": class_reading(result),
        "readModelClasses": models_by_class(result),
        "readConfusionSimilarity": confusion_similarity(result),
        "readEnsembles": seed_ensembles(result),
        "readKeyChurn": key_churn(result),
        "readCalibration": calibration_reading(result),
        "readBest": best_sentence(result),
        "readAnswers": answers(result),
        "readFindings": findings(result),
        "readNoComparison": no_comparison(result.cells),
        "readNegative": negative_results(result),
        "readUnstable": unstable_starts(result),
        "sumModels": models_summary(result),
        "sumCapacity": capacity_summary(result),
        "sumSkip": _join(pair_summary(result, SKIP)) or preset_summary(result, SKIP.preset),
    }
    return {name: "" if text == NA else text for name, text in sentences.items()}
