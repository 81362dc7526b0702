"""The session-prior measurement: causal sessions, honest baselines (synthetic scores)."""

from __future__ import annotations

import numpy as np

from streamser.core.session_prior import PriorConfig
from streamser.training.loco import SHARED4
from streamser.training.prior_eval import evaluate_target, session_probs


def _biased_corpus(rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, np.ndarray,
                                                       list[str]]:
    """Six speakers, 40 clips each of 4 windows; each voice pushes the model to one label."""
    labels = [*SHARED4, "calm"]
    wp, y, spk = [], [], []
    for s in range(6):
        bias = s % 4
        for c in range(40):
            truth = c % 4
            z = rng.normal(scale=0.5, size=(4, 5))
            z[:, truth] += 1.2
            z[:, bias] += 2.0
            wp.append(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
            y.append(truth)
            spk.append(f"x:{s}")
    return wp, np.array(y), np.array(spk), labels


def test_session_probs_uses_only_the_past_and_present() -> None:
    """A clip's corrected score does not depend on the clips after it in the session."""
    rng = np.random.default_rng(0)
    wp, *_ = _biased_corpus(rng)
    order = np.arange(30)
    full = session_probs(wp, order, PriorConfig(min_windows=8))
    head = session_probs(wp, order[:12], PriorConfig(min_windows=8))
    np.testing.assert_allclose(full[:12], head)
    # the first two clips (8 windows) come out uncorrected
    np.testing.assert_allclose(full[0], wp[0].mean(axis=0))


def test_prior_beats_none_on_biased_voices_and_reports_every_kind() -> None:
    rng = np.random.default_rng(1)
    configs = {"none": None, "prior": PriorConfig()}
    out = evaluate_target(*_biased_corpus(rng), configs, orders=2)
    assert set(out) >= {"balanced", "neutral70", "neutral100", "oracle_ua"}
    assert out["balanced"]["prior"]["ua"] > out["balanced"]["none"]["ua"] + 0.15
    assert out["oracle_ua"] > out["balanced"]["none"]["ua"]
    assert 0.0 <= out["neutral100"]["prior"]["ua"] <= 1.0
