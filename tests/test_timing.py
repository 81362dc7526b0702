"""Audio clock -> system clock mapping for output timestamps (no threads, no clocks)."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.timing import AudioClockMap, capture_time


def test_stamps_follow_the_audio_clock_not_the_jitter() -> None:
    """Capture estimates late by 0-30 ms of jitter still give stamps spaced by the hop."""
    rng = np.random.default_rng(1)
    t0, hop = 1000.0, 0.25
    clock = AudioClockMap(drift=0.0)
    ends = hop * np.arange(1, 200)
    stamps = [clock.stamp(e, t0 + e + rng.uniform(0, 0.03)) for e in ends]
    late = np.array(stamps[50:]) - (t0 + ends[50:])
    assert np.allclose(np.diff(stamps[50:]), hop, atol=1e-3)  # jitter is 30 ms
    assert 0 <= late.max() < 0.002  # anchored to the earliest (least delayed) capture


def test_drift_is_followed_up_and_down() -> None:
    """A capture clock running 100 ppm fast is tracked within the allowed creep; an earlier
    estimate re-anchors at once."""
    clock = AudioClockMap(drift=2e-4)
    hop = 0.25
    stamps = [clock.stamp(k * hop, 50.0 + k * hop * (1 + 1e-4)) for k in range(1, 4001)]
    assert stamps[-1] == pytest.approx(50.0 + 4000 * hop * (1 + 1e-4), abs=0.001)
    assert clock.stamp(4001 * hop, 40.0 + 4001 * hop) == pytest.approx(40.0 + 4001 * hop)


def test_capture_time_shifts_wall_time_to_the_target_clock() -> None:
    assert capture_time(1_700_000_000.5, 20.0, -1_699_990_000.0) == pytest.approx(10_000.48)
