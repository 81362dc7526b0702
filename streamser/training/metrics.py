"""Evaluation metrics (numpy only; matplotlib is imported lazily by :func:`save_confusion_png`).

Class labels are integer indices ``0 .. n_classes-1`` into a label list.

- UA, *unweighted accuracy*: mean per-class recall over the classes present in ``y_true``
  (a class absent from the test set has no recall and is not averaged in).
- WA, *weighted accuracy*: plain accuracy (per-class recall weighted by class frequency).
- ECE, *expected calibration error*: top-label confidence vs accuracy in 15 equal-width bins.
- AUROC of a score for a binary outcome (e.g. "the label is right"): the probability that a
  random positive scores higher than a random negative (ties count one half); 0.5 is no signal.
- :func:`summarise` — mean ± sample standard deviation (ddof=1) over folds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MeanStd",
    "auroc",
    "confusion_matrix",
    "expected_calibration_error",
    "per_class_recall",
    "save_confusion_png",
    "summarise",
    "unweighted_accuracy",
    "weighted_accuracy",
]


def _as_labels(y: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D integer indices, got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int
) -> np.ndarray:
    """Counts ``[n_classes, n_classes]`` (int64): rows are true classes, columns predictions."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall per true class (float64); ``nan`` for classes with no test samples."""
    support = cm.sum(axis=1).astype(np.float64)
    diag = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, diag / np.where(support > 0, support, 1.0), np.nan)


def unweighted_accuracy(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    n_classes: int | None = None,
) -> float:
    """UA in [0, 1]: mean recall over the classes present in ``y_true``."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.size == 0:
        raise ValueError("UA of an empty test set is undefined")
    n = n_classes if n_classes is not None else int(max(t.max(), p.max())) + 1
    recall = per_class_recall(confusion_matrix(t, p, n))
    return float(np.nanmean(recall))


def weighted_accuracy(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> float:
    """WA in [0, 1]: the fraction of correct predictions."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.size == 0:
        raise ValueError("WA of an empty test set is undefined")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return float(np.mean(t == p))


def auroc(score: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (Mann-Whitney, ties averaged).

    ``nan`` when either outcome is absent (no ranking to judge).
    """
    s = np.asarray(score, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    if s.shape != pos.shape or s.ndim != 1:
        raise ValueError(
            f"score and positive must be 1-D of one length, got {s.shape}, {pos.shape}")
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Average ranks (1-based) over runs of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(
    probs: np.ndarray, y_true: Sequence[int] | np.ndarray, n_bins: int = 15
) -> float:
    """ECE in [0, 1] of ``probs`` ``[n, n_classes]`` against integer labels.

    Samples are binned by top-label confidence into ``n_bins`` equal-width bins over (0, 1];
    ECE is the sample-weighted mean of ``|accuracy - mean confidence|`` over non-empty bins.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = _as_labels(y_true)
    if p.ndim != 2 or p.shape[0] != t.size:
        raise ValueError(f"probs must be [n, n_classes] with n={t.size}, got {p.shape}")
    if t.size == 0:
        raise ValueError("ECE of an empty set is undefined")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    # Bin b holds confidences in (b/n, (b+1)/n]; confidence 0 goes to the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) over ``n`` folds."""

    mean: float
    std: float
    n: int

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly ``{"mean", "std", "n"}``."""
        return {"mean": self.mean, "std": self.std, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


def summarise(per_fold: Sequence[Mapping[str, float]]) -> dict[str, MeanStd]:
    """Mean ± std per metric over folds (every fold must report the same metric names)."""
    if not per_fold:
        raise ValueError("no folds to summarise")
    keys = list(per_fold[0])
    result: dict[str, MeanStd] = {}
    for key in keys:
        values = np.array([float(fold[key]) for fold in per_fold], dtype=np.float64)
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        result[key] = MeanStd(float(values.mean()), std, int(values.size))
    return result


def save_confusion_png(
    cm: np.ndarray,
    labels: Sequence[str],
    path: Path | str,
    title: str = "",
    normalise: bool = True,
) -> Path:
    """Write confusion matrix ``cm`` (rows true) as a PNG; cells show row-normalised recall.

    Uses matplotlib's Agg backend (no display needed). Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(cm, dtype=np.float64)
    if normalise:
        rows = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    else:
        shown = counts
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n), dpi=110)
    try:
        image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalise else None)
        ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
        ax.set_yticks(range(n), labels=list(labels))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if title:
            ax.set_title(title, fontsize=9)
        threshold = shown.max() / 2 if shown.size else 0.0
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalise else f"{int(counts[i, j])}"
                colour = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
