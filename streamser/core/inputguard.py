"""Keep non-finite or absurd samples away from the resampler, the model and the smoothing.

Audio is float32 in [-1, 1]. A float WAV or a buggy driver can still hand us ``NaN``, ``inf`` or
values like ``1e30``: one such sample poisons a resampler's filter state, turns every frame of the
window into ``NaN`` and, through the smoothing, every frame after it. :func:`sanitize` replaces
every sample that is not finite or whose magnitude exceeds :data:`ABSURD_LEVEL` with silence
(0.0) and says how many it replaced, so the audio clock stays true and the caller can count,
report and reset its state.

Sans-I/O: numpy in, numpy out; callable from any thread (it keeps no state).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ABSURD_LEVEL", "sanitize"]

ABSURD_LEVEL = 64.0
"""Largest magnitude accepted as audio: 36 dB above float full scale (1.0). Float files may
clip a little over 1.0; nothing a microphone or a codec produces comes near 64."""


def sanitize(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Return ``(clean, replaced)``: ``samples`` with bad values set to 0.0, and their count.

    ``samples`` is any float array (e.g. ``[frames, channels]``); the input is never modified
    and is returned as is (no copy) when every value is fine.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~(np.abs(samples) <= ABSURD_LEVEL)  # NaN compares False, so it lands in `bad`
    replaced = int(np.count_nonzero(bad))
    if replaced == 0:
        return samples, 0
    clean = np.array(samples, copy=True)
    clean[bad] = 0.0
    return clean, replaced
