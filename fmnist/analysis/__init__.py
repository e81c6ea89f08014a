"""From sweep directories to tables, figures, dead-neuron statistics and the LaTeX report.

    options.py       analyze.py's options, checked before anything is read
    collect.py       run dirs -> one tidy table (one row per run) + the per-epoch table
    grid.py          jobs of a sweep (multirun.yaml) that left no run dir
    stats.py         seeds -> mean ± std per cell, Welch's t-test against the reference cell
    predictions.py   predictions_test.csv -> confusion matrices, per-class accuracy, calibration (calibration.py)
    ensembles.py     the seeds of a cell image by image: ensemble accuracy, churn
    similarity.py    how alike the classes look (mean images) and the Mantel test against confusions
    dead_neurons.py  hooks on every activation: never-positive units and sparsity
    style.py         the one figure style (sizes, fonts, palette, PDF + PNG saving)
    figures.py       every plot
    report.py        LaTeX tables, macros.tex and the latexmk build
    pipeline.py      the whole analysis, as `python analyze.py` runs it
    outputs.py       out_dir replaced as a whole, only when the analysis succeeded
    publish.py       a staging folder's files moved in all or nothing (journaled; the analysis and the report)
    callbacks.py     the opt-in Hydra callback that analyses a sweep when it ends
"""
