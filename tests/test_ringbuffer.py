"""Ring buffer: absolute addressing, wraparound, overwrite-oldest accounting."""

from __future__ import annotations

import numpy as np
import pytest

from streamser.core.ringbuffer import RingBuffer


def test_read_back_across_wraparound() -> None:
    """Samples written across the end of the storage read back in order."""
    ring = RingBuffer(10)
    data = np.arange(25, dtype=np.float32)
    for chunk in np.array_split(data, 7):
        ring.write(chunk)
    assert ring.end == 25 and ring.start == 15
    np.testing.assert_array_equal(ring.read(15, 10), data[15:])
    np.testing.assert_array_equal(ring.read(18, 4), data[18:22])


def test_negative_indices_read_as_zero_padding() -> None:
    """A range starting before the stream start is zero-padded on the left."""
    ring = RingBuffer(8)
    ring.write(np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(-2, 5), [0, 0, 1, 1, 1])


def test_overwritten_or_future_ranges_raise() -> None:
    """Reading samples that are gone or not yet written is an error, not garbage."""
    ring = RingBuffer(4)
    ring.write(np.arange(6, dtype=np.float32))
    with pytest.raises(IndexError):
        ring.read(1, 2)
    with pytest.raises(IndexError):
        ring.read(4, 3)


def test_overwrite_oldest_counts_unread_samples_only() -> None:
    """Samples lost before anyone read them are counted; read ones are not."""
    ring = RingBuffer(4)
    ring.write(np.arange(4, dtype=np.float32))
    ring.read(0, 2)  # samples 0, 1 consumed
    ring.write(np.arange(3, dtype=np.float32))  # pushes out 0, 1, 2
    assert ring.overwritten_unread == 1
    ring.write(np.zeros(10, dtype=np.float32))  # bigger than the ring: only the tail stays
    assert ring.end == 17 and ring.start == 13
    assert ring.overwritten_unread == 1 + 4 + 6
