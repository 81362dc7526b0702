"""The "uncertain" threshold: the lowest confidence whose decisions are right often enough."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from streamser.training.loco import threshold_for


def test_threshold_is_the_lowest_confidence_meeting_the_target():
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    fit = threshold_for(conf, correct, target_acc=0.75)
    # running accuracy from the top: 1, 1, .67, .75, .6, .5 -> the lowest passing is 0.6
    assert fit["uncertain_below"] == 0.6
    assert fit["coverage"] == pytest.approx(4 / 6)
    assert fit["accuracy_above"] == pytest.approx(0.75)


def test_no_threshold_when_no_confidence_level_is_right_often_enough():
    fit = threshold_for(np.array([0.9, 0.5]), np.array([False, True]), target_acc=0.75)
    assert fit["uncertain_below"] is None and fit["coverage"] == 0.0


def test_weights_stop_a_large_easy_corpus_from_setting_the_threshold():
    # corpus A: 90 clips, all right, confidence 0.3; corpus B: 10 clips, confidence 0.6 or
    # 0.2, right only when confident.
    conf = np.r_[np.full(90, 0.3), np.full(5, 0.6), np.full(5, 0.2)]
    correct = np.r_[np.ones(90, bool), np.ones(5, bool), np.zeros(5, bool)]
    target = 0.9
    by_clip = threshold_for(conf, correct, target)
    assert by_clip["uncertain_below"] == 0.2  # 95 % right overall: label everything
    w = np.r_[np.full(90, 1 / 90), np.full(10, 1 / 10)]
    by_corpus = threshold_for(conf, correct, target, w)
    assert by_corpus["uncertain_below"] == 0.3  # B's unconfident half is wrong: cut it
    assert by_corpus["coverage"] == pytest.approx(0.75)  # all of A, half of B


def test_clips_of_equal_confidence_are_kept_or_cut_together():
    conf = np.array([0.9, 0.5, 0.5, 0.5])
    correct = np.array([True, True, False, False])
    # after the first 0.5 clip the running accuracy is 1.0, but a threshold of 0.5 keeps all
    # three (accuracy 0.5): the cut must be 0.9
    assert threshold_for(conf, correct, 0.75)["uncertain_below"] == 0.9
