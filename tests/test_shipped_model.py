"""The shipped ONNX model in models/ meets the contract and recognises unseen real voices.

The real-clip checks use RAVDESS actors 19 and 20, whom the shipped model never heard in training
(they are the demo voices); they are skipped when ``../shared/corpora`` (or
``$STREAMSER_CORPORA``) is absent, as in a user's clone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from streamser.core.labels import CANONICAL_LABELS
from streamser.model import ModelRunner

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted((REPO / "models").glob("*.onnx"))
EMOTION = {f"{i:02d}": label for i, label in enumerate(CANONICAL_LABELS, start=1)}


def _corpora() -> Path | None:
    env = os.environ.get("STREAMSER_CORPORA")
    root = Path(env) if env else REPO.parent / "shared" / "corpora"
    return root if (root / "ravdess").is_dir() else None


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    assert len(MODELS) == 1, f"models/ must hold exactly one .onnx file, found {MODELS}"
    return ModelRunner.load(MODELS[0], threads=1, use_gpu=False)


def _read(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == 16_000, f"{path} is {rate} Hz; the corpora copies are 16 kHz"
    return audio.mean(axis=1)


def _windows(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Engine windows: ends at k * hop, left zero padding, the loudest ones kept (voiced)."""
    padded = np.concatenate([np.zeros(window, np.float32), audio])
    ends = np.arange(hop, len(audio) + 1, hop)
    wins = np.stack([padded[e : e + window] for e in ends])
    rms = np.sqrt((wins.astype(np.float64) ** 2).mean(axis=1))
    return wins[rms >= 0.25 * rms.max()]


def test_single_small_model_with_contract(runner: ModelRunner) -> None:
    """One .onnx of at most 10 MB whose metadata and graph follow the contract."""
    assert MODELS[0].stat().st_size <= 10 * 1024 * 1024
    spec = runner.spec
    assert spec.sample_rate == 16_000
    assert set(spec.labels) <= set(CANONICAL_LABELS)
    assert spec.window_s == 2.0 and 0 < spec.hop_s <= spec.window_s
    for key in ("training_data", "metrics", "license"):
        assert spec.extra.get(key), f"metadata lacks {key}"
    json.loads(spec.extra["metrics"])


def test_dynamic_batch_and_length_and_outputs(runner: ModelRunner) -> None:
    """Any batch and length >= one window gives softmax probs and unit embeddings."""
    rng = np.random.default_rng(0)
    for batch, samples in ((1, 32_000), (4, 32_000), (2, 40_000)):
        x = (0.05 * rng.standard_normal((batch, samples))).astype(np.float32)
        out = runner.predict(x)
        assert out.probs.shape == (batch, len(runner.spec.labels))
        assert np.allclose(out.probs.sum(axis=1), 1.0, atol=1e-4)
        assert out.embedding is not None
        assert np.allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-4)


@pytest.mark.corpora
def test_unseen_actors_above_chance_level_invariant_and_clip_robust(runner: ModelRunner) -> None:
    """Actors 19 and 20 (never trained on) are classified above chance; -35 vs -15 dBFS and
    hard clipping leave the prediction (nearly) unchanged."""
    root = _corpora()
    if root is None:
        pytest.skip("corpora folder absent (set STREAMSER_CORPORA)")
    spec = runner.spec
    files = sorted((root / "ravdess").glob("Actor_19/*")) + sorted(
        (root / "ravdess").glob("Actor_20/*"))
    files = [f for f in files if f.stem.split("-")[2] in EMOTION][::3]  # 40 clips, all classes
    assert len(files) >= 30
    correct, shifts, clip_agree = [], [], []
    for f in files:
        audio = _read(f)
        label = EMOTION[f.stem.split("-")[2]]
        wins = _windows(audio, spec.window_samples, spec.hop_samples)
        rms = np.sqrt(np.mean(wins.astype(np.float64) ** 2))
        quiet = runner.predict((wins * (10 ** (-35 / 20) / rms)).astype(np.float32)).probs
        loud = runner.predict((wins * (10 ** (-15 / 20) / rms)).astype(np.float32)).probs
        clipped = np.clip(wins * (0.9 / np.abs(wins).max()) * 4.0, -1, 1).astype(np.float32)
        hot = runner.predict(clipped).probs
        p = quiet.mean(axis=0)
        correct.append(spec.labels[int(p.argmax())] == label)
        shifts.append(np.abs(p - loud.mean(axis=0)).max())
        clip_agree.append(int(p.argmax()) == int(hot.mean(axis=0).argmax()))
    accuracy = float(np.mean(correct))
    chance = 1.0 / len(spec.labels)
    assert accuracy >= 2 * chance, f"accuracy {accuracy:.2f} on unseen actors (chance {chance:.2f})"
    assert max(shifts) < 0.02, f"a 20 dB level change moved a probability by {max(shifts):.3f}"
    assert np.mean(clip_agree) >= 0.6, f"clipping changed the top label on {clip_agree}"
