"""Causal exponential smoothing of probability vectors with a time constant in seconds.

``alpha = 1 - exp(-dt / tau)`` for a step of ``dt`` seconds, so the smoothing means the same
thing at any hop. Only voiced windows update the state; an unvoiced window holds the last
estimate (silence is not an emotion). ``tau = 0`` disables smoothing. Sans-I/O; one owner thread.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["EmaSmoother"]


class EmaSmoother:
    """Exponential moving average over successive probability vectors."""

    def __init__(self, n_labels: int, tau_s: float) -> None:
        if tau_s < 0 or not math.isfinite(tau_s):
            raise ValueError(f"smoothing time constant must be >= 0 seconds, got {tau_s}")
        self.tau_s = tau_s
        self._state: np.ndarray | None = None
        self._uniform = np.full(n_labels, 1.0 / n_labels, dtype=np.float64)

    def reset(self) -> None:
        """Forget the history (e.g. at a new speaker or stream)."""
        self._state = None

    def update(self, probs: np.ndarray, dt_s: float, voiced: bool) -> np.ndarray:
        """Advance by one window ``dt_s`` seconds after the previous one; return the estimate."""
        if not voiced:
            return self._uniform.copy() if self._state is None else self._state.copy()
        p = np.asarray(probs, dtype=np.float64)
        if self._state is None or self.tau_s == 0:
            self._state = p.copy()
        else:
            alpha = 1.0 - math.exp(-max(dt_s, 0.0) / self.tau_s)
            self._state = self._state + alpha * (p - self._state)
        return self._state.copy()
