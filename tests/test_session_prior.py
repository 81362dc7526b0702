"""Session class-prior correction: a label-free re-weighting that adapts to one voice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamser.core.session_prior import PriorConfig, SessionPrior


def test_a_biased_voice_gets_its_ranking_back() -> None:
    """A voice the model hears as "label 0" most of the time: after correction each window's
    true label wins again, because what is left is how the window differs from the voice."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=400)
    logits = rng.normal(scale=0.3, size=(400, 4))
    logits[np.arange(400), truth] += 1.0   # the emotion information
    logits[:, 0] += 2.0                    # the voice/chain bias towards label 0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.mean(probs.argmax(axis=1) == truth) < 0.45
    prior = SessionPrior(4, PriorConfig(min_windows=20, max_windows=400))
    out = [prior.update(p, voiced=True) for p in probs]
    corrected = np.stack([q for q in out[20:] if q is not None])
    assert np.mean(corrected.argmax(axis=1) == truth[20:]) > 0.7
    assert prior.prior[0] > 0.5


def test_waits_for_speech_and_ignores_silence() -> None:
    prior = SessionPrior(3, PriorConfig(min_windows=3, max_windows=10))
    p = np.array([0.7, 0.2, 0.1])
    assert prior.update(p, voiced=False) is None
    assert prior.update(p, voiced=True) is None
    assert prior.update(p, voiced=True) is None
    assert prior.windows == 2
    assert prior.update(p, voiced=True) is not None
    prior.reset()
    assert prior.windows == 0 and not prior.active
    np.testing.assert_allclose(prior.prior, 1 / 3)


def test_identity_when_the_session_is_uniform_or_strength_is_zero() -> None:
    p = np.array([0.5, 0.3, 0.2])
    uniform = SessionPrior(3, PriorConfig(min_windows=1))
    for _ in range(5):
        uniform.observe(np.full(3, 1 / 3))
    np.testing.assert_allclose(uniform.correct(p), p)
    off = SessionPrior(3, PriorConfig(min_windows=1, strength=0.0))
    off.observe(np.array([0.9, 0.05, 0.05]))
    np.testing.assert_allclose(off.correct(p), p)


def test_shrinkage_keeps_early_estimates_near_uniform() -> None:
    prior = SessionPrior(2, PriorConfig(min_windows=1, shrink_windows=10.0))
    prior.observe(np.array([1.0, 0.0]))
    np.testing.assert_allclose(prior.prior, [(1 + 5) / 11, 5 / 11])


def test_bad_settings_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="strength"):
        PriorConfig(strength=1.5)
    with pytest.raises(ValueError, match="min_windows"):
        PriorConfig(min_windows=0)
    with pytest.raises(ValueError, match="shape"):
        SessionPrior(3).observe(np.ones(4) / 4)


def test_analyze_with_session_prior_end_to_end(tmp_path: Path) -> None:
    """`analyze` (session prior on by default) on the demo audio: frames switch to corrected
    after 20 voiced windows and say so; `--no-session-prior` leaves the model's own output."""
    from streamser.cli import main
    from streamser.errors import ModelContractError
    from streamser.model import default_model_path

    try:
        model = default_model_path()
    except ModelContractError:
        pytest.skip("no shipped model in models/")
    demo = Path(__file__).resolve().parent.parent / "assets" / "demo.flac"
    out = tmp_path / "f.jsonl"
    assert main(["analyze", str(demo), "--out", str(out), "--model", str(model)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    flags = [r["session_prior"] for r in rows]
    assert not flags[0] and flags[-1]
    first = flags.index(True)
    assert sum(r["voiced"] for r in rows[: first + 1]) == PriorConfig().min_windows
    plain = tmp_path / "plain.jsonl"
    assert main(["analyze", str(demo), "--out", str(plain), "--no-session-prior",
                 "--model", str(model)]) == 0
    rows_plain = [json.loads(line) for line in plain.read_text().splitlines()]
    assert not any(r["session_prior"] for r in rows_plain)
    assert rows_plain[first]["probs"] != rows[first]["probs"]
