"""Speaker-relative scoring plan: enrolment clips are neutral, never scored, and capped."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from streamser.training.reference_eval import plan_speaker


def test_enrolment_takes_neutral_clips_until_the_duration_and_never_scores_them():
    labels = ["neutral"] * 10 + ["happy"] * 5 + ["calm"] * 3
    speech = [4.0] * len(labels)
    plan = plan_speaker(list(range(len(labels))), labels, speech, 10.0,
                        np.random.default_rng(0))
    assert plan is not None
    assert len(plan.enrol) == 3  # 3 x 4 s >= 10 s
    assert all(labels[i] == "neutral" for i in plan.enrol)
    assert not set(plan.enrol) & set(plan.order)
    # the shared classes only (calm is not one), every remaining neutral and happy clip
    assert sorted(plan.order) == sorted(set(range(15)) - set(plan.enrol))


def test_enrolment_leaves_half_of_the_neutral_clips_to_score():
    labels = ["neutral"] * 4 + ["sad"] * 4
    plan = plan_speaker(list(range(8)), labels, [1.0] * 8, 20.0, np.random.default_rng(1))
    assert plan is not None
    assert len(plan.enrol) == 2
    assert sum(labels[i] == "neutral" for i in plan.order) == 2


def test_a_speaker_without_two_neutral_clips_has_no_plan():
    labels = ["neutral", "sad", "happy"]
    assert plan_speaker([0, 1, 2], labels, [3.0] * 3, 20.0, np.random.default_rng(0)) is None


def test_prompted_plan_enrols_one_clip_per_other_emotion_and_scores_none_of_them():
    labels = ["neutral"] * 6 + ["happy"] * 3 + ["sad"] * 3 + ["angry"] * 1 + ["calm"] * 2
    plan = plan_speaker(list(range(len(labels))), labels, [4.0] * len(labels), 8.0,
                        np.random.default_rng(2), prompted=True)
    assert plan is not None
    # angry has a single clip: it stays to be scored rather than enrolled
    assert sorted(labels[i] for i in plan.prompts) == ["happy", "sad"]
    enrolled = set(plan.enrol) | set(plan.prompts)
    assert not enrolled & set(plan.order)
    assert sorted(plan.order) == sorted(set(range(13)) - enrolled)

