"""Windowing: fixed positions by sample index, chunk-size invariance, hop changes, gaps."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.frames import AudioBlock
from streamser.core.windowing import Windower


def feed(windower: Windower, audio: np.ndarray, block: int, start: int = 0) -> list:
    out = []
    for i in range(0, len(audio), block):
        out += windower.push(AudioBlock(start + i, audio[i : i + block], arrival=float(i)))
    return out


@pytest.mark.parametrize("block", [1, 256, 999, 4096, 20000])
def test_windows_do_not_depend_on_block_size(block: int) -> None:
    """The same audio in any block size yields identical windows."""
    audio = np.random.default_rng(1).normal(size=20_000).astype(np.float32)
    reference = feed(Windower(1600, 400), audio, 160)
    got = feed(Windower(1600, 400), audio, block)
    assert [w.end_sample for w in got] == [w.end_sample for w in reference] == list(
        range(400, 20_001, 400)
    )
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_first_windows_are_left_padded() -> None:
    """Before a full window exists, windows are zero-padded at stream start."""
    audio = np.ones(1000, dtype=np.float32)
    windows = feed(Windower(800, 200), audio, 1000)
    first = windows[0]
    assert first.end_sample == 200 and first.padded == 600 and first.start_sample == 0
    assert first.samples[:600].sum() == 0 and first.samples[600:].sum() == 200
    assert windows[3].padded == 0 and windows[3].start_sample == 0


def test_hop_change_applies_from_next_window() -> None:
    """After set_hop, windows end one new hop after the last one."""
    w = Windower(400, 100)
    ends = [x.end_sample for x in w.push(AudioBlock(0, np.zeros(250, np.float32), 0.0))]
    w.set_hop(300)
    ends += [x.end_sample for x in w.push(AudioBlock(250, np.zeros(1000, np.float32), 0.0))]
    assert ends == [100, 200, 500, 800, 1100]


def test_gap_is_filled_with_silence_and_counted() -> None:
    """A block that starts late keeps the audio clock: the gap becomes zeros and is counted."""
    w = Windower(100, 50)
    w.push(AudioBlock(0, np.ones(100, np.float32), 0.0))
    windows = w.push(AudioBlock(150, np.ones(50, np.float32), 1.0))
    assert w.gap_samples == 50
    assert [x.end_sample for x in windows] == [150, 200]
    np.testing.assert_array_equal(windows[-1].samples, [0] * 50 + [1] * 50)


def test_flush_emits_the_tail_once() -> None:
    """At end of stream the unanalysed tail gets one last window; a second flush adds none."""
    w = Windower(100, 50)
    w.push(AudioBlock(0, np.ones(130, np.float32), 0.0))
    tail = w.flush(1.0)
    assert [x.end_sample for x in tail] == [130]
    assert w.flush(2.0) == []


def test_window_keeps_arrival_of_block_holding_last_sample() -> None:
    """Latency is measured from the block that completed the window."""
    w = Windower(100, 100)
    w.push(AudioBlock(0, np.ones(60, np.float32), 10.0))
    (win,) = w.push(AudioBlock(60, np.ones(60, np.float32), 11.0))
    assert win.arrival == 11.0
