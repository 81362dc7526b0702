"""The dashboard's preallocated history (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.frames import AudioBlock, Frame
from streamser.gui.history import History, HistoryConfig, Ring

LABELS = ("neutral", "happy", "sad", "angry")


def frame(seq: int, voiced: bool = True, hop: float = 0.25) -> Frame:
    probs = (0.1, 0.6, 0.1, 0.2)
    return Frame(seq=seq, start_s=seq * hop, end_s=seq * hop + 1.0, wall_time=0.0,
                 labels=LABELS, probs=probs, smoothed=probs,
                 top_label="happy" if voiced else None, confidence=0.6, arousal=0.3,
                 valence=0.4, voiced=voiced, voiced_prob=0.9 if voiced else 0.1,
                 level_dbfs=-20.0, latency_ms=3.0 + seq, model_version="t")


def test_ring_view_is_ordered_and_shares_storage() -> None:
    """After wrapping, view() is oldest-first, contiguous and a view (no copy)."""
    ring = Ring(5)
    for i in range(12):
        ring.append(float(i))
    view = ring.view()
    assert list(view) == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert view.base is not None and view.flags["C_CONTIGUOUS"]
    ring.extend(np.arange(100.0, 103.0))
    assert list(ring.view()) == [10.0, 11.0, 100.0, 101.0, 102.0]
    ring.extend(np.arange(20.0))
    assert list(ring.view()) == [15.0, 16.0, 17.0, 18.0, 19.0]
    ring.clear()
    assert len(ring.view()) == 0


def test_ring_rows() -> None:
    """Rings of rows keep whole rows in order."""
    ring = Ring(3, width=2)
    for i in range(4):
        ring.append((i, -i))
    assert ring.view().tolist() == [[1, -1], [2, -2], [3, -3]]
    assert list(ring.last()) == [3, -3]  # type: ignore[arg-type]


def test_frames_fill_the_rings() -> None:
    """Frames land in time, probability, voiced and arousal/valence rings."""
    hist = History(LABELS)
    hist.add_frames([frame(i, voiced=i % 3 != 0) for i in range(10)])
    assert len(hist.times) == 10
    assert hist.smoothed.view().shape == (10, 4)
    assert list(hist.voiced.view()[:4]) == [0.0, 1.0, 1.0, 0.0]
    assert hist.last_frame is not None and hist.last_frame.seq == 9
    assert hist.median_latency_ms() == pytest.approx(7.5)
    assert hist.newest_time_s() == pytest.approx(9 * 0.25 + 1.0)


def test_frames_of_another_model_are_ignored() -> None:
    """A frame whose labels differ from the history's is not mixed in."""
    hist = History(("neutral", "sad"))
    hist.add_frames([frame(0)])
    assert len(hist.times) == 0


def test_audio_blocks_give_envelope_level_clip_and_prosody() -> None:
    """Blocks of any size fill the 10 ms envelope, level, clip light and pitch track."""
    sr = 16_000
    t = np.arange(sr) / sr
    audio = (0.5 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    audio[8000] = 1.0
    hist = History(LABELS, HistoryConfig())
    pos = 0
    for size in (100, 1000, 333, 4096, 10_471):
        hist.add_blocks([AudioBlock(pos, audio[pos: pos + size], 0.0)], now=100.0)
        pos += size
    assert pos == sr
    assert len(hist.env) == sr // 160
    assert np.allclose(hist.env_times.view()[:2], [80 / sr, 240 / sr])
    assert hist.env.view()[:, 1].max() == pytest.approx(1.0)
    assert hist.clipping(now=101.0) and not hist.clipping(now=103.0)
    assert hist.audio_end_s == pytest.approx(1.0)
    pitch = hist.pitch_hz.view()
    assert len(pitch) > 40 and np.nanmedian(pitch) == pytest.approx(150, rel=0.01)
    assert hist.rms_dbfs == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)


def test_gap_in_audio_restarts_the_strips_clock() -> None:
    """After dropped blocks the envelope and pitch times continue at the new position."""
    hist = History(LABELS)
    block = np.zeros(1600, dtype=np.float32)
    hist.add_blocks([AudioBlock(0, block, 0.0), AudioBlock(16_000, block, 0.0)])
    times = hist.env_times.view()
    assert times[9] < 0.1 and times[10] == pytest.approx(1.005)
    hist.reset()
    assert len(hist.env) == 0 and hist.last_frame is None
