"""Canonical emotion labels and their fixed circumplex coordinates.

Every model and corpus maps to the eight RAVDESS categories below (a model may use a subset).
Arousal and valence are *derived* from the label probabilities as a probability-weighted mean of
fixed per-label coordinates on Russell's circumplex (Russell 1980; placements follow the common
reading of the categories, e.g. Scherer 2005): both axes run from -1 to +1.

| label     | valence | arousal |
| --------- | ------- | ------- |
| neutral   |  0.00   |  0.00   |
| calm      |  0.40   | -0.60   |
| happy     |  0.80   |  0.50   |
| sad       | -0.70   | -0.50   |
| angry     | -0.60   |  0.80   |
| fearful   | -0.60   |  0.60   |
| disgust   | -0.70   |  0.30   |
| surprised |  0.30   |  0.80   |

These are fixed, documented constants, not learned values: they stand until a dimensional model
exists. This module is pure Python and is safe to call from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CANONICAL_LABELS", "CIRCUMPLEX", "arousal_valence", "check_labels"]

CANONICAL_LABELS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

#: label -> (valence, arousal), both in [-1, 1].
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.4, -0.6),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.6),
    "disgust": (-0.7, 0.3),
    "surprised": (0.3, 0.8),
}


def check_labels(labels: Sequence[str]) -> list[str]:
    """Return the labels that are not canonical (empty list when all are known)."""
    return [label for label in labels if label not in CIRCUMPLEX]


def arousal_valence(labels: Sequence[str], probs: np.ndarray) -> tuple[float, float]:
    """Probability-weighted circumplex position ``(arousal, valence)`` of one probability vector.

    ``probs`` is a 1-D array aligned with ``labels``; it is renormalised, so a subset model still
    lands inside the unit square.
    """
    coords = np.array([CIRCUMPLEX[label] for label in labels], dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    total = float(p.sum())
    if total <= 0.0:
        return 0.0, 0.0
    valence, arousal = (p / total) @ coords
    return float(arousal), float(valence)
