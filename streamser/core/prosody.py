"""Pitch and energy of speech, block by block (sans-I/O: numpy in, numpy out).

The prosody cues people use to judge emotion — how high the voice is and how loud — computed on
16 kHz mono audio in blocks of any size:

- pitch (fundamental frequency, Hz) with YIN (de Cheveigné & Kawahara 2002): the cumulative mean
  normalised difference function, its first dip under a threshold inside 60-400 Hz, refined by
  parabolic interpolation; ``NaN`` where the frame is unvoiced or silent;
- energy as the RMS level of the same 25 ms integration window, in dBFS (a full-scale sine reads
  about -3 dBFS).

:class:`ProsodyTracker` buffers internally, so the same audio fed in 256- or 4096-sample blocks
gives the same values. It imports no I/O or GUI module; it is not thread-safe (one caller, e.g.
the Qt main thread of the dashboard, owns one tracker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streamser.core.frames import SAMPLE_RATE

__all__ = ["ProsodyConfig", "ProsodyFrames", "ProsodyTracker", "energy_dbfs", "yin_pitch"]

_EPS = 1e-12


@dataclass(frozen=True)
class ProsodyConfig:
    """Analysis settings. Rates in Hz, ``hop`` and ``window`` in samples at ``sample_rate``."""

    sample_rate: int = SAMPLE_RATE
    fmin_hz: float = 60.0
    fmax_hz: float = 400.0
    hop: int = 320
    """Samples between analysis frames (20 ms: 50 values per second)."""
    window: int = 400
    """YIN integration window and energy window (25 ms)."""
    threshold: float = 0.2
    """YIN threshold on the normalised difference; lower is stricter about voicing."""
    silence_dbfs: float = -60.0
    """Frames quieter than this have no pitch."""

    def __post_init__(self) -> None:
        if not 0 < self.fmin_hz < self.fmax_hz < self.sample_rate / 2:
            raise ValueError(
                f"pitch range {self.fmin_hz}-{self.fmax_hz} Hz is invalid at "
                f"{self.sample_rate} Hz; need 0 < fmin < fmax < {self.sample_rate / 2}"
            )
        if self.hop < 1 or self.window < 2:
            raise ValueError(f"hop ({self.hop}) must be >= 1 and window ({self.window}) >= 2")

    @property
    def tau_min(self) -> int:
        """Shortest period searched, samples."""
        return max(2, math.floor(self.sample_rate / self.fmax_hz))

    @property
    def tau_max(self) -> int:
        """Longest period searched, samples."""
        return math.ceil(self.sample_rate / self.fmin_hz)

    @property
    def frame_length(self) -> int:
        """Samples one analysis frame needs: the window plus the longest lag."""
        return self.window + self.tau_max + 1


@dataclass(frozen=True, eq=False)
class ProsodyFrames:
    """Values for consecutive analysis frames; all three arrays have the same length.

    ``times_s`` is the centre of each integration window in audio-clock seconds (from sample
    counts); ``f0_hz`` is NaN when unvoiced; ``energy_dbfs`` is the window's RMS level.
    """

    times_s: np.ndarray
    f0_hz: np.ndarray
    energy_dbfs: np.ndarray

    def __len__(self) -> int:
        return len(self.times_s)


def energy_dbfs(frames: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of each row of ``frames`` (``[n, samples]``)."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=-1)
    return np.asarray(10.0 * np.log10(power + _EPS))


def yin_pitch(frames: np.ndarray, config: ProsodyConfig) -> np.ndarray:
    """YIN fundamental frequency (Hz) of each row of ``frames``; NaN where unvoiced.

    ``frames`` is ``[n, config.frame_length]``; the difference function is computed for lags
    0..tau_max over the first ``config.window`` samples, with one batched FFT.
    """
    frames = np.asarray(frames, dtype=np.float64)
    n, length = frames.shape
    if length < config.frame_length:
        raise ValueError(f"frames have {length} samples; YIN needs {config.frame_length}")
    out = np.full(n, np.nan)
    if n == 0:
        return out
    w, tau_max = config.window, config.tau_max
    n_fft = 1 << (length + w - 1).bit_length()
    spec = np.fft.rfft(frames, n_fft, axis=1)
    head = np.fft.rfft(frames[:, :w], n_fft, axis=1)
    # corr[tau] = sum_{j<w} x[j] * x[j + tau]
    corr = np.fft.irfft(spec * np.conj(head), n_fft, axis=1)[:, : tau_max + 1]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(frames * frames, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy_tau = cs[:, taus + w] - cs[:, taus]
    diff = cs[:, w : w + 1] + energy_tau - 2.0 * corr
    diff = np.maximum(diff, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(running, _EPS)

    lo = config.tau_min
    below = cmnd[:, lo : tau_max + 1] < config.threshold
    has_dip = below.any(axis=1)
    first = np.argmax(below, axis=1) + lo
    for row in np.flatnonzero(has_dip):
        tau = int(first[row])
        curve = cmnd[row]
        while tau + 1 <= tau_max and curve[tau + 1] < curve[tau]:
            tau += 1
        shift = 0.0
        if lo < tau < tau_max:
            a, b, c = curve[tau - 1], curve[tau], curve[tau + 1]
            denom = a - 2.0 * b + c
            if denom > 0:
                shift = 0.5 * (a - c) / denom
        period = tau + shift
        f0 = config.sample_rate / period
        if config.fmin_hz * 0.95 <= f0 <= config.fmax_hz * 1.05:
            out[row] = f0
    return out


class ProsodyTracker:
    """Streaming pitch + energy: :meth:`push` audio of any block size, get every finished frame.

    Frames start every ``config.hop`` samples from the first sample pushed; frame ``k`` covers
    samples ``[k*hop, k*hop + frame_length)``. Not thread-safe: one owner calls it.
    """

    def __init__(self, config: ProsodyConfig | None = None) -> None:
        self.config = config or ProsodyConfig()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0
        """Stream index of ``_pending[0]``."""
        self._next_frame = 0
        """Stream index where the next analysis frame starts."""

    def reset(self) -> None:
        """Forget all audio; the next sample pushed is sample 0 of a new stream."""
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0
        self._next_frame = 0

    def push(self, samples: np.ndarray) -> ProsodyFrames:
        """Append 16 kHz mono samples; return the frames that became complete (maybe none)."""
        cfg = self.config
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, samples])
        offset = self._next_frame - self._pending_start
        usable = len(self._pending) - offset
        count = 0 if usable < cfg.frame_length else (usable - cfg.frame_length) // cfg.hop + 1
        if count == 0:
            return _empty()
        region = self._pending[offset : offset + (count - 1) * cfg.hop + cfg.frame_length]
        frames = sliding_window_view(region, cfg.frame_length)[:: cfg.hop]
        starts = self._next_frame + cfg.hop * np.arange(count)
        times = (starts + cfg.window / 2.0) / cfg.sample_rate
        energy = energy_dbfs(frames[:, : cfg.window])
        f0 = yin_pitch(frames, cfg)
        f0[energy < cfg.silence_dbfs] = np.nan
        self._next_frame += count * cfg.hop
        keep_from = self._next_frame - self._pending_start
        self._pending = self._pending[keep_from:].copy()
        self._pending_start = self._next_frame
        return ProsodyFrames(times, f0, energy)


def _empty() -> ProsodyFrames:
    nothing = np.zeros(0, dtype=np.float64)
    return ProsodyFrames(nothing, nothing, nothing)
