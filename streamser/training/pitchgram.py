"""A prosodic view inside the ONNX graph: a periodicity map over log-F0 and time.

The log-mel front end (:mod:`streamser.training.frontend`) resolves a voice's harmonics poorly
(31 Hz bins, 32 ms frames) and its band normalisation removes the window's long-term spectral
shape, so pitch movement and voice quality — the prosodic cues of emotion — are faint in it.
:class:`Pitchgram` gives the network a second, explicit view:

- the normalised autocorrelation of each 40 ms frame, computed from its compressed magnitude
  spectrum below :attr:`PitchConfig.f_max` (a "generalised autocorrelation"), evaluated at
  :attr:`PitchConfig.n_lags` lags spaced evenly in log-F0 between ``f0_min`` and ``f0_max``.
  A voiced frame shows a ridge at its period (and its multiples), so a pitch change is a
  shift along the F0 axis and breathiness or tension change the ridge's height;
- the frame's low-band energy relative to the window's loudest frame (0 at ``floor_db`` below
  it or less, 1 at the peak), so the network can tell a pause from an unvoiced sound.

Both are level-invariant (a gain cancels in the normalisation and in the relative energy), and
a fixed spectral tilt or a telephone band moves the ridge's shape but not its place (the period
of the harmonics that remain is the same). Like the log-mel front end, the DFT is a ``Conv1d``
with fixed kernels, so the module exports to plain ONNX ops; it has no trainable weights.

Units: waveforms are float32 samples at 16 kHz; ``frame``, ``hop`` and ``n_fft`` in samples;
frequencies in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from streamser.training.frontend import SAMPLE_RATE, dft_kernels

__all__ = ["PitchConfig", "Pitchgram"]


@dataclass(frozen=True)
class PitchConfig:
    """Pitchgram parameters (samples at 16 kHz, Hz, dB)."""

    frame: int = 640
    """Analysis frame, 40 ms: at least two periods of the lowest F0."""
    hop: int = 256
    """Frame step, 16 ms (the log-mel front end's hop)."""
    n_fft: int = 1024
    """DFT length: at least ``frame`` plus the longest lag, so the autocorrelation does not wrap."""
    f_max: float = 1500.0
    """Harmonics above this are not used (they add little to the period and much noise)."""
    f0_min: float = 60.0
    f0_max: float = 480.0
    n_lags: int = 48
    """F0 axis: this many lags between ``f0_max`` and ``f0_min``, 16 per octave here."""
    compress: float = 1.0 / 3.0
    """Power spectrum exponent before the inverse transform (1 = the plain autocorrelation)."""
    floor_db: float = 60.0
    """Relative energy channel: frames this far below the loudest read 0."""

    def f0_axis(self) -> np.ndarray:
        """The F0 of each lag row, Hz, ascending."""
        return np.geomspace(self.f0_min, self.f0_max, self.n_lags)

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples (no padding)."""
        return 1 + (n_samples - self.frame) // self.hop


class Pitchgram(nn.Module):
    """``[batch, samples]`` waveform -> ``[batch, 2, n_lags, frames]``: periodicity, energy.

    Channel 0 is the normalised autocorrelation in [-1, 1] at each F0 row (0 for digital
    silence); channel 1 the frame's relative low-band energy in [0, 1], repeated on every row.
    Inputs shorter than ``frame`` samples are invalid.
    """

    dft: torch.Tensor  # fixed windowed DFT kernels, bins 1..K (registered buffer)
    acf: torch.Tensor  # cosine basis, [n_lags, K] (registered buffer)

    def __init__(self, cfg: PitchConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or PitchConfig()
        if c.n_fft < c.frame + SAMPLE_RATE / c.f0_min:
            raise ValueError(
                f"PitchConfig.n_fft {c.n_fft} is shorter than frame {c.frame} plus the longest "
                f"lag {SAMPLE_RATE / c.f0_min:.0f}: the autocorrelation would wrap; raise n_fft")
        k = np.arange(1, int(c.f_max * c.n_fft / SAMPLE_RATE) + 1)  # no DC bin
        self.register_buffer("dft", dft_kernels(np.hanning(c.frame + 1)[:-1], k, c.n_fft),
                             persistent=False)
        lags = SAMPLE_RATE / c.f0_axis()
        basis = np.cos(2.0 * math.pi * lags[:, None] * k[None, :] / c.n_fft)
        self.register_buffer("acf", torch.from_numpy(basis.astype(np.float32)), persistent=False)
        self.n_bins = len(k)
        self._eps = 1e-14
        self._eps_c = self._eps ** c.compress
        self._floor_nat = c.floor_db / 10.0 * math.log(10.0)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        spec = nn.functional.conv1d(waveform.unsqueeze(1), self.dft, stride=c.hop)
        real, imag = spec[:, : self.n_bins], spec[:, self.n_bins :]
        power = real * real + imag * imag  # [batch, K, frames]
        mag = torch.pow(power + self._eps, c.compress) - self._eps_c  # 0 for digital silence
        r = torch.matmul(self.acf, mag)  # [batch, n_lags, frames]
        nacf = r / (mag.sum(dim=1, keepdim=True) + 1e-6)
        energy = torch.log(power.sum(dim=1, keepdim=True) + 1e-12)  # [batch, 1, frames]
        peak = energy.amax(dim=2, keepdim=True)
        rel = torch.clamp((energy - peak) / self._floor_nat + 1.0, 0.0, 1.0)
        return torch.stack([nacf, rel.expand_as(nacf)], dim=1)
