"""Voice activity: silence and hiss are unvoiced, speech is voiced at any recording level."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import corpora_root, speechlike

from streamser.core.vad import FRAME_SAMPLES, VoiceActivity


def voiced(audio: np.ndarray, chunk: int = 1000) -> VoiceActivity:
    vad = VoiceActivity()
    for i in range(0, len(audio), chunk):
        vad.push(audio[i : i + chunk])
    return vad


@pytest.mark.parametrize("gain_db", [-30, -15, 0, 10])
def test_speech_is_voiced_at_any_level(gain_db: int) -> None:
    """Speech-like audio from about -45 to -5 dBFS is detected (automatic gain before the VAD)."""
    audio = speechlike(4.0) * 10 ** (gain_db / 20)
    assert voiced(audio).voiced_fraction(0, len(audio)) > 0.3


def test_silence_and_faint_hiss_are_unvoiced() -> None:
    """Digital silence and -70 dBFS noise are never speech."""
    hiss = np.random.default_rng(0).normal(0, 10 ** (-70 / 20), 48_000).astype(np.float32)
    assert voiced(np.zeros(48_000, np.float32)).voiced_fraction(0, 48_000) == 0.0
    assert voiced(hiss).voiced_fraction(0, 48_000) == 0.0


def test_decisions_do_not_depend_on_chunking() -> None:
    """Frames sit at fixed sample positions."""
    audio = speechlike(3.0, seed=3)
    a, b = voiced(audio, 256), voiced(audio, 4096)
    for start in range(0, len(audio) - 8000, 4000):
        assert a.voiced_fraction(start, start + 8000) == b.voiced_fraction(start, start + 8000)
    assert a.frames_decided == len(audio) // FRAME_SAMPLES


@pytest.mark.corpora
def test_ravdess_silent_lead_ins_are_unvoiced_and_speech_is_voiced() -> None:
    """On real clips (actors 19-20): the silent lead-in is unvoiced, the utterance is voiced."""
    root = corpora_root()
    if root is None:
        pytest.skip("corpora not available (set STREAMSER_CORPORA)")
    import soundfile as sf

    files = sorted((root / "ravdess").glob("Actor_19/*.flac"))[:12] + sorted(
        (root / "ravdess").glob("Actor_20/*.flac"))[:12]
    lead_in, speech = [], []
    for path in files:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16_000
        vad = voiced(audio)
        lead_in.append(vad.voiced_fraction(0, 4800))  # first 0.3 s
        speech.append(vad.voiced_fraction(16_000, 32_000))  # 1.0-2.0 s: inside the sentence
    assert np.mean(lead_in) < 0.15, lead_in
    assert np.mean(speech) > 0.6, speech
