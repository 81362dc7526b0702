"""Decoding, mix-down, resampling and the decoded-audio cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamser.errors import AudioSourceError
from streamser.training.audio_io import SAMPLE_RATE, AudioCache, load_audio, load_many
from streamser.training.corpora import Utterance


def _tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_to_mono_16k(tmp_path: Path) -> None:
    """A 44.1 kHz stereo file comes back as 16 kHz mono float32 with the tone preserved."""
    left = _tone(44_100, 1.0)
    stereo = np.stack([left, left * 0.5], axis=1)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 44_100, subtype="PCM_16")
    audio = load_audio(path, cache=False)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(audio[1000:-1000] ** 2)) == pytest.approx(0.75 * 0.5 / np.sqrt(2), 0.02)


def test_flac_16k_passthrough(tmp_path: Path) -> None:
    """A 16 kHz FLAC is decoded without resampling."""
    tone = _tone(SAMPLE_RATE, 0.25)
    path = tmp_path / "x.flac"
    sf.write(path, tone, SAMPLE_RATE)
    np.testing.assert_allclose(load_audio(path, cache=False), tone, atol=1e-4)


def test_cache_hit_and_invalidation(tmp_path: Path) -> None:
    """The second load is a cache hit; rewriting the file (new size) is a miss."""
    path = tmp_path / "a.wav"
    sf.write(path, _tone(22_050, 0.5), 22_050)
    cache = AudioCache(tmp_path / "cache")
    first = load_audio(path, cache)
    assert (cache.hits, cache.misses) == (0, 1)
    second = load_audio(path, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    sf.write(path, _tone(22_050, 0.7), 22_050)
    third = load_audio(path, cache)
    assert cache.misses == 2 and third.size > second.size


def test_load_many_keeps_order(tmp_path: Path) -> None:
    """load_many returns arrays in input order for paths and utterances alike."""
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.wav"
        sf.write(p, np.full(100 + i, 0.1, dtype=np.float32), SAMPLE_RATE)
        paths.append(p)
    items: list[Utterance | Path | str] = [Utterance(paths[0], "happy", "x:1", "x"), *paths[1:]]
    out = load_many(items, workers=2, cache=AudioCache(tmp_path / "c"), progress=False)
    assert [a.size for a in out] == [100, 101, 102, 103, 104]


def test_unreadable_file_raises(tmp_path: Path) -> None:
    """A file that is not audio raises AudioSourceError naming the file."""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioSourceError, match=r"bad\.wav"):
        load_audio(bad, cache=False)
