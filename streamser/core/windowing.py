"""Sliding fixed-interval windows over a stream of audio blocks (sans-I/O).

Window ``k`` (k = 1, 2, ...) *ends* at sample ``k * hop`` and spans ``window`` samples; at stream
start, where fewer than ``window`` samples exist, it is left-padded with zeros, so the first
estimate arrives one hop after the start instead of one window. Which windows exist depends only
on sample indices, never on how the audio was chunked: 256- and 4096-sample blocks give the same
windows. When the hop changes, the next window ends one new hop after the previous one.

Gaps (a block starting after the previous one ended, e.g. when capture dropped blocks) are filled
with zeros so the audio clock stays true; the filled samples are counted in
:attr:`Windower.gap_samples`.

One thread (the inference worker) owns a :class:`Windower`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamser.core.frames import AudioBlock
from streamser.core.ringbuffer import RingBuffer

__all__ = ["Window", "Windower"]


@dataclass(frozen=True, eq=False)
class Window:
    """One analysis window: samples ``[end_sample - len(samples), end_sample)``.

    ``arrival`` is the monotonic time (seconds) at which the block holding the window's last
    sample arrived; ``padded`` counts leading zeros added before stream start.
    """

    index: int
    end_sample: int
    samples: np.ndarray
    arrival: float
    padded: int

    @property
    def start_sample(self) -> int:
        """Absolute index of the first real (non-padding) sample."""
        return self.end_sample - len(self.samples) + self.padded


class Windower:
    """Cut a block stream into windows of ``window`` samples every ``hop`` samples."""

    def __init__(self, window: int, hop: int, history: int = 0) -> None:
        if window < 1 or hop < 1:
            raise ValueError(f"window and hop must be >= 1 sample, got {window}, {hop}")
        self.window = window
        self._hop = hop
        self._ring = RingBuffer(window + max(history, 4 * window))
        self._next_end = hop
        self._index = 0
        self.gap_samples = 0
        self.skipped_windows = 0

    @property
    def hop(self) -> int:
        """Current hop in samples."""
        return self._hop

    def set_hop(self, hop: int) -> None:
        """Change the hop; the next window ends ``hop`` samples after the last emitted one."""
        if hop < 1:
            raise ValueError(f"hop must be >= 1 sample, got {hop}")
        self._next_end += hop - self._hop
        self._hop = hop

    @property
    def overwritten_samples(self) -> int:
        """Samples the ring overwrote before a window read them (see :class:`RingBuffer`)."""
        return self._ring.overwritten_unread

    @property
    def samples_seen(self) -> int:
        """Samples received so far, gap fill included (the audio clock, in samples)."""
        return self._ring.end

    def push(self, block: AudioBlock) -> list[Window]:
        """Add one block; return the windows it completed, oldest first."""
        samples = block.samples
        if block.start_sample > self._ring.end:
            gap = block.start_sample - self._ring.end
            self.gap_samples += gap
            self._ring.write(np.zeros(gap, dtype=np.float32))
        elif block.start_sample < self._ring.end:  # overlap: keep only the new part
            samples = samples[self._ring.end - block.start_sample :]
        out: list[Window] = []
        for i in range(0, len(samples), self.window):  # a huge block must not outrun the ring
            self._ring.write(samples[i : i + self.window])
            out += self._collect(block.arrival, self._ring.end)
        return out

    def flush(self, arrival: float) -> list[Window]:
        """At end of stream: one last window ending at the last sample, if any are unanalysed."""
        end = self._ring.end
        last_end = self._next_end - self._hop
        if end <= last_end or end == 0:
            return []
        self._next_end = end
        return self._collect(arrival, end)

    def _collect(self, arrival: float, available: int) -> list[Window]:
        out: list[Window] = []
        while self._next_end <= available:
            end = self._next_end
            start = end - self.window
            if start < self._ring.start and start >= 0:  # fell behind the ring: skip ahead
                self.skipped_windows += 1
                self._next_end += self._hop
                continue
            self._index += 1
            out.append(Window(self._index, end, self._ring.read(start, self.window), arrival,
                              max(0, -start)))
            self._next_end += self._hop
        return out
