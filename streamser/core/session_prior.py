"""Session class-prior correction: stop one voice from being "sad" all the time (sans-I/O).

A model meeting a new voice, language or microphone mostly errs by a shift of the class prior:
on a corpus it never heard it calls most clips by one label (nEMO: "neutral" for 83 % of clips
under leave-one-corpus-out), while the ranking *within* the voice still carries the emotion.
This module keeps a running mean ``m`` of the model's probabilities over the session's *voiced*
windows and re-weights each window's probabilities by how much more often the model says a
label in this session than it should::

    m_hat = (n * m + n0 / C) / (n + n0)          # shrunk towards the uniform prior
    p'_c  ∝ p_c / m_hat_c ** strength

No labels and no enrolment are needed; it adapts while the person talks. It assumes the session
holds a mix of emotions over its horizon (``max_windows``): a session spent entirely in one
emotion is pulled towards the others, which the evaluation measures (``docs/model/MODEL2.md``).
Correction starts after ``min_windows`` voiced windows; before that the model's own
probabilities pass through. With ``strength`` 0 it is the identity. One owner thread (the
inference worker).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PriorConfig", "SessionPrior"]


@dataclass(frozen=True)
class PriorConfig:
    """Settings of the correction, in voiced windows (not seconds: the hop is the caller's).

    ``min_windows``: voiced windows before the correction starts; ``max_windows``: horizon of
    the running mean (cumulative up to it, then exponential with that time constant);
    ``shrink_windows``: pseudo-count of the uniform prior (``n0`` above); ``strength``: exponent
    of the correction, 0 (off) to 1 (full division by the session prior).
    """

    min_windows: int = 20
    max_windows: int = 480
    shrink_windows: float = 20.0
    strength: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_windows <= self.max_windows:
            raise ValueError(f"need 1 <= min_windows <= max_windows, got {self.min_windows}, "
                             f"{self.max_windows}")
        if not 0.0 <= self.strength <= 1.0 or self.shrink_windows < 0:
            raise ValueError(f"strength must be in [0, 1] and shrink_windows >= 0, got "
                             f"{self.strength}, {self.shrink_windows}")


class SessionPrior:
    """Running class prior of one voice and the corrected probabilities."""

    def __init__(self, n_labels: int, config: PriorConfig = PriorConfig()) -> None:
        if n_labels < 2:
            raise ValueError(f"need at least 2 labels, got {n_labels}")
        self.config = config
        self._mean = np.full(n_labels, 1.0 / n_labels)
        self._n = 0

    @property
    def windows(self) -> int:
        """Voiced windows that have entered the running mean."""
        return self._n

    @property
    def active(self) -> bool:
        """True once enough speech was heard to correct."""
        return self._n >= self.config.min_windows

    @property
    def prior(self) -> np.ndarray:
        """The shrunk session prior ``m_hat`` [C] (a copy)."""
        c = self.config
        uniform = 1.0 / len(self._mean)
        return (self._n * self._mean + c.shrink_windows * uniform) / (self._n + c.shrink_windows)

    def reset(self) -> None:
        """Forget the voice (a new person at the microphone)."""
        self._mean[:] = 1.0 / len(self._mean)
        self._n = 0

    def observe(self, probs: np.ndarray) -> None:
        """Add one voiced window's probabilities [C] to the running mean."""
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != self._mean.shape:
            raise ValueError(f"probabilities have shape {p.shape}, expected {self._mean.shape}")
        self._n += 1
        self._mean += (p - self._mean) / min(self._n, self.config.max_windows)

    def correct(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities [..., C] re-weighted by the current session prior (always applied)."""
        p = np.asarray(probs, dtype=np.float64)
        w = self.prior ** -self.config.strength
        q = p * w
        return q / q.sum(axis=-1, keepdims=True)

    def update(self, probs: np.ndarray, voiced: bool) -> np.ndarray | None:
        """Observe a window (when voiced); return corrected probabilities, or None while fewer
        than ``min_windows`` voiced windows were heard (use the model's own then)."""
        if voiced:
            self.observe(probs)
        if not self.active:
            return None
        return self.correct(probs)
