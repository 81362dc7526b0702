"""Map the audio clock onto another clock (LSL's, or Unix time) for output timestamps (sans-I/O).

A frame's ``end_s`` counts seconds of audio since the stream began; it is exact and regular.
Outputs that stamp samples on a system clock (Lab Streaming Layer, OSC bundle timetags) want
"when was this sound captured", and they want it derived from the audio clock, not from when
the frame happened to be made (which jitters with inference time and scheduling).

:class:`AudioClockMap` estimates the clock time of audio sample 0, ``t0``, from each frame's
*capture estimate* (the clock time at which the block holding the window's last sample
arrived) and stamps ``t0 + end_s``. Delays only ever make a capture estimate late, so ``t0``
follows the lowest estimates: it drops at once to a lower one and may creep up by at most
``drift`` seconds per second of audio (sound-card clocks drift against the system clock by
tens of ppm). The stamps are therefore spaced exactly by the hop, apart from that creep.

One owner thread calls it (an output's thread).
"""

from __future__ import annotations

__all__ = ["AudioClockMap", "capture_time"]


def capture_time(wall_time: float, latency_ms: float, clock_minus_wall: float) -> float:
    """When a frame's last sample arrived, on the target clock: the frame's Unix ``wall_time``
    minus its ``latency_ms``, shifted by ``clock_minus_wall`` (target clock minus Unix time,
    sampled together)."""
    return wall_time - latency_ms / 1000.0 + clock_minus_wall


class AudioClockMap:
    """Audio-clock seconds to target-clock seconds; see the module docstring."""

    def __init__(self, drift: float = 2e-4) -> None:
        if drift < 0:
            raise ValueError(f"drift must be >= 0, got {drift}")
        self.drift = drift
        self._t0: float | None = None
        self._last_end = 0.0

    @property
    def t0(self) -> float | None:
        """The current estimate of audio sample 0 on the target clock (None before a frame)."""
        return self._t0

    def stamp(self, end_s: float, captured: float) -> float:
        """Update with one frame (audio-clock ``end_s``, capture estimate ``captured`` on the
        target clock) and return its timestamp on the target clock."""
        estimate = captured - end_s
        if self._t0 is None:
            self._t0 = estimate
        else:
            allowed = self._t0 + self.drift * max(0.0, end_s - self._last_end)
            self._t0 = min(estimate, allowed)
        self._last_end = end_s
        return self._t0 + end_s
