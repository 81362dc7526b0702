"""The running spectrum of one voice, for a speaker-relative model (sans-I/O).

A speaker-relative model (contract metadata ``speaker_reference``) returns each window's
``band_mean``: its mean log-mel spectrum over its speech frames, natural-log power units,
[n_mels]. Averaged over a voice's speech it is the voice's *reference*: its timbre through its
microphone and room. Fed back as the model's ``reference`` input, the model hears each window
relative to that voice, so a dark microphone or a deep voice stops looking like sadness while
a window that departs from the voice's usual spectrum (effort, tension) still shows.

:class:`VoiceReference` keeps that mean over the session's *voiced* windows: cumulative up to
``max_windows``, then exponential with that time constant (a new speaker takes over within a
few minutes; :meth:`reset` forgets at once). It gives no reference until ``min_windows`` voiced
windows were heard; the model's own output is used until then. An enrolment profile may instead
supply a fixed reference (its neutral reading). One owner thread (the inference worker).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReferenceConfig", "VoiceReference"]


@dataclass(frozen=True)
class ReferenceConfig:
    """Settings in voiced windows (not seconds: the hop is the caller's).

    ``min_windows``: voiced windows before a reference is given (8 at a 0.5 s hop is 4 s of
    speech); ``max_windows``: horizon of the running mean.
    """

    min_windows: int = 8
    max_windows: int = 480

    def __post_init__(self) -> None:
        if not 1 <= self.min_windows <= self.max_windows:
            raise ValueError(f"need 1 <= min_windows <= max_windows, got {self.min_windows}, "
                             f"{self.max_windows}")


class VoiceReference:
    """Running mean ``band_mean`` of one voice's voiced windows."""

    def __init__(self, n_mels: int, config: ReferenceConfig = ReferenceConfig()) -> None:
        if n_mels < 1:
            raise ValueError(f"need at least one mel band, got {n_mels}")
        self.config = config
        self._mean = np.zeros(n_mels)
        self._n = 0

    @property
    def windows(self) -> int:
        """Voiced windows that have entered the running mean."""
        return self._n

    def reset(self) -> None:
        """Forget the voice (a new person at the microphone)."""
        self._mean[:] = 0.0
        self._n = 0

    def observe(self, band_mean: np.ndarray, voiced: bool) -> None:
        """Add one window's ``band_mean`` [n_mels] if it was voiced; non-finite rows are
        ignored (a model fault must not poison the session)."""
        b = np.asarray(band_mean, dtype=np.float64)
        if b.shape != self._mean.shape:
            raise ValueError(f"band_mean has shape {b.shape}, expected {self._mean.shape}")
        if not voiced or not np.isfinite(b).all():
            return
        self._n += 1
        self._mean += (b - self._mean) / min(self._n, self.config.max_windows)

    def value(self) -> np.ndarray | None:
        """The reference [n_mels] (float32, a copy), or None before ``min_windows``."""
        if self._n < self.config.min_windows:
            return None
        return self._mean.astype(np.float32)
