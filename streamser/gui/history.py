"""What the dashboard remembers, in preallocated numpy arrays (no Qt here).

:class:`Ring` is a fixed-capacity FIFO whose :meth:`Ring.view` is a contiguous, chronologically
ordered *view* (no copy): every row is written twice, at ``i`` and ``i + capacity``, so the last
``n`` rows always sit side by side. :class:`History` folds engine output into such rings:

- frames -> per-label smoothed probabilities, voiced flags, arousal/valence, latency;
- audio blocks -> a min/max waveform envelope, level and clipping, and pitch/energy from
  :class:`streamser.core.prosody.ProsodyTracker`.

Nothing is allocated per item after construction except the small arrays the prosody tracker
returns. Not thread-safe: the Qt main thread owns it (it feeds what it drained from the bus).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamser.core.frames import SAMPLE_RATE, AudioBlock, Frame
from streamser.core.prosody import ProsodyTracker

__all__ = ["History", "HistoryConfig", "Ring"]

CLIP_LEVEL = 0.999


class Ring:
    """Fixed-capacity FIFO of scalars (``width=None``) or rows of ``width`` values."""

    def __init__(self, capacity: int, width: int | None = None, fill: float = math.nan) -> None:
        if capacity < 1:
            raise ValueError(f"ring capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        shape = (2 * capacity,) if width is None else (2 * capacity, width)
        self._data = np.full(shape, fill, dtype=np.float64)
        self._pos = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        """Forget every row (the storage stays allocated)."""
        self._pos = 0
        self._count = 0

    def append(self, row: float | Sequence[float] | np.ndarray) -> None:
        """Add one row."""
        self._data[self._pos] = row
        self._data[self._pos + self.capacity] = row
        self._pos = (self._pos + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def extend(self, rows: np.ndarray) -> None:
        """Add many rows at once (oldest first); only the newest ``capacity`` are kept."""
        rows = np.asarray(rows)
        n = len(rows)
        if n == 0:
            return
        if n > self.capacity:
            rows = rows[-self.capacity :]
            n = self.capacity
        cap, pos = self.capacity, self._pos
        first = min(n, cap - pos)
        self._data[pos : pos + first] = rows[:first]
        self._data[pos + cap : pos + cap + first] = rows[:first]
        rest = n - first
        if rest:
            self._data[:rest] = rows[first:]
            self._data[cap : cap + rest] = rows[first:]
        self._pos = (pos + n) % cap
        self._count = min(self._count + n, cap)

    def view(self) -> np.ndarray:
        """The stored rows, oldest first, as a view into the preallocated storage."""
        end = self._pos + self.capacity
        return self._data[end - self._count : end]

    def last(self) -> np.ndarray | float:
        """The newest row (NaN row when empty)."""
        if self._count == 0:
            return self._data[0] * math.nan
        row: np.ndarray | float = self._data[self._pos + self.capacity - 1]
        return row


@dataclass(frozen=True)
class HistoryConfig:
    """How much the dashboard keeps. Seconds of audio clock; counts are upper bounds."""

    trajectory_s: float = 30.0
    max_frames: int = 2400
    """Frames kept for the trajectories (120 s at the smallest hop of 0.05 s)."""
    trail_s: float = 4.0
    """Length of the arousal-valence trail."""
    strip_s: float = 8.0
    """Length of the waveform and prosody strips."""
    envelope_hop: int = 160
    """Samples per waveform envelope column (10 ms)."""
    clip_hold_s: float = 2.0
    """How long the clipping light stays on after a clipped sample (wall seconds)."""


class History:
    """Engine output folded into rings for plotting. Main thread only."""

    def __init__(self, labels: Sequence[str], config: HistoryConfig | None = None) -> None:
        self.config = cfg = config or HistoryConfig()
        self.labels = tuple(labels)
        n = cfg.max_frames
        self.times = Ring(n)
        self.smoothed = Ring(n, len(self.labels))
        self.voiced = Ring(n, fill=0.0)
        self.arousal = Ring(n)
        self.valence = Ring(n)
        self.latency_ms = Ring(64)
        env_cols = int(cfg.strip_s * SAMPLE_RATE / cfg.envelope_hop)
        self.env_times = Ring(env_cols)
        self.env = Ring(env_cols, 2)
        self.prosody = ProsodyTracker()
        pros_n = int(cfg.strip_s * SAMPLE_RATE / self.prosody.config.hop) + 8
        self.pitch_times = Ring(pros_n)
        self.pitch_hz = Ring(pros_n)
        self.energy_db = Ring(pros_n)
        self._env_acc = np.zeros(cfg.envelope_hop, dtype=np.float32)
        self._env_fill = 0
        self._env_next = 0
        """Stream index of the first sample of the envelope column being filled."""
        self._expected_sample = 0
        self._prosody_origin = 0
        """Stream index of the prosody tracker's sample 0."""
        self.last_frame: Frame | None = None
        self.peak_dbfs = -120.0
        self.rms_dbfs = -120.0
        self.clip_until = 0.0
        """``time.monotonic()`` until which the clipping light is on."""
        self.audio_end_s = 0.0
        """Audio clock at the end of the newest block, seconds."""
        self.frames_seen = 0
        self.blocks_seen = 0

    def reset(self) -> None:
        """Start over for a new stream (the audio clock restarts at zero)."""
        for ring in (self.times, self.smoothed, self.voiced, self.arousal, self.valence,
                     self.latency_ms, self.env_times, self.env, self.pitch_times,
                     self.pitch_hz, self.energy_db):
            ring.clear()
        self.prosody.reset()
        self._env_fill = 0
        self._env_next = 0
        self._expected_sample = 0
        self._prosody_origin = 0
        self.last_frame = None
        self.peak_dbfs = self.rms_dbfs = -120.0
        self.clip_until = 0.0
        self.audio_end_s = 0.0

    # -- frames ---------------------------------------------------------------------------
    def add_frames(self, frames: Sequence[Frame]) -> None:
        """Fold frames (oldest first) into the rings."""
        for frame in frames:
            if frame.labels != self.labels:
                continue
            self.times.append(frame.end_s)
            self.smoothed.append(frame.smoothed)
            self.voiced.append(1.0 if frame.voiced else 0.0)
            self.arousal.append(frame.arousal)
            self.valence.append(frame.valence)
            self.latency_ms.append(frame.latency_ms)
            self.last_frame = frame
            self.frames_seen += 1

    # -- audio ----------------------------------------------------------------------------
    def add_blocks(self, blocks: Sequence[AudioBlock], now: float | None = None) -> None:
        """Fold audio blocks (oldest first): level, clipping, envelope and prosody."""
        if not blocks:
            return
        now = time.monotonic() if now is None else now
        peak = 0.0
        power = 0.0
        count = 0
        for block in blocks:
            samples = np.asarray(block.samples, dtype=np.float32).reshape(-1)
            if len(samples) == 0:
                continue
            if block.start_sample != self._expected_sample:
                # a gap (dropped blocks) or a restart: keep the clocks honest
                self.prosody.reset()
                self._prosody_origin = block.start_sample
                self._env_fill = 0
                self._env_next = block.start_sample
            self._expected_sample = block.end_sample
            block_peak = float(np.max(np.abs(samples)))
            peak = max(peak, block_peak)
            power += float(np.dot(samples, samples))
            count += len(samples)
            if block_peak >= CLIP_LEVEL:
                self.clip_until = now + self.config.clip_hold_s
            self._add_envelope(samples)
            self._add_prosody(samples)
            self.audio_end_s = block.end_sample / SAMPLE_RATE
            self.blocks_seen += 1
        if count:
            self.peak_dbfs = 20.0 * math.log10(max(peak, 1e-6))
            self.rms_dbfs = 10.0 * math.log10(max(power / count, 1e-12))

    def _add_envelope(self, samples: np.ndarray) -> None:
        hop = self.config.envelope_hop
        i = 0
        n = len(samples)
        while i < n:
            take = min(hop - self._env_fill, n - i)
            self._env_acc[self._env_fill : self._env_fill + take] = samples[i : i + take]
            self._env_fill += take
            i += take
            if self._env_fill == hop:
                self.env.append((float(self._env_acc.min()), float(self._env_acc.max())))
                self.env_times.append((self._env_next + hop / 2) / SAMPLE_RATE)
                self._env_next += hop
                self._env_fill = 0

    def _add_prosody(self, samples: np.ndarray) -> None:
        out = self.prosody.push(samples)
        if len(out):
            self.pitch_times.extend(out.times_s + self._prosody_origin / SAMPLE_RATE)
            self.pitch_hz.extend(out.f0_hz)
            self.energy_db.extend(out.energy_dbfs)

    # -- derived --------------------------------------------------------------------------
    def clipping(self, now: float | None = None) -> bool:
        """True while the clipping light should be on."""
        return (time.monotonic() if now is None else now) < self.clip_until

    def median_latency_ms(self) -> float:
        """Median processing latency of the recent frames (NaN before the first frame)."""
        values = self.latency_ms.view()
        return float(np.median(values)) if len(values) else math.nan

    def newest_time_s(self) -> float:
        """Audio clock of the newest thing seen (frame end or audio end), seconds."""
        frame_end = self.last_frame.end_s if self.last_frame is not None else 0.0
        return max(frame_end, self.audio_end_s)
