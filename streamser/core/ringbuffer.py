"""A fixed-size ring of float32 samples addressed by absolute sample index (sans-I/O).

The ring keeps the most recent ``capacity`` samples of a stream. Writers append; readers ask for
``[start, start + n)`` by absolute sample index (samples since stream start). Overflow policy:
**overwrite-oldest** — a write never fails; samples that fall out before anyone read them are
counted in :attr:`RingBuffer.overwritten_unread`.

Not thread-safe by design: one thread (the inference worker) owns it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Most recent ``capacity`` samples of a mono stream."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sample, got {capacity}")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # absolute index one past the newest sample
        self._read_mark = 0  # absolute index up to which a reader has consumed
        self.overwritten_unread = 0

    @property
    def end(self) -> int:
        """Absolute index one past the newest sample (= samples written so far)."""
        return self._end

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self._end - self.capacity)

    def write(self, samples: np.ndarray) -> None:
        """Append ``samples`` (1-D, any float dtype) after the newest sample."""
        n = len(samples)
        if n == 0:
            return
        if n > self.capacity:  # only the tail can survive
            samples = samples[-self.capacity :]
            skipped = n - self.capacity
        else:
            skipped = 0
        new_end = self._end + n
        lost_before = max(0, new_end - self.capacity)
        unread_lost = max(0, lost_before - max(self._read_mark, self.start))
        self.overwritten_unread += unread_lost
        self._read_mark = max(self._read_mark, lost_before)
        pos = (self._end + skipped) % self.capacity
        first = min(len(samples), self.capacity - pos)
        self._data[pos : pos + first] = samples[:first]
        self._data[: len(samples) - first] = samples[first:]
        self._end = new_end

    def read(self, start: int, n: int) -> np.ndarray:
        """Copy of samples ``[start, start + n)``; indices before 0 read as zeros.

        Raises IndexError when part of the range was already overwritten or not yet written.
        """
        stop = start + n
        if stop > self._end:
            raise IndexError(f"samples up to {stop} requested, only {self._end} written")
        if max(start, 0) < self.start:
            raise IndexError(f"sample {start} requested, oldest held is {self.start}")
        out = np.zeros(n, dtype=np.float32)
        lo = max(start, 0)
        if lo < stop:
            pos = lo % self.capacity
            count = stop - lo
            first = min(count, self.capacity - pos)
            off = lo - start
            out[off : off + first] = self._data[pos : pos + first]
            out[off + first : off + count] = self._data[: count - first]
        self._read_mark = max(self._read_mark, stop)
        return out
