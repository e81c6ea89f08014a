"""Figures made of test predictions and images: confusion matrix with per-class accuracy, a grid of
misclassified test images, and the augmentation check (training images per class, raw and augmented)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from fmnist.analysis import style
from fmnist.analysis.errors import AnalysisError
from fmnist.analysis.predictions import ClassResults
from fmnist.data.augment import Augment
from fmnist.data.resplit import ImageSet

PERCENT = 100.0


def confusion(results: ClassResults, out_dir: Path) -> list[Path]:
    """Row-normalised confusion matrix (pooled over the cell's seeds) and per-class test accuracy."""
    names = results.class_names
    matrix = results.confusion / np.maximum(results.confusion.sum(1, keepdims=True), 1) * PERCENT
    fig, (ax, bar) = plt.subplots(1, 2, figsize=(style.TWO_COLUMN, 3.2), width_ratios=[1.35, 1])
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=100)
    for t in range(len(names)):
        for p in range(len(names)):
            if round(matrix[t, p]) >= 1:  # a share that prints as 0 is left blank, like an empty cell
                ax.text(p, t, f"{matrix[t, p]:.0f}", ha="center", va="center", fontsize=5.5,
                        color="white" if matrix[t, p] > 60 else "black")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    ax.set_title(f"% of each true class ({results.n_runs} runs pooled)" if results.n_runs > 1
                 else "% of each true class (one run)")
    acc = results.class_accuracy()
    y = np.arange(len(acc))
    bar.barh(y, acc["mean"] * PERCENT, xerr=acc["std"].fillna(0) * PERCENT, color=style.color(0), height=0.6)
    bar.set_yticks(y, acc["class"])
    bar.invert_yaxis()
    bar.set_xlabel("test accuracy (%), mean ± std over seeds" if results.n_runs > 1 else "test accuracy (%)")
    bar.set_xlim(0, 100)
    bar.grid(axis="y", visible=False)
    fig.suptitle(f"{results.preset}: {results.cell}", y=1.0)
    return style.save(fig, out_dir, "confusion")


def misclassified(results: ClassResults, test: ImageSet, out_dir: Path, count: int = 24) -> list[Path]:
    """The `count` most confidently misclassified test images of the cell's first run, with true and
    predicted class and the predicted probability. An AnalysisError when an image to show is not in `test` under
    its id with the run's label (a data folder of another split than the runs': data_dir=...)."""
    pred = results.predictions
    wrong = pred[pred["label"] != pred["pred"]].copy()
    if wrong.empty or count <= 0:
        return []
    wrong["p"] = wrong.apply(lambda r: r[f"p{int(r['pred'])}"], axis=1)
    wrong = wrong.sort_values("p", ascending=False).head(count)
    index = {int(i): k for k, i in enumerate(test.ids)}
    foreign = [int(i) for i, label in zip(wrong["id"], wrong["label"]) if int(i) not in index
               or (test.labels is not None and int(test.labels[index[int(i)]]) != int(label))]
    if foreign:
        ids = ", ".join(map(str, foreign[:3])) + (", ..." if len(foreign) > 3 else "")
        raise AnalysisError(f"{len(foreign)} of the {len(wrong)} test images to show (id {ids}) are not test images "
                            "of the data folder read (or have another label there): it is not the split the runs were "
                            "tested on (set data_dir= to the folder they trained on)")
    cols = 8
    rows = int(np.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(style.TWO_COLUMN, 1.05 * rows), squeeze=False)
    names = results.class_names
    for ax, (_, r) in zip(axes.flat, wrong.iterrows()):
        ax.imshow(test.images[index[int(r["id"])]], cmap="Greys_r", vmin=0, vmax=255)
        ax.set_title(f"{names[int(r['label'])]}\n→ {names[int(r['pred'])]} {r['p']:.2f}", fontsize=5.5, pad=2)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"Most confident test errors (true class → predicted, probability); {results.cell}, one seed",
                 y=1.0)
    fig.subplots_adjust(wspace=0.08, hspace=0.45)
    return style.save(fig, out_dir, "misclassified")


def augmented_rows(raw: torch.Tensor, labels: torch.Tensor, augments: Sequence[tuple[str, Augment]],
                   seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The rows of the augmentation figure: `raw` ([B, 1, H, W] in [0, 1]), then each augmentation applied to it
    as the trainer applies it to a batch (index = position in the batch, epoch 1, for alternating flips). Mixup
    and cutmix draw one λ per batch, the weight of each image's own class: their row names give it, since with
    λ < 0.5 the picture under a class's column is mostly another class's image."""
    rows = [("raw", raw)]
    index = torch.arange(raw.shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, aug in augments:
            images, targets = aug(raw.clone(), labels, index=index, epoch=1)
            if aug.soft_targets:  # an image paired with itself keeps weight 1: the batch's λ is the smallest
                name += f"\nλ = {float(targets.gather(1, labels[:, None]).min()):.2f}"
            rows.append((name, images))
    return rows


def augmentations(train: ImageSet, augments: Sequence[tuple[str, Augment]], out_dir: Path,
                  class_names: Sequence[str], seed: int = 0) -> list[Path]:
    """One training image per class (columns): raw, then after each augmentation (rows), exactly as the
    trainer applies it to a batch of [0, 1] images (mixup/cutmix mix with another image of the batch)."""
    if train.labels is None:
        return []
    picks = [int(np.flatnonzero(train.labels == c)[0]) for c in range(len(class_names))
             if (train.labels == c).any()]
    raw = torch.from_numpy(train.images[picks]).float().div(255.0).unsqueeze(1)
    labels = torch.from_numpy(train.labels[picks])
    rows = augmented_rows(raw, labels, augments, seed)
    fig, axes = plt.subplots(len(rows), len(picks), figsize=(style.TWO_COLUMN, 0.78 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(len(picks)):
            ax = axes[r, c]
            ax.imshow(images[c, 0].numpy(), cmap="Greys_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(class_names[int(labels[c])], fontsize=6)
            if c == 0:
                ax.set_ylabel(name, fontsize=6.5)
    fig.suptitle("Training images as the network sees them (before normalisation)", y=1.0)
    return style.save(fig, out_dir, "augmentations")
