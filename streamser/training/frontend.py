"""Log-mel front end that lives inside the exported ONNX graph (training and serving share it).

In the exported graph the STFT is a ``Conv1d`` whose fixed kernels are the windowed DFT basis
(cos and sin), which exports to plain ONNX ``Conv`` and runs faster than the ONNX STFT op
(ENV-NOTES); in torch (training) it is ``torch.stft``, the same transform, ~5x cheaper. The
output is level-invariant by construction:

1. ``log`` of the mel power: a gain ``g`` adds the constant ``2*ln(g)`` to every bin;
2. a floor *relative to the window's own maximum* (``top_db`` below it), so digital silence and
   zero padding land at the same place whatever the gain;
3. per-window standardisation (subtract the mean, divide by the standard deviation over all
   mel bins and frames), which removes that constant exactly.

So the same clip at -35 and -15 dBFS gives the same features up to float rounding, and the model
cannot read loudness as emotion. Spectral shape and dynamics inside the window are kept.

Units: waveforms are float32 samples at :data:`SAMPLE_RATE` Hz in [-1, 1]; ``n_fft``,
``win_length`` and ``hop_length`` are in samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["SAMPLE_RATE", "FrontEndConfig", "LogMel", "dft_kernels", "mel_filterbank"]

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class FrontEndConfig:
    """Log-mel parameters. Lengths in samples at 16 kHz; frequencies in Hz; ``top_db`` in dB."""

    n_fft: int = 512
    win_length: int = 512
    hop_length: int = 256
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 8000.0
    top_db: float = 80.0
    #: ``"global"``: standardise over all bins and frames (1.x models). ``"band"``: also
    #: subtract each mel band's mean over the window's speech frames (frames within
    #: ``speech_db`` of the loudest), so a fixed spectral tilt or microphone colour becomes a
    #: per-band constant and disappears.
    norm: str = "global"
    speech_db: float = 30.0
    #: With ``norm="band"``: the fraction of each band's speech mean that is *kept* (0 removes
    #: it all). Between 0 and 1 a fixed tilt is attenuated rather than erased, leaving the
    #: network part of the long-term spectral shape that vocal effort changes with arousal.
    band_keep: float = 0.0
    #: Noise-floor subtraction before the log (0 = off): each mel band's noise floor is the
    #: minimum over the window of its power smoothed over ``denoise_frames`` frames (minimum
    #: statistics), and ``denoise`` times that floor is subtracted, never taking a bin more
    #: than ``denoise_floor_db`` below its own power (spectral subtraction with a gain floor).
    #: Steady noise in the pauses and under quiet speech then looks less like a feature of
    #: the voice; a window without pauses loses only its quietest frames' detail. Gain-
    #: invariant like the rest (the floor scales with the power).
    denoise: float = 0.0
    denoise_floor_db: float = 15.0
    denoise_frames: int = 5

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples (no centre padding)."""
        return 1 + (n_samples - self.n_fft) // self.hop_length


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontEndConfig, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular HTK-scale mel filters, shape ``[n_fft // 2 + 1, n_mels]``, area-normalised."""
    n_bins = cfg.n_fft // 2 + 1
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    edges = _mel_to_hz(
        np.linspace(
            _hz_to_mel(np.array(cfg.f_min)), _hz_to_mel(np.array(cfg.f_max)), cfg.n_mels + 2
        )
    )
    fb = np.zeros((n_bins, cfg.n_mels), dtype=np.float64)
    for m in range(cfg.n_mels):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / max(centre - lo, 1e-9)
        falling = (hi - freqs) / max(hi - centre, 1e-9)
        fb[:, m] = np.clip(np.minimum(rising, falling), 0.0, None)
        fb[:, m] *= 2.0 / max(hi - lo, 1e-9)  # Slaney-style area normalisation
    return fb.astype(np.float32)


def dft_kernels(window: np.ndarray, bins: np.ndarray, n_fft: int) -> torch.Tensor:
    """``Conv1d`` weights ``[2 * len(bins), 1, len(window)]``: the real then imaginary parts of
    DFT ``bins`` (of an ``n_fft``-point transform) of a frame weighted by ``window``.

    A window shorter than ``n_fft`` is the frame zero-padded to ``n_fft`` at its end.
    """
    t = np.arange(len(window))
    angle = 2.0 * math.pi * np.asarray(bins)[:, None] * t / n_fft
    kernels = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window], axis=0)
    return torch.from_numpy(kernels.astype(np.float32)).unsqueeze(1)


class LogMel(nn.Module):
    """``[batch, samples]`` waveform -> ``[batch, 1, n_mels, frames]`` standardised log-mel.

    Inputs shorter than ``n_fft`` samples are invalid (the caller pads windows to the model's
    ``window_s``). Works on any batch size and length, and exports to ONNX with both dynamic.
    """

    dft: torch.Tensor  # fixed DFT kernels (registered buffer)
    melfb: torch.Tensor  # mel filterbank (registered buffer)
    window: torch.Tensor  # analysis window, n_fft long (registered buffer)

    def __init__(self, cfg: FrontEndConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FrontEndConfig()
        c = self.cfg
        n_bins = c.n_fft // 2 + 1
        window = np.zeros(c.n_fft, dtype=np.float64)
        offset = (c.n_fft - c.win_length) // 2
        window[offset : offset + c.win_length] = np.hanning(c.win_length + 1)[:-1]
        self.register_buffer("dft", dft_kernels(window, np.arange(n_bins), c.n_fft),
                             persistent=False)
        self.register_buffer("window", torch.from_numpy(window).float(), persistent=False)
        melfb = torch.from_numpy(mel_filterbank(c).T.copy())
        self.register_buffer("melfb", melfb, persistent=False)
        self.n_bins = n_bins
        self.floor_nat = c.top_db / 10.0 * math.log(10.0)  # top_db expressed in ln(power)
        self.speech_nat = c.speech_db / 10.0 * math.log(10.0)
        if c.norm not in ("global", "band"):
            raise ValueError(f"FrontEndConfig.norm must be 'global' or 'band', got {c.norm!r}")
        if not 0.0 <= c.band_keep < 1.0:
            raise ValueError(f"FrontEndConfig.band_keep must be in [0, 1), got {c.band_keep!r}")
        if c.denoise < 0.0 or c.denoise_frames < 1:
            raise ValueError("FrontEndConfig.denoise must be >= 0 and denoise_frames >= 1, got "
                             f"{c.denoise!r} and {c.denoise_frames!r}")
        self.keep_gain = 10.0 ** (-c.denoise_floor_db / 10.0)

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power ``[batch, n_mels, frames]``, noise floor subtracted when ``denoise`` is
        set (no log, no normalisation)."""
        power = torch.matmul(self.melfb, self.power_spectrum(waveform))
        return self._subtract_noise_floor(power) if self.cfg.denoise > 0 else power

    def power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """``|STFT|^2`` ``[batch, n_fft // 2 + 1, frames]`` of ``waveform`` ``[batch, samples]``.

        Exported to ONNX it is the DFT-kernel ``Conv1d`` (one plain ``Conv``); in torch it is
        an FFT (``torch.stft``), about 5x faster on this CPU for a training batch. Both are the
        same windowed DFT of the same frames (no centring: frame ``i`` starts at sample
        ``i * hop_length``); they differ by float rounding (~1e-6 relative).
        """
        c = self.cfg
        if torch.onnx.is_in_onnx_export():
            spec = nn.functional.conv1d(waveform.unsqueeze(1), self.dft, stride=c.hop_length)
            real, imag = spec[:, : self.n_bins], spec[:, self.n_bins :]
            return real * real + imag * imag
        stft = torch.stft(waveform, c.n_fft, hop_length=c.hop_length, win_length=c.n_fft,
                          window=self.window, center=False, return_complex=True)
        return stft.real.square() + stft.imag.square()

    def _subtract_noise_floor(self, power: torch.Tensor) -> torch.Tensor:
        """Spectral subtraction of each band's minimum-statistics floor (see
        :class:`FrontEndConfig`); a window needs at least ``denoise_frames`` frames."""
        smooth = nn.functional.avg_pool1d(power, self.cfg.denoise_frames, stride=1)
        floor = smooth.amin(dim=2, keepdim=True)
        return torch.maximum(power - self.cfg.denoise * floor, power * self.keep_gain)

    def _band_mean(self, power: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
        """Per-band mean of ``logmel`` over speech frames (frame energy within ``speech_db`` of
        the window's loudest): ``[batch, n_mels, 1]``, natural-log power units."""
        frame_db = torch.log(power.sum(dim=1, keepdim=True) + 1e-12)
        speech = (frame_db >= frame_db.amax(dim=2, keepdim=True) - self.speech_nat).float()
        return (logmel * speech).sum(dim=2, keepdim=True) / speech.sum(
            dim=2, keepdim=True
        ).clamp_min(1.0)

    def band_mean(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[batch, n_mels]``: each window's per-band log-mel mean over its speech frames.

        Averaged over many windows of one voice (an enrolment, a session) it is that voice's
        *reference*: its long-term spectrum through its microphone and room, which
        :meth:`forward` can subtract instead of the window's own mean.
        """
        power = self.power_mel(waveform)
        return self._band_mean(power, torch.log(power + 1e-12)).squeeze(2)

    def forward(
        self,
        waveform: torch.Tensor,
        reference: torch.Tensor | None = None,
        ref_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features of ``waveform`` ``[batch, samples]`` (see :meth:`features`)."""
        return self.features(waveform, reference, ref_weight)[0]

    def features(
        self,
        waveform: torch.Tensor,
        reference: torch.Tensor | None = None,
        ref_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [batch, 1, n_mels, frames], own band mean [batch, n_mels])``.

        With ``norm="band"``, ``reference`` (``[batch or 1, n_mels]``, from :meth:`band_mean`)
        and ``ref_weight`` (``[batch or 1]`` in [0, 1]) blend what is subtracted per band:
        ``w * reference + (1 - w) * the window's own mean``. At ``w = 1`` the voice's and the
        chain's fixed colour is removed while the window's departure from that voice's usual
        spectrum (vocal effort, tension) is kept; at ``w = 0`` (or with no reference) it is
        the plain band front end. A level offset between reference and window cancels in the
        final standardisation.
        """
        power = self.power_mel(waveform)
        logmel = torch.log(power + 1e-12)
        own = self._band_mean(power, logmel)
        if self.cfg.norm == "band":
            # Subtracted before the floor, so a fixed tilt is removed from pauses as well.
            band_mean = own
            if reference is not None and ref_weight is not None:
                w = ref_weight.reshape(-1, 1, 1)
                band_mean = w * reference.unsqueeze(2) + (1.0 - w) * own
            logmel = logmel - (1.0 - self.cfg.band_keep) * band_mean
        peak = torch.amax(logmel, dim=(1, 2), keepdim=True)
        logmel = torch.maximum(logmel, peak - self.floor_nat)
        mean = logmel.mean(dim=(1, 2), keepdim=True)
        centred = logmel - mean
        std = torch.sqrt((centred * centred).mean(dim=(1, 2), keepdim=True) + 1e-5)
        return (centred / std).unsqueeze(1), own.squeeze(2)
