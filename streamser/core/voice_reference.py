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

__all__ = ["PROFILE_CHECK_WINDOWS", "PROFILE_MISMATCH_DB", "ReferenceConfig", "VoiceReference",
           "reference_mismatch_db"]

#: A profile's reference and the live voice's running spectrum differing by more than this
#: (RMS over bands, level removed, dB) were recorded through different chains, and the profile's
#: reference must not be used. Measured with facenet-s-2.2.0 on nEMO (9 speakers; the profile a
#: neutral reading, the session all of the speaker's clips): same chain 1.7-4.6 dB, enrolled
#: through a +/-10 dB tilt, pink noise at 20 dB SNR, a 0.3 s room or Opus 12 kbit/s at most
#: 7.3 dB; through a telephone band (300-3400 Hz) 12.7-16.2 dB, which made the profile worse
#: than none (nEMO 33.2 %, ASED 25.8 % against 39.9 / 61.3 % with no profile; docs/calibration.md;
#: ``python -m streamser.training.chain_mismatch`` measures the distances).
PROFILE_MISMATCH_DB = 10.0
#: Voiced windows of the live voice after which a profile's reading is first compared with it
#: (4 s of speech at a 0.5 s hop, the running reference's own warm-up). Judging earlier helps a
#: telephone-band profile on ASED's short sessions (3 windows: 59.2 % against 55.9 %), but a
#: 3-5 window mean is too unsteady: another speaker's profile (the test's actor 20 used by
#: actor 19) then measures 10.1-11.2 dB for a few windows and flips aside and back.
PROFILE_CHECK_WINDOWS = 8


def reference_mismatch_db(a: np.ndarray, b: np.ndarray) -> float:
    """How differently two references [n_mels] (natural-log power) are coloured: the RMS over
    bands of their difference in dB after removing its mean (so a level change counts zero)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"references must be 1-D of one length, got {x.shape}, {y.shape}")
    d = (x - y) * (10.0 / np.log(10))
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


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

    def value(self, min_windows: int | None = None) -> np.ndarray | None:
        """The reference [n_mels] (float32, a copy), or None before ``min_windows`` voiced
        windows (default: the config's)."""
        if self._n < (self.config.min_windows if min_windows is None else min_windows):
            return None
        return self._mean.astype(np.float32)
