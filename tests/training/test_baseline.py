"""The eGeMAPS + SVM baseline's evaluation logic on synthetic features (no openSMILE run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from streamser.training.baseline import (
    FeatureCache,
    evaluate_folds,
    speaker_normalise,
    train_test,
)
from streamser.training.corpora import Utterance
from streamser.training.folds import ravdess_folds

LABELS = ["neutral", "happy", "sad"]


def _synthetic(seed: int = 0) -> tuple[np.ndarray, list[Utterance]]:
    """20 RAVDESS-like actors, 3 classes, class signal plus a large per-speaker offset."""
    rng = np.random.default_rng(seed)
    utts, rows = [], []
    centres = rng.normal(0, 1, (len(LABELS), 6))
    for actor in range(1, 21):
        offset = rng.normal(0, 5, 6)
        for k, label in enumerate(LABELS):
            for rep in range(4):
                utts.append(
                    Utterance(
                        Path(f"{actor}_{k}_{rep}.wav"), label, f"ravdess:{actor:02d}", "ravdess"
                    )
                )
                rows.append(centres[k] + offset + rng.normal(0, 0.3, 6))
    return np.array(rows), utts


def test_speaker_normalise_per_speaker_stats() -> None:
    """Each speaker's rows end up with zero mean and unit std; constant columns only centred."""
    x = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 1.0], [30.0, 3.0]])
    z = speaker_normalise(x, ["a", "a", "b", "b"])
    np.testing.assert_allclose(z[:2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, 0], [-1.0, 1.0, -1.0, 1.0])
    np.testing.assert_allclose(z[:2, 1], [0.0, 0.0])
    ref = np.array([True, True, True, False])
    z_ref = speaker_normalise(x, ["a", "a", "b", "b"], ref)
    np.testing.assert_allclose(z_ref[2:, 0], [0.0, 20.0])


def test_evaluate_folds_speaker_norm_removes_offsets() -> None:
    """Speaker offsets hurt plain features; per-speaker normalisation recovers the classes."""
    x, utts = _synthetic()
    plain = evaluate_folds(x, utts, ravdess_folds(), LABELS, c_grid=(1.0,))
    normed = evaluate_folds(
        speaker_normalise(x, [u.speaker for u in utts]),
        utts,
        ravdess_folds(),
        LABELS,
        c_grid=(0.3, 3.0),
    )
    assert [r.n_test for r in normed] == [48] * 5
    assert all(r.confusion.sum() == 48 for r in normed)
    assert np.mean([r.ua for r in normed]) > 0.95
    assert np.mean([r.ua for r in normed]) > np.mean([r.ua for r in plain])
    assert normed[0].c in (0.3, 3.0) and set(normed[0].inner_scores) == {"0.3", "3.0"}


def test_train_test_reports_ua_wa(tmp_path: Path) -> None:
    """Cross-corpus helper returns UA/WA and a confusion over the given labels."""
    x, utts = _synthetic(1)
    half = len(utts) // 2
    z = speaker_normalise(x, [u.speaker for u in utts])
    out = train_test(z[:half], utts[:half], z[half:], utts[half:], LABELS, c=1.0)
    assert out["ua"] > 0.9 and np.array(out["confusion"]).shape == (3, 3)


def test_feature_cache_roundtrip(tmp_path: Path) -> None:
    """Feature vectors persist across cache instances, keyed by path, mtime and size."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")
    cache = FeatureCache(tmp_path / "f.npz")
    cache.put(FeatureCache.key(audio), np.arange(3, dtype=np.float32))
    cache.save()
    again = FeatureCache(tmp_path / "f.npz")
    np.testing.assert_array_equal(again.get(FeatureCache.key(audio)), [0, 1, 2])
    audio.write_bytes(b"xy")
    assert again.get(FeatureCache.key(audio)) is None
