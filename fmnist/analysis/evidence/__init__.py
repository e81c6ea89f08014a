"""The evidence behind the report's discussion: for each question of the study, the comparisons that answer it
and a sentence that reads them no further than the test allows.

    comparisons.py  a cell's runs, Welch's test between two cells, the key comparisons (Holm across the questions)
    wording.py      p-values, effects and 'A against B' sentences
    factorial.py    learning rate x schedule (two-way ANOVA), the regularisation factors' main effects
    dead_units.py   dead units, each network once: by activation, by learning rate, the cells that lost the most
    churn.py        seed ensembles and prediction churn: the numbers and the sentences of the additional notes
    readings.py     the sentence that answers each question
    classes.py      the key comparisons class by class
    confidence.py   calibration: confidence against accuracy, ECE under label smoothing and mixing
    summaries.py    the answers, findings, negative results, unstable starts, the best cell, each preset's paragraph
    discussion.py   the discussion's paragraphs and evidence_macros (every ``\\read...`` and ``\\sum...`` macro)
"""

from fmnist.analysis.evidence.classes import class_differences, class_reading
from fmnist.analysis.evidence.comparisons import (CAPACITY, HOLM, KEY_COMPARISONS, RES_VS_PLAIN, SKIP, Comparison,
                                                  Pair, across_questions, capacity_pairs, cell_runs, cell_value,
                                                  cell_values, compare, failed_cells, find_cell, key_cells,
                                                  key_comparisons, key_family_cells, key_family_p, keyed, metric_name,
                                                  named_pairs, primary, run_value, verdict)
from fmnist.analysis.evidence.churn import ENSEMBLE_MACROS, ensemble_macros, seed_ensembles, top_churn
from fmnist.analysis.evidence.dead_units import (dead_by_activation, dead_by_lr, dead_concentration, dead_runs_named,
                                                 dead_runs_sweeping, distinct_dead_layers, distinct_dead_runs,
                                                 most_dead_layer, rank_correlation, run_source)
from fmnist.analysis.evidence.discussion import (HE_FINDING, MIXING_NOTE, OPTIMIZER_NOTE, augmentation_discussion,
                                                 capacity_discussion, evidence_macros, optimisation_discussion,
                                                 residual_discussion)
from fmnist.analysis.evidence.factorial import (REG_FACTORS, lr_schedule_spread, main_effects, regularisation,
                                                two_way_anova, within_cell_noise)
from fmnist.analysis.evidence.readings import (FOOTWEAR, UPPER_BODY, against_reference, augmentation, capacity,
                                               confusion_groups, normalisation, residual_vs_plain)
from fmnist.analysis.evidence.summaries import (OTHER_MODELS, answers, best_cell, best_sentence, capacity_summary,
                                                findings, models_summary, negative_results, no_comparison,
                                                pair_summary, preset_summary, unstable_starts, untested_count)
from fmnist.analysis.evidence.wording import effect, p_math, versus

__all__ = [
    "class_differences", "class_reading",
    "CAPACITY", "HOLM", "KEY_COMPARISONS", "RES_VS_PLAIN", "SKIP", "Comparison", "Pair", "across_questions",
    "capacity_pairs", "cell_runs", "key_cells",
    "cell_value", "cell_values", "compare", "failed_cells", "find_cell", "key_comparisons", "key_family_cells",
    "key_family_p", "keyed",
    "metric_name", "named_pairs", "primary", "run_value", "verdict",
    "dead_by_activation", "dead_by_lr", "dead_concentration", "dead_runs_named", "dead_runs_sweeping",
    "distinct_dead_layers", "distinct_dead_runs", "most_dead_layer", "rank_correlation", "run_source",
    "ENSEMBLE_MACROS", "ensemble_macros", "seed_ensembles", "top_churn",
    "HE_FINDING", "MIXING_NOTE", "OPTIMIZER_NOTE", "augmentation_discussion", "capacity_discussion", "evidence_macros",
    "optimisation_discussion", "residual_discussion",
    "REG_FACTORS", "lr_schedule_spread", "main_effects", "regularisation", "two_way_anova", "within_cell_noise",
    "FOOTWEAR", "UPPER_BODY", "against_reference", "augmentation", "capacity", "confusion_groups", "normalisation",
    "residual_vs_plain",
    "OTHER_MODELS", "answers", "best_cell", "best_sentence", "capacity_summary", "findings", "models_summary",
    "negative_results", "no_comparison", "pair_summary", "preset_summary", "unstable_starts", "untested_count",
    "effect", "p_math", "versus",
]
