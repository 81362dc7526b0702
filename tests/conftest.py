"""Shared fixtures: a tiny contract-honouring model, synthetic speech-like audio, corpora path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the tiny fixture model (window 1.0 s, hop 0.25 s, 4 labels)."""
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def demo_speech() -> np.ndarray:
    """The bundled demo's real speech (RAVDESS actors 19-20), float32 at 16 kHz."""
    import soundfile as sf

    audio, rate = sf.read(REPO / "assets" / "demo.flac", dtype="float32")
    assert rate == 16_000
    return audio


@pytest.fixture(scope="session")
def tiny_runner(tiny_model_path: Path):  # type: ignore[no-untyped-def]
    from streamser.model import ModelRunner

    return ModelRunner.load(tiny_model_path)


def speechlike(seconds: float, seed: int = 0, rate: int = 16_000) -> np.ndarray:
    """Bursts of harmonic 'syllables' (130-220 Hz voice, 4 Hz syllable rate) with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    envelope *= (np.sin(2 * np.pi * 0.25 * t) > -0.5)
    noise = rng.normal(0, 0.002, len(t))
    return (0.2 * voice * envelope + noise).astype(np.float32)


@pytest.fixture
def speech() -> np.ndarray:
    """Six seconds of synthetic speech-like audio at 16 kHz."""
    return speechlike(6.0)


def corpora_root() -> Path | None:
    """The corpora folder (``$STREAMSER_CORPORA`` or ``../shared/corpora``), or None if absent."""
    root = Path(os.environ.get("STREAMSER_CORPORA", REPO.parent / "shared" / "corpora"))
    return root if (root / "ravdess").is_dir() else None
