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


WINDOW, HOP = 32_000, 8_000  # the shipped model's 2 s windows every 0.5 s


def window_decisions(audio: np.ndarray, chunk: int = 4096) -> list[bool]:
    """Speech decisions of every analysis window, as the analyzer makes them (threshold 0.25)."""
    vad = voiced(audio, chunk)
    return [vad.speech_fraction(max(0, end - WINDOW), end) >= 0.25
            for end in range(HOP, len(audio) + 1, HOP)]


def synthetic_non_speech(seconds: float = 4.0) -> dict[str, np.ndarray]:
    rate = 16_000
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(5)
    sounds: dict[str, np.ndarray] = {}
    for hz in (100, 150, 220, 440, 1000, 3000):
        sounds[f"sine {hz} Hz"] = 0.3 * np.sin(2 * np.pi * hz * t)
    buzz = sum(np.sin(2 * np.pi * k * 120 * t) / k for k in range(1, 20))
    sounds["120 Hz buzz"] = 0.1 * buzz
    sounds["white noise"] = rng.normal(0, 0.1, len(t))
    brown = np.cumsum(rng.normal(0, 1, len(t)))
    brown -= np.convolve(brown, np.ones(400) / 400, "same")
    sounds["brown noise"] = 0.1 * brown / brown.std()
    sounds["sweep"] = 0.3 * np.sin(2 * np.pi * (100 * t + 400 * t**2))
    return {name: x.astype(np.float32) for name, x in sounds.items()}


@pytest.mark.parametrize("name", list(synthetic_non_speech()))
def test_noise_and_tones_are_not_speech(name: str) -> None:
    """Tones, a buzz, white/brown noise and a sweep: no window is speech (the WebRTC VAD with
    automatic gain alone called them all speech)."""
    assert not any(window_decisions(synthetic_non_speech()[name]))


@pytest.mark.parametrize("gain_db", [-30, 0])
def test_speechlike_audio_still_passes_the_speech_test(gain_db: int) -> None:
    """Voiced, pitch-varying, syllable-modulated audio passes the speech test at -30 and 0 dB:
    the test never vetoes a window of it."""
    audio = speechlike(6.0, seed=2) * 10 ** (gain_db / 20)
    vad = voiced(audio, 4096)
    for end in range(WINDOW, len(audio) + 1, HOP):
        assert vad.speech_check(end - WINDOW, end).speech
        assert vad.speech_fraction(end - WINDOW, end) == vad.voiced_fraction(end - WINDOW, end)


def test_speech_test_does_not_depend_on_chunking() -> None:
    """The same audio in 256- or 4096-sample blocks gives the same window decisions."""
    audio = np.concatenate([speechlike(3.0, seed=4), synthetic_non_speech(2.0)["white noise"]])
    assert window_decisions(audio, 256) == window_decisions(audio, 4096)


@pytest.mark.corpora
@pytest.mark.slow
def test_noise_corpus_is_unvoiced_and_unseen_ravdess_speech_is_voiced() -> None:
    """>= 95 % of environmental-noise windows unvoiced while >= 95 % of speech windows voiced.

    Speech windows: RAVDESS actors 15-20 (the thresholds were chosen on other clips), windows
    where at least half of the 30 ms frames are within 25 dB of the clip's loudest (studio
    recordings: that is the utterance). Noise: every 4th clip of the noise corpus.
    """
    root = corpora_root()
    if root is None or not (root / "noise").is_dir():
        pytest.skip("corpora not available (set STREAMSER_CORPORA)")
    import soundfile as sf

    noise_windows = []
    for path in sorted((root / "noise").glob("*/*.opus"))[::4]:
        audio, _ = sf.read(path, dtype="float32")
        noise_windows += window_decisions(audio.reshape(len(audio), -1).mean(axis=1))
    speech_windows = []
    for actor in range(15, 21):
        for path in sorted((root / "ravdess").glob(f"Actor_{actor:02d}/*.flac"))[::6]:
            audio, _ = sf.read(path, dtype="float32")
            frames = audio[: len(audio) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
            level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
            active = level > level.max() - 25
            for end, decision in zip(range(HOP, len(audio) + 1, HOP), window_decisions(audio),
                                     strict=True):
                span = active[max(0, end - WINDOW) // FRAME_SAMPLES : end // FRAME_SAMPLES]
                if span.mean() >= 0.5:
                    speech_windows.append(decision)
    unvoiced_noise = 1 - np.mean(noise_windows)
    voiced_speech = np.mean(speech_windows)
    print(f"noise: {unvoiced_noise:.3f} of {len(noise_windows)} windows unvoiced; speech: "
          f"{voiced_speech:.3f} of {len(speech_windows)} windows voiced")
    assert len(noise_windows) > 1000 and len(speech_windows) > 150
    assert unvoiced_noise >= 0.95
    assert voiced_speech >= 0.95


def test_white_noise_frames_are_not_readings(tiny_runner) -> None:  # type: ignore[no-untyped-def]
    """Through the analyzer: white noise gives frames marked unvoiced, with no label (was: every
    frame "voiced" with an emotion)."""
    from streamser.core.analyzer import Analyzer
    from streamser.core.frames import AudioBlock

    noise = synthetic_non_speech(6.0)["white noise"]
    analyzer = Analyzer(tiny_runner.predict, tiny_runner.spec)
    frames = analyzer.push(AudioBlock(0, noise, 0.0))
    assert frames and not any(f.voiced or f.top_label for f in frames)
