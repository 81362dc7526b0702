"""The ensemble measurement: members' logits averaged clip by clip, mismatches refused."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.training.ensemble_eval import evaluate, mean_logits
from streamser.training.loco import SHARED4
from streamser.training.train import ClipScores

LABELS = (*SHARED4, "calm")


def _run(rng: np.random.Generator, noise: float, n: int = 80) -> dict:
    """``n`` clips of 3 windows from four speakers: the true class plus member-specific noise."""
    y = np.arange(n) % 4
    logits = []
    for truth in y:
        z = rng.normal(scale=noise, size=(3, len(LABELS)))
        z[:, truth] += 1.0
        logits.append(z.astype(np.float32))
    return {"scores": ClipScores(LABELS, logits, [np.zeros((3, 2))] * n), "y": y,
            "labels": LABELS, "speakers": [f"x:{i % 4}" for i in range(n)],
            "paths": [f"clip{i}.flac" for i in range(n)]}


def test_mean_logits_is_the_members_average_clip_by_clip() -> None:
    rng = np.random.default_rng(0)
    a, b = _run(rng, 1.0), _run(rng, 1.0)
    mean = mean_logits([a, b])
    assert len(mean) == 80
    np.testing.assert_allclose(
        mean[7], (a["scores"].window_logits[7] + b["scores"].window_logits[7]) / 2, rtol=1e-6)


def test_two_members_with_independent_errors_beat_either_alone() -> None:
    """Independent noise averages out: the ensemble's UA is above both members' (the case the
    ensemble is for); a member averaged with itself changes nothing."""
    rng = np.random.default_rng(1)
    a, b = _run(rng, 2.0, 400), _run(rng, 2.0, 400)
    ua = {name: evaluate(z, a, orders=1)["ua"] for name, z in
          (("a", a["scores"].window_logits), ("b", b["scores"].window_logits),
           ("ab", mean_logits([a, b])), ("aa", mean_logits([a, a])))}
    assert ua["ab"] > max(ua["a"], ua["b"])
    assert ua["aa"] == pytest.approx(ua["a"])


def test_members_of_other_clips_or_windows_are_refused() -> None:
    rng = np.random.default_rng(2)
    a, b = _run(rng, 1.0), _run(rng, 1.0)
    b["paths"] = list(reversed(b["paths"]))
    with pytest.raises(ValueError, match="different clips"):
        mean_logits([a, b])
    c = _run(rng, 1.0)
    c["scores"].window_logits[3] = c["scores"].window_logits[3][:2]
    with pytest.raises(ValueError, match="different windows"):
        mean_logits([a, c])
