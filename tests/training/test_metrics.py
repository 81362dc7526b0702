"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamser.training.metrics import (
    MeanStd,
    auroc,
    confusion_matrix,
    expected_calibration_error,
    save_confusion_png,
    summarise,
    unweighted_accuracy,
    weighted_accuracy,
)


def test_confusion_ua_wa() -> None:
    """UA averages recall over classes present in y_true; WA is accuracy."""
    y_true = [0, 0, 0, 0, 1, 1, 3]
    y_pred = [0, 0, 0, 1, 1, 0, 3]
    cm = confusion_matrix(y_true, y_pred, 4)
    assert cm.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert unweighted_accuracy(y_true, y_pred, 4) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(5 / 7)


def test_confusion_rejects_out_of_range() -> None:
    """Labels outside 0..n-1 raise."""
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], 3)


def test_ece() -> None:
    """Perfectly calibrated bins give 0; an over-confident model gives |acc - conf|."""
    probs = np.array([[0.9, 0.1]] * 10)
    y = np.array([0] * 9 + [1])
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)
    y_bad = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(probs, y_bad) == pytest.approx(0.4)
    mixed = np.array([[1.0, 0.0], [0.6, 0.4]])
    assert expected_calibration_error(mixed, [0, 1]) == pytest.approx(0.5 * 0 + 0.5 * 0.6)


def test_summarise_mean_std() -> None:
    """Mean and sample std (ddof=1) per metric."""
    result = summarise([{"ua": 0.5, "wa": 0.6}, {"ua": 0.7, "wa": 0.6}])
    assert result["ua"].mean == pytest.approx(0.6)
    assert result["ua"].std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert result["wa"] == MeanStd(0.6, 0.0, 2)
    assert summarise([{"ua": 0.4}])["ua"].std == 0.0


def test_confusion_png(tmp_path: Path) -> None:
    """A PNG file is written without a display."""
    cm = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], 3)
    out = save_confusion_png(cm, ["a", "b", "c"], tmp_path / "sub" / "cm.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_auroc_ranks_and_ties() -> None:
    # Perfect ranking, reversed ranking, and one tie across the classes (counts one half).
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auroc([0.5, 0.5], [False, True]) == 0.5
    # 3 positives x 2 negatives = 6 pairs; positive 0.4 beats one negative and ties none: 5/6.
    assert auroc([0.3, 0.45, 0.4, 0.6, 0.7], [False, False, True, True, True]) == 5 / 6
    assert np.isnan(auroc([0.1, 0.2], [True, True]))
    with pytest.raises(ValueError, match="1-D"):
        auroc([0.1, 0.2], [True])
