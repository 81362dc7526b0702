"""Conditioning: audio as captured (any rate, any channels) to :data:`SAMPLE_RATE` mono (sans-I/O).

A source hands :class:`RawBlock` objects to the engine; :class:`Conditioner` turns them into
:class:`~streamser.core.frames.AudioBlock` objects on the inference thread (or in a plain loop,
offline). Frame counters carry through, so dropped blocks stay gaps of the right length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from streamser.core.frames import SAMPLE_RATE, AudioBlock
from streamser.core.inputguard import sanitize
from streamser.errors import AudioSourceError

__all__ = ["Conditioner", "RawBlock"]


@dataclass(frozen=True, eq=False)
class RawBlock:
    """Audio as captured: ``data`` float32 [frames, channels] at the source's rate.

    ``start_frame`` counts frames since the source started (so drops show up as gaps);
    ``arrival`` is ``time.monotonic()`` when the block was captured (seconds).
    """

    start_frame: int
    data: np.ndarray
    arrival: float


class Conditioner:
    """Mix down to mono and resample to :data:`SAMPLE_RATE`, streaming (sans-I/O; inference thread).

    Output sample indices follow the input frame counter, so a gap in the input (dropped
    blocks) stays a gap of the same duration in the output. Non-finite or absurd input samples
    are replaced with silence *before* the resampler (whose filter state one NaN would poison
    for good), counted in :attr:`bad_samples` and in each block's ``bad_samples``.
    """

    def __init__(self, rate: int) -> None:
        if rate <= 0:
            raise AudioSourceError(f"sample rate {rate} Hz is not valid; it must be positive.")
        self.rate = rate
        self._resampler = (
            None if rate == SAMPLE_RATE
            else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )
        self._next_frame = 0
        self._out = 0
        self.bad_samples = 0

    def flush(self, arrival: float) -> AudioBlock:
        """At end of stream: the resampler's held-back tail (empty at 16 kHz input)."""
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(tail, last=True)
        out = AudioBlock(self._out, np.ascontiguousarray(tail, dtype=np.float32), arrival)
        self._out += len(tail)
        return out

    def process(self, block: RawBlock, last: bool = False) -> AudioBlock:
        """Convert one block; ``last`` flushes the resampler's tail at end of stream."""
        data, bad = sanitize(block.data)
        self.bad_samples += bad
        mono = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)
        if block.start_frame > self._next_frame:  # dropped blocks: keep the clock, restart filter
            self._out += round((block.start_frame - self._next_frame) * SAMPLE_RATE / self.rate)
            if self._resampler is not None:
                self._resampler.clear()
        self._next_frame = block.start_frame + len(mono)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        out = AudioBlock(self._out, np.ascontiguousarray(mono, dtype=np.float32), block.arrival,
                         bad)
        self._out += len(mono)
        return out
