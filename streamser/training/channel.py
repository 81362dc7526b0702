"""Recording-chain augmentation: what a microphone, a room, a line and a codec do to speech.

A model trained on two studio corpora learns their chain (digital silence, one spectral tilt)
as if it were emotion. Each transform here changes the chain of a whole crop and leaves the voice
alone, so the label stays true:

- :func:`spectral_tilt`: a gain linear in log-frequency, ``tilt_db`` from 100 Hz to 8 kHz
  (a darker or brighter microphone);
- :func:`band_limit`: zero-phase Butterworth-shaped high-pass and/or low-pass (cheap headsets,
  laptop microphones; the telephone band is 300-3400 Hz);
- :func:`reverberate`: a simulated room impulse response (direct path plus exponentially
  decaying noise with the requested RT60 and a random direct-to-reverberant ratio);
- :func:`add_noise_at_snr`: real environmental noise or coloured noise at an SNR measured
  against the *active* speech level, over the whole crop, so the pauses get a noise floor too;
- :func:`mu_law`: 8-bit mu-law at 8 kHz (the G.711 telephone chain);
- :func:`codec_roundtrip`: a real lossy codec (Ogg Opus or MP3 through libsndfile) on one clip.

:class:`ChannelAugment` draws a random chain per crop for training. The same functions with
fixed parameters build the robustness table (:mod:`streamser.training.robustness`).

All tensors are ``[batch, samples]`` float32 at :data:`SAMPLE_RATE`; gains and SNRs in dB,
frequencies in Hz, times in seconds. Pure functions of their inputs and the given generator;
call them from any thread.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

__all__ = [
    "SAMPLE_RATE",
    "ChannelAugment",
    "ChannelConfig",
    "NoiseBank",
    "active_power",
    "add_noise_at_snr",
    "band_gain",
    "band_limit",
    "codec_roundtrip",
    "coloured_noise",
    "mu_law",
    "reverberate",
    "room_impulse_response",
    "spectral_tilt",
    "tilt_gain",
]

SAMPLE_RATE = 16_000
_FRAME = 480  # 30 ms


def _freqs(length: int) -> torch.Tensor:
    return torch.fft.rfftfreq(length, d=1.0 / SAMPLE_RATE)


def _apply_gain_curve(x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Multiply each row's spectrum by ``gain`` ``[batch, bins]`` (zero phase)."""
    spec = torch.fft.rfft(x, dim=1)
    return torch.fft.irfft(spec * gain, n=x.shape[1], dim=1)


def tilt_gain(length: int, tilt_db: torch.Tensor) -> torch.Tensor:
    """``[rows, bins]`` amplitude gain of :func:`spectral_tilt` for ``length``-sample rows."""
    f = _freqs(length).clamp(100.0, 8000.0)
    pos = torch.log2(f / 1000.0) / math.log2(8000.0 / 100.0)  # -0.54 .. +0.46
    return torch.exp(tilt_db.view(-1, 1) * (math.log(10.0) / 20.0) * pos.view(1, -1))


def band_gain(
    length: int,
    highpass_hz: torch.Tensor | None = None,
    lowpass_hz: torch.Tensor | None = None,
    order: int = 4,
) -> torch.Tensor:
    """``[rows, bins]`` amplitude gain of :func:`band_limit` for ``length``-sample rows."""
    f = _freqs(length).view(1, -1).clamp_min(1.0)
    cutoffs = highpass_hz if highpass_hz is not None else lowpass_hz
    gain = torch.ones(1 if cutoffs is None else cutoffs.shape[0], f.shape[1])
    if highpass_hz is not None:
        fc = highpass_hz.view(-1, 1).clamp_min(1e-3)
        hp = torch.rsqrt(1.0 + _even_power(fc / f, order))
        gain = gain * torch.where(highpass_hz.view(-1, 1) > 0, hp, torch.ones_like(hp))
    if lowpass_hz is not None:
        fc = lowpass_hz.view(-1, 1)
        lp = torch.rsqrt(1.0 + _even_power(f / fc, order))
        gain = gain * torch.where(fc < 8000.0, lp, torch.ones_like(lp))
    return gain


def _even_power(ratio: torch.Tensor, order: int) -> torch.Tensor:
    """``ratio ** (2 * order)`` by repeated multiplication (a float ``pow`` costs ~10x more)."""
    square = ratio * ratio
    out = square
    for _ in range(order - 1):
        out = out * square
    return out


def spectral_tilt(x: torch.Tensor, tilt_db: torch.Tensor) -> torch.Tensor:
    """Tilt each row's spectrum by ``tilt_db[row]`` dB between 100 Hz and 8 kHz.

    The gain is linear in log2(frequency), 0 dB at 1 kHz, clamped outside 100 Hz-8 kHz; a
    negative tilt darkens. The overall level is not kept (the front end is level-invariant).
    """
    return _apply_gain_curve(x, tilt_gain(x.shape[1], tilt_db))


def band_limit(
    x: torch.Tensor,
    highpass_hz: torch.Tensor | None = None,
    lowpass_hz: torch.Tensor | None = None,
    order: int = 4,
) -> torch.Tensor:
    """Zero-phase Butterworth-magnitude high-pass and/or low-pass, cut-offs per row in Hz.

    A cut-off of 0 (high-pass) or >= 8000 (low-pass) leaves that side untouched.
    """
    return _apply_gain_curve(x, band_gain(x.shape[1], highpass_hz, lowpass_hz, order))


def room_impulse_response(
    rt60_s: float, drr_db: float, generator: torch.Generator, max_s: float = 1.0
) -> torch.Tensor:
    """A simulated room impulse response ``[samples]``.

    A unit direct path followed, from 2.5 ms on, by Gaussian noise whose energy decays by 60 dB
    in ``rt60_s`` seconds, low-passed by one-pole smoothing (air and wall absorption) and scaled
    so that the direct-to-reverberant energy ratio is ``drr_db``. Length ``min(rt60, max_s)``.
    """
    n = max(64, round(min(rt60_s, max_s) * SAMPLE_RATE))
    t = torch.arange(n, dtype=torch.float32) / SAMPLE_RATE
    tail = torch.randn(n, generator=generator) * torch.exp(-6.908 * t / max(rt60_s, 1e-3))
    tail[: round(0.0025 * SAMPLE_RATE)] = 0.0
    tail = tail + 0.4 * torch.roll(tail, 1)  # gentle high-frequency damping
    tail_energy = tail.pow(2).sum().clamp_min(1e-12)
    tail = tail * torch.sqrt(torch.tensor(10.0 ** (-drr_db / 10.0)) / tail_energy)
    tail[0] = 1.0
    return tail


def reverberate(x: torch.Tensor, rirs: list[torch.Tensor]) -> torch.Tensor:
    """Convolve row i with ``rirs[i]`` (FFT convolution), keeping the first ``samples``."""
    length = x.shape[1]
    longest = max(len(h) for h in rirs)
    n_fft = 1 << (length + longest - 1).bit_length()
    h = torch.zeros(len(rirs), longest)
    for i, rir in enumerate(rirs):
        h[i, : len(rir)] = rir
    y = torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(h, n=n_fft), n=n_fft)
    return y[:, :length]


def active_power(x: torch.Tensor) -> torch.Tensor:
    """Per-row mean power of the louder half of its 30 ms frames (the speech, not the pauses)."""
    n = x.shape[1] // _FRAME
    frames = x[:, : n * _FRAME].reshape(x.shape[0], n, _FRAME).pow(2).mean(dim=2)
    top = torch.topk(frames, max(1, n // 2), dim=1).values
    return top.mean(dim=1).clamp_min(1e-10)


def coloured_noise(n: int, length: int, exponent: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``[n, length]`` unit-power noise with power spectrum ``f**-exponent`` (0 white, 1 pink,
    2 brown; per row)."""
    spec = torch.fft.rfft(torch.randn(n, length, generator=g), dim=1)
    log_f = torch.log(torch.arange(spec.shape[1], dtype=torch.float32).clamp_min(1.0))
    shaped = torch.fft.irfft(spec * torch.exp(-0.5 * exponent.view(-1, 1) * log_f.view(1, -1)),
                             n=length)
    return shaped * torch.rsqrt(shaped.square().mean(dim=1, keepdim=True).clamp_min(1e-16))


def add_noise_at_snr(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """``x + noise`` with the noise scaled so active speech power / noise power = ``snr_db``."""
    p_noise = noise.pow(2).mean(dim=1).clamp_min(1e-12)
    scale = torch.sqrt(active_power(x) / p_noise * torch.pow(10.0, -snr_db / 10.0))
    return x + noise * scale.view(-1, 1)


def mu_law(x: torch.Tensor, peak: float = 0.9) -> torch.Tensor:
    """Telephone G.711 chain: 300-3400 Hz, 8 kHz sampling, 8-bit mu-law, back to 16 kHz."""
    y = band_limit(x, torch.full((x.shape[0],), 300.0), torch.full((x.shape[0],), 3400.0))
    scale = y.abs().amax(dim=1, keepdim=True).clamp_min(1e-6) / peak
    y = y[:, ::2] / scale  # 8 kHz (already band-limited below 4 kHz)
    mu = 255.0
    comp = torch.sign(y) * torch.log1p(mu * y.abs().clamp(max=1.0)) / math.log1p(mu)
    comp = torch.round(comp * 127.0) / 127.0
    y = torch.sign(comp) * ((1.0 + mu) ** comp.abs() - 1.0) / mu
    up = torch.zeros(x.shape[0], y.shape[1] * 2)
    up[:, ::2] = y * 2.0
    up = band_limit(up[:, : x.shape[1]], None, torch.full((x.shape[0],), 3800.0), order=8)
    return up * scale


def codec_roundtrip(audio: np.ndarray, codec: str, level: float = 1.0) -> np.ndarray:
    """Encode and decode one float32 16 kHz clip with ``codec`` ``"opus"`` or ``"mp3"``.

    ``level`` is libsndfile's compression level (1.0 = lowest bit rate). The output has the
    input's length. Slow (tens to hundreds of ms per second of audio): render once, reuse.
    """
    fmt, sub = {"opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}[codec]
    peak = float(np.max(np.abs(audio))) or 1.0
    buf = io.BytesIO()
    kwargs = {"compression_level": level}
    if codec == "mp3":
        kwargs["bitrate_mode"] = "CONSTANT"  # type: ignore[assignment]
    sf.write(buf, audio / peak * 0.9, SAMPLE_RATE, format=fmt, subtype=sub, **kwargs)
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    out = out[: len(audio)] if len(out) >= len(audio) else np.pad(out, (0, len(audio) - len(out)))
    return (out * peak / 0.9).astype(np.float32)


class NoiseBank:
    """Real environmental noise (e.g. ``corpora/noise``) for :func:`add_noise_at_snr`.

    Holds the clips concatenated in memory; :meth:`draw` cuts random segments.
    """

    def __init__(self, clips: list[np.ndarray]) -> None:
        usable = [c for c in clips if len(c) > SAMPLE_RATE // 2 and np.std(c) > 1e-5]
        if not usable:
            raise ValueError("NoiseBank needs a clip longer than 0.5 s that is not silent")
        self.audio = torch.from_numpy(np.concatenate(usable).astype(np.float32))

    def __len__(self) -> int:
        return len(self.audio)

    def draw(self, n: int, length: int, g: torch.Generator) -> torch.Tensor:
        """``[n, length]`` random segments (a segment may span two clips; the bank wraps)."""
        starts = torch.randint(0, len(self.audio), (n,), generator=g)
        idx = (starts.view(-1, 1) + torch.arange(length).view(1, -1)) % len(self.audio)
        return self.audio[idx]


@dataclass(frozen=True)
class ChannelConfig:
    """Probabilities (per crop) and ranges of the random recording chain."""

    enabled: bool = True
    p_tilt: float = 0.5
    tilt_db: tuple[float, float] = (-15.0, 15.0)
    p_lowpass: float = 0.25
    lowpass_hz: tuple[float, float] = (2500.0, 8000.0)
    p_highpass: float = 0.25
    highpass_hz: tuple[float, float] = (50.0, 300.0)
    p_telephone: float = 0.08
    p_reverb: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 1.0)
    drr_db: tuple[float, float] = (-6.0, 12.0)
    p_noise: float = 0.6
    p_real_noise: float = 0.5  # of the noisy crops, share with real noise (else coloured)
    snr_db: tuple[float, float] = (0.0, 40.0)
    p_floor: float = 0.7  # a faint noise floor (fills digital silence)
    floor_snr_db: tuple[float, float] = (40.0, 70.0)
    p_codec: float = 0.15  # replace the crop by its pre-rendered codec copy (when available)
    p_clip: float = 0.05
    clip_drive_db: tuple[float, float] = (3.0, 15.0)

    @staticmethod
    def off() -> ChannelConfig:
        """No channel augmentation (ablation)."""
        return ChannelConfig(enabled=False)


def _u(g: torch.Generator, lo: float, hi: float, n: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


class ChannelAugment:
    """A random recording chain per crop: filters, room, noise, telephone, clipping.

    Order: microphone (tilt, band limits) -> room (reverb) -> noise -> line (telephone) ->
    clipping. Called by the training loop's thread with a batch ``[batch, samples]``.
    """

    def __init__(self, cfg: ChannelConfig, noise: NoiseBank | None = None) -> None:
        self.cfg = cfg
        self.noise = noise

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c = self.cfg
        if not c.enabled:
            return x
        n, length = x.shape

        def pick(p: float) -> torch.Tensor:
            return torch.rand(n, generator=g) < p

        # the microphone: tilt and band limits, one zero-phase gain, only on the rows it changes
        tilted = pick(c.p_tilt)
        tilt = torch.where(tilted, _u(g, *c.tilt_db, n), torch.zeros(n)) if tilted.any() else None
        hp, lp = pick(c.p_highpass), pick(c.p_lowpass)
        limited = hp | lp
        if limited.any():
            hp_hz = torch.where(hp, _u(g, *c.highpass_hz, n), torch.zeros(n))
            lp_hz = torch.where(lp, _u(g, *c.lowpass_hz, n), torch.full((n,), 8000.0))
        rows = torch.nonzero(tilted | limited).flatten()
        if len(rows):
            gain = torch.ones(len(rows), length // 2 + 1)
            if tilt is not None:
                gain = gain * tilt_gain(length, tilt[rows])
            if limited.any():
                gain = gain * band_gain(length, hp_hz[rows], lp_hz[rows])
            x = x.clone()
            x[rows] = _apply_gain_curve(x[rows], gain)
        sel = pick(c.p_reverb)
        if sel.any():
            rows = torch.nonzero(sel).flatten()
            rirs = [
                room_impulse_response(float(_u(g, *c.rt60_s, 1)), float(_u(g, *c.drr_db, 1)), g)
                for _ in rows
            ]
            x = x.clone()
            x[rows] = reverberate(x[rows], rirs)
        sel = pick(c.p_noise)
        if sel.any():
            rows = torch.nonzero(sel).flatten()
            m = len(rows)
            bank = self.noise
            real = (torch.rand(m, generator=g) < c.p_real_noise if bank is not None
                    else torch.zeros(m, dtype=torch.bool))
            noise = torch.empty(m, length)
            if bank is not None and real.any():
                noise[real] = bank.draw(int(real.sum()), length, g)
            if not real.all():
                k = int((~real).sum())
                noise[~real] = coloured_noise(k, length, _u(g, 0.0, 2.0, k), g)
            x = x.clone()
            x[rows] = add_noise_at_snr(x[rows], noise, _u(g, *c.snr_db, m))
        sel = pick(c.p_floor)
        if sel.any():
            rows = torch.nonzero(sel).flatten()
            m = len(rows)
            floor = coloured_noise(m, length, _u(g, 0.0, 2.0, m), g)
            x = x.clone()
            x[rows] = add_noise_at_snr(x[rows], floor, _u(g, *c.floor_snr_db, m))
        sel = pick(c.p_telephone)
        if sel.any():
            rows = torch.nonzero(sel).flatten()
            x = x.clone()
            x[rows] = mu_law(x[rows])
        sel = pick(c.p_clip)
        if sel.any():
            peak = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-6)
            drive = torch.pow(10.0, _u(g, *c.clip_drive_db, n) / 20.0).view(-1, 1)
            clipped = (x / peak * drive).clamp(-1.0, 1.0)
            x = torch.where(sel.view(-1, 1), clipped, x)
        return x
