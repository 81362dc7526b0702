"""Training-time augmentation: waveform (speed, gain, clipping, noise) and SpecAugment.

Waveform augmentations act on a batch ``[batch, samples]`` of 16 kHz crops in [-1, 1]; SpecAugment
acts on the standardised log-mel ``[batch, 1, n_mels, frames]`` (masked cells are set to 0, the
per-window mean). Every random draw comes from the ``torch.Generator`` passed in, so runs are
reproducible from the seed.

Speed perturbation (tempo and pitch together, as in Kaldi's 3-way speed perturbation but with a
continuous factor) is applied when a crop is cut, see :func:`speed_crop`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "AugmentConfig",
    "add_noise",
    "augment_waveforms",
    "pink_noise",
    "spec_augment",
    "speed_crop",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation switches and ranges. Levels in dB, SNR in dB, speed as a rate factor."""

    enabled: bool = True
    speed: tuple[float, float] = (0.9, 1.1)
    p_speed: float = 0.5
    gain_db: tuple[float, float] = (-45.0, -3.0)  # target peak level (dBFS) of the crop
    p_clip: float = 0.1
    clip_gain_db: tuple[float, float] = (3.0, 15.0)  # over-drive before hard clipping
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    spec_freq_masks: int = 2
    spec_freq_width: int = 8
    spec_time_masks: int = 2
    spec_time_width: int = 12

    @staticmethod
    def off() -> AugmentConfig:
        """No augmentation at all (ablation)."""
        return AugmentConfig(enabled=False)


def speed_crop(
    audio: np.ndarray, n_out: int, rng: np.random.Generator, factor: float = 1.0
) -> np.ndarray:
    """A random crop of ``n_out`` samples, resampled by ``factor`` (>1 = faster, higher pitch).

    Reads ``round(n_out * factor)`` source samples and linearly interpolates them to ``n_out``.
    A source shorter than that is placed at a random offset inside zeros.
    """
    n_src = max(2, round(n_out * factor))
    if len(audio) >= n_src:
        start = int(rng.integers(0, len(audio) - n_src + 1))
        seg = audio[start : start + n_src]
    else:
        seg = np.zeros(n_src, dtype=np.float32)
        off = int(rng.integers(0, n_src - len(audio) + 1))
        seg[off : off + len(audio)] = audio
    if n_src == n_out:
        return seg.astype(np.float32, copy=True)
    x_new = np.linspace(0.0, n_src - 1, n_out)
    return np.interp(x_new, np.arange(n_src), seg).astype(np.float32)


def _uniform(g: torch.Generator, lo: float, hi: float, n: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def pink_noise(n: int, length: int, g: torch.Generator) -> torch.Tensor:
    """``[n, length]`` unit-RMS 1/f noise, shaped in the frequency domain."""
    white = torch.randn(n, length, generator=g)
    spec = torch.fft.rfft(white, dim=1)
    f = torch.arange(spec.shape[1], dtype=torch.float32).clamp_min(1.0)
    pink = torch.fft.irfft(spec / f.sqrt(), n=length, dim=1)
    return pink / pink.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)


def add_noise(
    x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator, babble_pool: torch.Tensor | None
) -> torch.Tensor:
    """Add white, pink or babble noise to a random subset of rows at a random SNR.

    Babble is the sum of 3 other crops (``babble_pool``, ``[m, samples]``, other training
    utterances); without a pool, babble falls back to pink noise.
    """
    n, length = x.shape
    chosen = torch.rand(n, generator=g) < cfg.p_noise
    if not bool(chosen.any()):
        return x
    kind = torch.randint(0, 3, (n,), generator=g)
    noise = torch.randn(n, length, generator=g)
    pink = pink_noise(n, length, g)
    noise = torch.where((kind == 1).unsqueeze(1), pink, noise)
    if babble_pool is not None and len(babble_pool) >= 3:
        idx = torch.randint(0, len(babble_pool), (n, 3), generator=g)
        babble = babble_pool[idx].sum(dim=1)
        babble = babble / babble.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
        noise = torch.where((kind == 2).unsqueeze(1), babble, noise)
    else:
        noise = torch.where((kind == 2).unsqueeze(1), pink, noise)
    sig_rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
    snr = _uniform(g, *cfg.snr_db, n).unsqueeze(1)
    scaled = noise * sig_rms * torch.pow(10.0, -snr / 20.0)
    return torch.where(chosen.unsqueeze(1), x + scaled, x)


def augment_waveforms(
    x: torch.Tensor,
    cfg: AugmentConfig,
    g: torch.Generator,
    babble_pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise, then a random peak level, then (rarely) over-drive and hard clipping to [-1, 1]."""
    if not cfg.enabled:
        return x
    x = add_noise(x, cfg, g, babble_pool)
    n = x.shape[0]
    peak = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
    target = torch.pow(10.0, _uniform(g, *cfg.gain_db, n) / 20.0).unsqueeze(1)
    x = x * (target / peak)
    clip = (torch.rand(n, generator=g) < cfg.p_clip).unsqueeze(1)
    drive = torch.pow(10.0, _uniform(g, *cfg.clip_gain_db, n) / 20.0).unsqueeze(1)
    x = torch.where(clip, (x * drive / target).clamp(-1.0, 1.0), x)
    return x


def spec_augment(feats: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) frequency and time masks, set to 0, per example."""
    if not cfg.enabled:
        return feats
    b, _, n_mels, n_frames = feats.shape
    mask = torch.zeros(b, 1, n_mels, n_frames, dtype=torch.bool)
    mel_idx = torch.arange(n_mels).view(1, -1)
    frame_idx = torch.arange(n_frames).view(1, -1)
    for _ in range(cfg.spec_freq_masks):
        width = torch.randint(0, cfg.spec_freq_width + 1, (b, 1), generator=g)
        start = (torch.rand(b, 1, generator=g) * (n_mels - width)).long()
        m = (mel_idx >= start) & (mel_idx < start + width)
        mask |= m.view(b, 1, n_mels, 1)
    for _ in range(cfg.spec_time_masks):
        width = torch.randint(0, cfg.spec_time_width + 1, (b, 1), generator=g)
        start = (torch.rand(b, 1, generator=g) * (n_frames - width)).long()
        m = (frame_idx >= start) & (frame_idx < start + width)
        mask |= m.view(b, 1, 1, n_frames)
    return feats.masked_fill(mask, 0.0)
