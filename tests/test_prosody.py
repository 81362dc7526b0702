"""Pitch and energy tracking (streamser.core.prosody), sans-I/O."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.prosody import ProsodyConfig, ProsodyTracker

SR = 16_000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5, harmonics: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    wave = wave / np.max(np.abs(wave)) * amp
    return wave.astype(np.float32)


@pytest.mark.parametrize("freq", [80.0, 150.0, 220.0, 380.0])
def test_pitch_of_a_sine(freq: float) -> None:
    """A pure tone reads at its frequency within 1 %."""
    out = ProsodyTracker().push(tone(freq))
    assert len(out) > 40
    assert np.all(np.isfinite(out.f0_hz))
    assert np.median(np.abs(out.f0_hz - freq)) < 0.01 * freq


def test_pitch_of_a_harmonic_voice_like_tone() -> None:
    """A tone rich in harmonics reads at its fundamental, not an octave off."""
    out = ProsodyTracker().push(tone(130.0, harmonics=8))
    assert np.nanmedian(np.abs(out.f0_hz - 130.0)) < 2.0
    assert np.mean(np.isfinite(out.f0_hz)) > 0.95


def test_silence_and_noise_are_unvoiced() -> None:
    """Silence has no pitch and a very low level; white noise is mostly unvoiced."""
    tracker = ProsodyTracker()
    quiet = tracker.push(np.zeros(SR, dtype=np.float32))
    assert np.all(np.isnan(quiet.f0_hz))
    assert np.all(quiet.energy_dbfs < -100)
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    noisy = ProsodyTracker().push(noise)
    assert np.mean(np.isnan(noisy.f0_hz)) > 0.8


def test_energy_of_a_sine_in_dbfs() -> None:
    """A 0.5-amplitude sine has an RMS of 0.5/sqrt(2): -9.03 dBFS."""
    out = ProsodyTracker().push(tone(200.0, amp=0.5))
    assert np.allclose(out.energy_dbfs, 20 * np.log10(0.5 / np.sqrt(2)), atol=0.1)


def test_block_size_invariance() -> None:
    """The same audio in 256- or 4096-sample blocks gives identical frames and times."""
    rng = np.random.default_rng(1)
    audio = np.concatenate([tone(140.0, 0.7), rng.normal(0, 0.05, 5000).astype(np.float32)])

    def run(block: int) -> list[np.ndarray]:
        tracker = ProsodyTracker()
        parts = [tracker.push(audio[i : i + block]) for i in range(0, len(audio), block)]
        keys = ("times_s", "f0_hz", "energy_dbfs")
        return [np.concatenate([getattr(part, key) for part in parts]) for key in keys]

    small, large = run(256), run(4096)
    for a, b in zip(small, large, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, equal_nan=True)
    cfg = ProsodyConfig()
    assert len(small[0]) == (len(audio) - cfg.frame_length) // cfg.hop + 1
    assert small[0][0] == pytest.approx(cfg.window / 2 / SR)
    assert np.allclose(np.diff(small[0]), cfg.hop / SR)


def test_reset_starts_a_new_stream() -> None:
    """After reset() times restart at zero."""
    tracker = ProsodyTracker()
    tracker.push(tone(150.0, 0.5))
    tracker.reset()
    out = tracker.push(tone(150.0, 0.5))
    assert out.times_s[0] == pytest.approx(ProsodyConfig().window / 2 / SR)


def test_bad_config_is_refused() -> None:
    """A pitch range above Nyquist is refused with the numbers in the message."""
    with pytest.raises(ValueError, match="9000"):
        ProsodyConfig(fmax_hz=9000.0)
