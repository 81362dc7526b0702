"""Data passed between pipeline stages: audio blocks in, emotion frames out.

Both are frozen dataclasses, safe to hand from one thread to another. Times on the *audio clock*
are seconds since the stream's first sample, computed from sample counts; ``wall_time`` is Unix
time stamped once, when the frame is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLE_RATE", "SCHEMA_VERSION", "AudioBlock", "Frame"]

#: The one sample rate of the analysis (Hz): every source is converted to it, every model
#: must declare it (see :mod:`streamser.core.contract`).
SAMPLE_RATE = 16_000

#: Version of the frame / wire schema. Bump the major part on any incompatible change.
SCHEMA_VERSION = "1.0"


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """A block of :data:`SAMPLE_RATE` mono float32 audio, as delivered by a source.

    ``start_sample`` is the index of ``samples[0]`` in the stream (samples since stream start);
    ``arrival`` is ``time.monotonic()`` when the block reached the process (seconds), used only
    for latency measurement. ``bad_samples`` counts input samples that were not finite or absurdly
    large and were replaced with silence before this block was made (see
    :mod:`streamser.core.inputguard`).
    """

    start_sample: int
    samples: np.ndarray
    arrival: float
    bad_samples: int = 0

    @property
    def end_sample(self) -> int:
        """Index one past the block's last sample."""
        return self.start_sample + len(self.samples)


@dataclass(frozen=True)
class Frame:
    """The emotion estimate for one analysis window.

    ``start_s``/``end_s`` are audio-clock seconds (from sample counts). ``probs`` are the model's
    raw probabilities for this window, ``smoothed`` the causal EMA of them; both align with
    ``labels``. ``top_label``/``confidence``/``arousal``/``valence`` come from ``smoothed``.
    When ``voiced`` is false the window holds no speech: the probabilities are still reported but
    are not an emotion reading, and ``top_label`` is ``None``. ``latency_ms`` runs from the
    arrival of the window's last sample to the moment the frame was made. ``speaker_norm`` is
    true when ``probs`` were re-scored with the session's speaker statistics
    (:mod:`streamser.core.speaker_norm`). ``uncertain`` is true for a voiced window whose
    ``confidence`` is below the model's calibrated threshold (``uncertain_below`` in the model
    metadata): the model does not know, so ``top_label`` is ``None`` rather than a guess.
    """

    seq: int
    start_s: float
    end_s: float
    wall_time: float
    labels: tuple[str, ...]
    probs: tuple[float, ...]
    smoothed: tuple[float, ...]
    top_label: str | None
    confidence: float
    arousal: float
    valence: float
    voiced: bool
    voiced_prob: float
    level_dbfs: float
    latency_ms: float
    model_version: str
    speaker_norm: bool = False
    uncertain: bool = False
    profile: str | None = None
    """The voice profile whose adaptation produced ``probs`` (None: none applied)."""
    session_prior: bool = False
    """True when ``probs`` were re-weighted by the session's class prior
    (:mod:`streamser.core.session_prior`)."""
    voice_reference: str | None = None
    """What a speaker-relative model heard this window relative to: ``"session"`` (the
    voice's running spectrum, :mod:`streamser.core.voice_reference`), ``"profile"`` (an
    enrolment's), or None (the window alone: other models, or too little speech yet)."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (the ``frame`` message body of the wire format)."""
        return {
            "seq": self.seq,
            "start": round(self.start_s, 4),
            "end": round(self.end_s, 4),
            "wall_time": round(self.wall_time, 4),
            "probs": {k: round(v, 5) for k, v in zip(self.labels, self.probs, strict=True)},
            "smoothed": {k: round(v, 5) for k, v in zip(self.labels, self.smoothed, strict=True)},
            "top": self.top_label,
            "confidence": round(self.confidence, 5),
            "arousal": round(self.arousal, 5),
            "valence": round(self.valence, 5),
            "voiced": self.voiced,
            "voiced_prob": round(self.voiced_prob, 4),
            "level_dbfs": round(self.level_dbfs, 2),
            "latency_ms": round(self.latency_ms, 3),
            "model_version": self.model_version,
            "speaker_norm": self.speaker_norm,
            "uncertain": self.uncertain,
            "profile": self.profile,
            "session_prior": self.session_prior,
            "voice_reference": self.voice_reference,
        }
