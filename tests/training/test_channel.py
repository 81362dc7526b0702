"""Recording-chain augmentation and the chain-blind front end (needs the train extra)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamser.training.channel import (  # noqa: E402
    ChannelAugment,
    ChannelConfig,
    NoiseBank,
    active_power,
    add_noise_at_snr,
    band_limit,
    coloured_noise,
    mu_law,
    reverberate,
    room_impulse_response,
    spectral_tilt,
)
from streamser.training.frontend import FrontEndConfig, LogMel  # noqa: E402

SR = 16_000


def _band_db(x: torch.Tensor, lo: float, hi: float) -> float:
    spec = torch.fft.rfft(x[0]).abs().pow(2)
    f = torch.fft.rfftfreq(x.shape[1], 1.0 / SR)
    sel = (f >= lo) & (f < hi)
    return float(10.0 * torch.log10(spec[sel].mean()))


def _speechlike(n: int = 1, seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    """Harmonic bursts with pauses: a crude voiced signal with digital silence between."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    f0 = 140.0
    x = sum(torch.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 30))
    env = (torch.sin(2 * np.pi * 1.5 * t) > 0).float()
    return (0.1 * x * env + 0.001 * torch.randn(len(t), generator=g) * env).repeat(n, 1)


def test_spectral_tilt_gain_at_band_edges() -> None:
    """A -12 dB tilt darkens 4-8 kHz against 100-250 Hz by about 12 dB * its log span."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 32_000, generator=g)
    y = spectral_tilt(x, torch.tensor([-12.0]))
    hi = _band_db(y, 5000, 7000) - _band_db(x, 5000, 7000)
    lo = _band_db(y, 120, 200) - _band_db(x, 120, 200)
    assert hi < -4.0 and lo > 4.0
    assert abs(_band_db(y, 950, 1050) - _band_db(x, 950, 1050)) < 0.5  # 0 dB at 1 kHz


def test_band_limit_and_telephone() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 32_000, generator=g)
    y = band_limit(x, torch.tensor([300.0]), torch.tensor([3400.0]))
    assert _band_db(y, 6500, 8000) - _band_db(x, 6500, 8000) < -20
    assert _band_db(y, 50, 120) - _band_db(x, 50, 120) < -20
    assert abs(_band_db(y, 1000, 2000) - _band_db(x, 1000, 2000)) < 1.0
    tel = mu_law(x * 0.1)
    assert tel.shape == x.shape and torch.isfinite(tel).all()
    assert _band_db(tel, 5000, 7000) < _band_db(tel, 1000, 2000) - 25


def test_noise_at_snr_is_measured_on_active_speech() -> None:
    """The SNR refers to the speech's active level, and the pauses receive the noise too."""
    x = _speechlike()
    g = torch.Generator().manual_seed(2)
    noise = coloured_noise(1, x.shape[1], torch.tensor([1.0]), g)
    y = add_noise_at_snr(x, noise, torch.tensor([20.0]))
    added = y - x
    snr = 10 * torch.log10(active_power(x) / added.pow(2).mean(dim=1))
    assert abs(float(snr) - 20.0) < 0.1
    pauses = x.abs() < 1e-2
    assert float(y[pauses].abs().mean()) > 10 * float(x[pauses].abs().mean())


def test_reverb_tail_decays_at_rt60() -> None:
    g = torch.Generator().manual_seed(3)
    h = room_impulse_response(0.5, drr_db=0.0, generator=g)
    assert h[0] == 1.0 and len(h) == 8000
    early = float(h[800:1600].pow(2).mean())
    late = float(h[6400:7200].pow(2).mean())
    assert 40 < 10 * np.log10(early / late) < 60  # 0.35 s apart: ~42 dB at RT60 0.5 s
    x = torch.zeros(1, 16_000)
    x[0, 100] = 1.0
    y = reverberate(x, [h])
    assert torch.allclose(y[0, 100 : 100 + 4000], h[:4000], atol=1e-5)


def test_channel_augment_is_seeded_and_finite() -> None:
    bank = NoiseBank([np.random.default_rng(0).normal(size=40_000).astype(np.float32)])
    aug = ChannelAugment(ChannelConfig(p_codec=0.0), bank)
    x = _speechlike(8)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert not torch.equal(a, x)
    off = ChannelAugment(ChannelConfig.off())
    assert torch.equal(off(x, torch.Generator()), x)


def test_band_norm_front_end_removes_a_fixed_tilt() -> None:
    """The band-normalised front end barely moves under a 10 dB tilt; the global one does."""
    x = _speechlike(seed=4) + 0.0
    tilted = spectral_tilt(x, torch.tensor([-10.0]))
    band = LogMel(FrontEndConfig(norm="band", top_db=60.0))
    glob = LogMel(FrontEndConfig())
    d_band = float((band(x) - band(tilted)).abs().mean())
    d_glob = float((glob(x) - glob(tilted)).abs().mean())
    assert d_band < 0.5 * d_glob
    # still level-invariant
    assert float((band(x) - band(x * 10.0)).abs().max()) < 1e-3


def test_noise_floor_subtraction_keeps_steady_noise_out_of_the_features(
        demo_speech: np.ndarray) -> None:
    """With the band noise floor subtracted and the floor 40 dB under the peak, pink noise at
    20 dB SNR moves the features of real speech (the demo's RAVDESS clips, 2 s windows) far
    less than it moves the plain band front end's; it stays level-invariant; off by default."""
    windows = [demo_speech[i * 4 * SR : i * 4 * SR + 2 * SR] for i in range(8)]
    x = torch.from_numpy(np.stack(windows))
    noise = coloured_noise(8, x.shape[1], torch.ones(8), torch.Generator().manual_seed(3))
    noisy = add_noise_at_snr(x, noise, torch.full((8,), 20.0))
    plain = LogMel(FrontEndConfig(norm="band", top_db=60.0))
    steady = LogMel(FrontEndConfig(norm="band", top_db=40.0, denoise=2.0))
    d_plain = float((plain(x) - plain(noisy)).abs().mean())
    d_steady = float((steady(x) - steady(noisy)).abs().mean())
    assert d_steady < 0.6 * d_plain  # measured 0.207 vs 0.428
    # level-invariant up to float32 rounding (the subtraction cancels most of a quiet bin)
    assert float((steady(noisy) - steady(noisy * 30.0)).abs().max()) < 5e-3
    assert FrontEndConfig().denoise == 0.0
    # Digital silence has no floor to subtract: the mel power of clean pauses is untouched.
    pauses = torch.zeros(1, 2 * SR)
    pauses[0, SR // 2 : SR] = x[0, : SR // 2]
    assert torch.equal(LogMel(FrontEndConfig(denoise=2.0)).power_mel(pauses),
                       LogMel(FrontEndConfig()).power_mel(pauses))
    with pytest.raises(ValueError, match="denoise"):
        LogMel(FrontEndConfig(denoise=-1.0))


def test_fft_front_end_matches_the_exported_dft_convolution(demo_speech: np.ndarray) -> None:
    """Training takes the power spectrum from ``torch.stft``; the ONNX graph from the DFT-kernel
    ``Conv1d``. On real speech (and with a window shorter than the FFT) they agree to float
    rounding, so the two paths cannot drift apart."""
    x = torch.from_numpy(np.stack([demo_speech[i * SR : i * SR + 2 * SR] for i in range(4)]))
    for cfg in (FrontEndConfig(), FrontEndConfig(win_length=400)):
        fe = LogMel(cfg)
        spec = torch.nn.functional.conv1d(x.unsqueeze(1), fe.dft, stride=cfg.hop_length)
        re, im = spec[:, : fe.n_bins], spec[:, fe.n_bins :]
        conv = re * re + im * im
        fft = fe.power_spectrum(x)
        assert fft.shape == conv.shape == (4, cfg.n_fft // 2 + 1, cfg.n_frames(2 * SR))
        assert float((fft - conv).abs().max()) < 1e-5 * float(conv.max())


def test_microphone_stage_filters_only_its_rows_in_one_pass() -> None:
    """The chain's microphone stage (tilt and band limits as one gain) equals applying
    :func:`spectral_tilt` then :func:`band_limit` to the rows it picked, and leaves every other
    row bit-identical."""
    x = _speechlike(n=32, seed=5) * torch.linspace(0.5, 1.5, 32).view(-1, 1)
    cfg = ChannelConfig(p_tilt=0.4, p_highpass=0.3, p_lowpass=0.3, p_reverb=0.0, p_noise=0.0,
                        p_floor=0.0, p_telephone=0.0, p_codec=0.0, p_clip=0.0)
    y = ChannelAugment(cfg)(x, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)  # the same draws, in the chain's order
    tilted = torch.rand(32, generator=g) < cfg.p_tilt
    tilt = torch.where(tilted, -15.0 + 30.0 * torch.rand(32, generator=g), torch.zeros(32))
    hp = torch.rand(32, generator=g) < cfg.p_highpass
    lp = torch.rand(32, generator=g) < cfg.p_lowpass
    hp_hz = torch.where(hp, 50.0 + 250.0 * torch.rand(32, generator=g), torch.zeros(32))
    lp_hz = torch.where(lp, 2500.0 + 5500.0 * torch.rand(32, generator=g),
                        torch.full((32,), 8000.0))
    expected = band_limit(spectral_tilt(x, tilt), hp_hz, lp_hz)
    changed = tilted | hp | lp
    assert 0 < int(changed.sum()) < 32
    assert torch.equal(y[~changed], x[~changed])
    assert float((y - expected).abs().max()) < 1e-5
