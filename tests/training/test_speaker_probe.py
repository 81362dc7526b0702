"""The speaker-separation figures of the pretraining probe, on embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.training.speaker_probe import speaker_separation


def _voices(spread: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 16))
    emb = np.concatenate([c + spread * rng.standard_normal((10, 16)) for c in centres])
    return emb, [f"s{k}" for k in range(4) for _ in range(10)]


def test_separate_voices_score_perfectly_and_noise_scores_chance():
    emb, who = _voices(0.05)
    clear = speaker_separation(emb, who)
    assert clear == {"nn_accuracy": 1.0, "eer": 0.0}
    rng = np.random.default_rng(1)
    blind = speaker_separation(rng.standard_normal((40, 16)), who)
    assert blind["nn_accuracy"] < 0.5
    assert 0.35 < blind["eer"] < 0.65


def test_more_spread_means_worse_separation():
    tight, loose = (speaker_separation(*_voices(s)) for s in (0.5, 2.0))
    assert tight["eer"] < loose["eer"]
    assert tight["nn_accuracy"] >= loose["nn_accuracy"]


def test_one_speaker_or_mismatched_lengths_is_an_error():
    emb, who = _voices(0.1)
    with pytest.raises(ValueError, match="at least two speakers"):
        speaker_separation(emb, ["a"] * len(emb))
    with pytest.raises(ValueError, match="39 embeddings"):
        speaker_separation(emb[:-1], who)
