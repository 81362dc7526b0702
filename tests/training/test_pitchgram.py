"""The in-graph pitch view: the ridge sits at the voice's F0 whatever the level or the band."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamser.training.pitchgram import PitchConfig, Pitchgram  # noqa: E402

SR = 16_000


def _voice(f0: float, seconds: float = 2.0, lowest_hz: float = 0.0) -> np.ndarray:
    """A harmonic tone at ``f0`` Hz (harmonics falling 6 dB per octave up to 4 kHz), without
    the harmonics below ``lowest_hz``."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f0 * h * t) / h
               for h in range(1, int(4000 / f0)) if f0 * h >= lowest_hz)
    return (0.1 * wave).astype(np.float32)


def _ridge_hz(pg: Pitchgram, wave: np.ndarray) -> float:
    rows = pg(torch.from_numpy(wave)[None])[0, 0].mean(dim=1).numpy()
    return float(pg.cfg.f0_axis()[rows.argmax()])


@pytest.mark.parametrize("f0", [95.0, 160.0, 310.0])
def test_ridge_sits_at_the_f0_at_any_level_and_without_the_fundamental(f0):
    pg = Pitchgram()
    step = 2 ** (1 / 16)  # one row of the F0 axis
    assert f0 / step <= _ridge_hz(pg, _voice(f0)) <= f0 * step
    # A telephone band removes the fundamental (and more): the period of what remains is the same.
    assert f0 / step <= _ridge_hz(pg, _voice(f0, lowest_hz=300.0)) <= f0 * step
    loud = pg(torch.from_numpy(_voice(f0))[None])
    quiet = pg(torch.from_numpy(_voice(f0) * 0.003)[None])  # 50 dB down
    assert torch.allclose(loud, quiet, atol=0.005)


def test_shapes_silence_and_energy_channel():
    pg = Pitchgram()
    x = np.zeros((2, 32_000), dtype=np.float32)
    x[0] = _voice(200.0)
    x[0, 16_000:] = 0.0  # a voiced second, then digital silence
    out = pg(torch.from_numpy(x))
    frames = PitchConfig().n_frames(32_000)
    assert out.shape == (2, 2, 48, frames)
    assert out[1, 0].abs().max() < 1e-3  # digital silence has no periodicity
    energy = out[0, 1, 0]
    assert energy[:40].min() > 0.9 and energy[-40:].max() == 0.0
    assert torch.equal(out[0, 1, 0], out[0, 1, 47])  # repeated on every F0 row
    noise = np.random.default_rng(0).standard_normal((1, 32_000)).astype(np.float32)
    assert pg(torch.from_numpy(0.1 * noise))[0, 0].mean(dim=1).max() < 0.1  # no ridge


def test_a_dft_too_short_for_the_longest_lag_is_refused():
    with pytest.raises(ValueError, match="wrap; raise n_fft"):
        Pitchgram(PitchConfig(n_fft=512))
