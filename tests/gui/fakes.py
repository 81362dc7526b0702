"""Test doubles for the dashboard: a tiny deterministic model runner and synthetic audio.

The runner stands in for :class:`streamser.model.ModelRunner` (the engine only uses ``spec``
and ``predict``), so the tests drive the *real* engine and sources without an ONNX file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamser.core.contract import ModelSpec, Prediction
from streamser.core.labels import CANONICAL_LABELS

SR = 16_000


@dataclass
class FakeRunner:
    """Probabilities from a fixed random projection of loudness and brightness features."""

    labels: tuple[str, ...] = CANONICAL_LABELS
    window_s: float = 1.0
    hop_s: float = 0.25
    spec: ModelSpec = field(init=False)
    calls: int = 0

    def __post_init__(self) -> None:
        self.spec = ModelSpec(labels=self.labels, sample_rate=SR, window_s=self.window_s,
                              hop_s=self.hop_s, model_version="fake-test-1")
        rng = np.random.default_rng(7)
        self._w = rng.normal(0, 1.0, (len(self.labels), 9))

    def predict(self, waveforms: np.ndarray) -> Prediction:
        """Called on the inference thread: [batch, samples] -> softmax [batch, n_labels]."""
        self.calls += 1
        x = np.asarray(waveforms, dtype=np.float64)
        parts = np.array_split(x, 8, axis=1)
        loud = np.stack([np.log10(np.mean(p * p, axis=1) + 1e-8) for p in parts], axis=1)
        zcr = np.mean(np.abs(np.diff(np.sign(x), axis=1)), axis=1, keepdims=True) * 10
        feats = np.concatenate([(loud + 4.0) / 2.0, zcr], axis=1)
        logits = feats @ self._w.T * 1.5
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return Prediction(probs.astype(np.float32), None)


def speechlike(seconds: float, seed: int = 0, clip: bool = False,
               silence: tuple[float, float] | None = None) -> np.ndarray:
    """Syllable-like harmonic bursts (gliding pitch 110-260 Hz) separated by pauses.

    ``silence`` (start, end) in seconds is kept free of syllables (an unvoiced stretch).
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR), dtype=np.float64)
    pos = int(0.3 * SR)
    while pos < len(out):
        dur = int(rng.uniform(0.15, 0.4) * SR)
        end = min(len(out), pos + dur)
        t = np.arange(end - pos) / SR
        f0 = rng.uniform(110, 260) * (1 + 0.3 * t / max(t[-1], 1e-3) * rng.choice([-1, 1]))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 10))
        env = np.sin(np.pi * np.arange(end - pos) / (end - pos)) ** 0.5
        out[pos:end] = 0.35 * rng.uniform(0.3, 1.0) * env * wave / 2.5
        pos = end + int(rng.choice([0.05, 0.1, 0.2, 1.2], p=[0.4, 0.3, 0.2, 0.1]) * SR)
    if silence is not None:
        out[int(silence[0] * SR): int(silence[1] * SR)] = 0.0
    out += rng.normal(0, 0.002, len(out))
    if clip:
        out[int(0.5 * SR): int(0.5 * SR) + 40] = 1.0
    return np.clip(out, -1, 1).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Write 16 kHz mono float samples as 16-bit WAV."""
    import soundfile as sf

    sf.write(str(path), samples, SR, subtype="PCM_16")
    return path
