"""Collect an enrolment: the person's voiced windows, checked for quality (sans-I/O).

While someone reads the neutral passage (and, optionally, one prompted sentence per emotion),
the owner feeds two streams into an :class:`EnrolmentCollector`:

- :meth:`~EnrolmentCollector.push_audio` — the 16 kHz samples, for the speech clock (the
  engine's WebRTC voice detector on 30 ms frames), the speech level, clipping and pitch;
- :meth:`~EnrolmentCollector.push_window` — each analysis window's model embedding and voiced
  flag (from the analyzer), under the label being read (``"neutral"`` for the passage); for a
  speaker-relative model also its ``band_mean`` and, with ``keep_windows``, its samples, so the
  owner can embed the prompted windows again relative to the finished neutral reading
  (:meth:`streamser.core.analyzer.Analyzer.relative_enrolment`).

Speech time is the reading time: from one voiced 30 ms frame to the next, with pauses up to
``max_pause_s`` counted and longer silences not (so 20 s of reading counts about 20 s, and a
coffee break counts nothing). :meth:`~EnrolmentCollector.finish` returns an
:class:`EnrolmentResult` or raises :class:`EnrolmentError` listing what went wrong, in words a
user can act on: no speech, too short, too quiet, clipped, more than one voice.

"More than one voice" is judged from pitch (YIN, :mod:`streamser.prosody`): the median pitch of
each second of speech is split into two groups; two groups at least ``voice_split_semitones``
apart, each holding at least ``min_voice_share`` of the speech, are two voices. It catches a man
and a woman (about an octave apart), not two similar voices.

One owner thread (the inference worker); no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from streamser.core.frames import SAMPLE_RATE
from streamser.core.prosody import ProsodyTracker
from streamser.core.vad import FRAME_SAMPLES, VoiceActivity
from streamser.errors import StreamserError

__all__ = [
    "EnrolmentCollector",
    "EnrolmentConfig",
    "EnrolmentError",
    "EnrolmentEvent",
    "EnrolmentIssue",
    "EnrolmentProgress",
    "EnrolmentResult",
]

_FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class EnrolmentConfig:
    """Targets and quality limits. Times in seconds, levels in dBFS."""

    target_speech_s: float = 20.0
    """Speech time after which the enrolment is complete."""
    min_speech_s: float = 8.0
    """An enrolment stopped earlier than this is "too short"."""
    max_pause_s: float = 1.0
    """Pauses up to this long count as reading time."""
    quiet_dbfs: float = -50.0
    """Median level of the voiced 30 ms frames below this is "too quiet"."""
    max_clipped_fraction: float = 0.002
    """Share of voiced samples at full scale (|x| >= 0.99) above this is "clipped"."""
    voice_split_semitones: float = 6.0
    min_voice_share: float = 0.2
    emotions: tuple[str, ...] = ()
    """Emotions prompted after the neutral passage, one sentence each (labels)."""
    emotion_speech_s: float = 3.0
    """Speech time collected for each prompted emotion."""

    def __post_init__(self) -> None:
        if not 0 < self.min_speech_s <= self.target_speech_s:
            raise ValueError(f"need 0 < min_speech_s ({self.min_speech_s}) <= target_speech_s "
                             f"({self.target_speech_s})")
        if "neutral" in self.emotions or self.emotion_speech_s <= 0:
            raise ValueError("prompted emotions exclude neutral and need emotion_speech_s > 0")

    @property
    def phases(self) -> tuple[tuple[str, float], ...]:
        """(label, speech seconds) in reading order: the passage, then each emotion."""
        return (("neutral", self.target_speech_s),
                *((e, self.emotion_speech_s) for e in self.emotions))


@dataclass(frozen=True)
class EnrolmentIssue:
    """One reason an enrolment cannot be used: a stable ``code`` and a sentence for people."""

    code: str
    message: str


class EnrolmentError(StreamserError):
    """The enrolment cannot be used; ``issues`` says why (the message joins them)."""

    def __init__(self, issues: list[EnrolmentIssue]) -> None:
        super().__init__(" ".join(i.message for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class EnrolmentProgress:
    """A snapshot for meters: seconds of speech so far (all phases), the total target, the
    latest block level, and the phase being read (``neutral`` = the passage, or an emotion;
    None when all are done)."""

    speech_s: float
    target_s: float
    level_dbfs: float
    voiced_windows: int
    phase: str | None = "neutral"

    @property
    def fraction(self) -> float:
        """0..1 of the target."""
        return min(1.0, self.speech_s / self.target_s)

    @property
    def done(self) -> bool:
        """True once the target speech time was reached."""
        return self.speech_s >= self.target_s

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (the ``enrolment`` progress event's body)."""
        return {"speech_s": round(self.speech_s, 2), "target_s": self.target_s,
                "fraction": round(self.fraction, 3), "level_dbfs": round(self.level_dbfs, 1),
                "voiced_windows": self.voiced_windows, "phase": self.phase}


@dataclass(frozen=True)
class EnrolmentEvent:
    """What happened to an enrolment, for the ``enrolment`` websocket message and the GUI.

    ``kind``: ``started``, ``progress``, ``done`` (``message`` names the saved profile),
    ``failed`` (``issues`` say why) or ``cancelled``.
    """

    kind: str
    profile: str
    progress: EnrolmentProgress | None = None
    issues: tuple[EnrolmentIssue, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready body."""
        return {"event": self.kind, "profile": self.profile,
                "progress": None if self.progress is None else self.progress.to_dict(),
                "issues": [{"code": i.code, "message": i.message} for i in self.issues],
                "message": self.message}


@dataclass(frozen=True, eq=False)
class EnrolmentResult:
    """A usable enrolment: window embeddings per label, and what was measured on the way."""

    embeddings: Mapping[str, np.ndarray] = field(repr=False)
    speech_s: float
    level_dbfs: float
    clipped_fraction: float
    pitch_hz: float
    reference: np.ndarray | None = field(default=None, repr=False)
    """Mean ``band_mean`` [n_mels] of the neutral phase's voiced windows (a speaker-relative
    model), else None."""
    samples: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)
    """The voiced windows' samples [n, window] per label, in the order of ``embeddings``
    (only when the collector kept them; never saved in a profile)."""

    @property
    def windows(self) -> int:
        """Voiced windows collected, all labels."""
        return sum(len(v) for v in self.embeddings.values())


class EnrolmentCollector:
    """Accumulates one enrolment; see the module docstring."""

    def __init__(self, config: EnrolmentConfig | None = None, start_sample: int = 0,
                 keep_windows: bool = False) -> None:
        """``keep_windows``: also keep each voiced window's samples (a speaker-relative model's
        prompted enrolment; about 128 kB per 2 s window, a few MB per enrolment)."""
        self.config = config or EnrolmentConfig()
        self._keep_windows = keep_windows
        self._samples: dict[str, list[np.ndarray]] = {}
        self._start = start_sample  # stream index of the first sample pushed
        self._phases = self.config.phases
        self._phase = 0
        self._phase_speech = 0.0
        self._bounds = [start_sample]  # stream index where each phase began (and the last ended)
        self._vad = VoiceActivity()
        self._pitch = ProsodyTracker()
        self._pending = np.zeros(0, dtype=np.float32)  # samples of the frame being decided
        self._frames = 0  # 30 ms frames examined
        self._last_voiced: int | None = None  # index of the last voiced frame
        self._speech_s = 0.0
        self._voiced_levels: list[float] = []
        self._voiced_samples = 0
        self._clipped = 0
        self._f0: list[tuple[float, float]] = []  # (time s, f0 Hz) of voiced pitch frames
        self._level = -120.0
        self._embeddings: dict[str, list[np.ndarray]] = {}
        self._band_means: list[np.ndarray] = []  # neutral phase, speaker-relative models

    # -- feeding ----------------------------------------------------------------------------
    def push_audio(self, samples: np.ndarray) -> None:
        """Next contiguous 16 kHz mono samples (float32 in [-1, 1]), any block size."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(x):
            return
        self._level = _dbfs(x)
        self._vad.push(x)
        pitch = self._pitch.push(x)
        self._f0.extend((float(t), float(f)) for t, f in zip(pitch.times_s, pitch.f0_hz,
                                                             strict=True) if f == f)
        data = np.concatenate([self._pending, x]) if len(self._pending) else x
        while self._frames < self._vad.frames_decided and len(data) >= FRAME_SAMPLES:
            frame, data = data[:FRAME_SAMPLES], data[FRAME_SAMPLES:]
            start = self._frames * FRAME_SAMPLES
            if self._vad.voiced_fraction(start, start + FRAME_SAMPLES) > 0:
                self._on_voiced(frame)
            self._frames += 1
        self._pending = np.array(data, dtype=np.float32)

    def _on_voiced(self, frame: np.ndarray) -> None:
        gap = _FRAME_S
        if self._last_voiced is not None:
            pause = (self._frames - self._last_voiced) * _FRAME_S  # one frame when contiguous
            gap = pause if pause <= self.config.max_pause_s + _FRAME_S else _FRAME_S
        self._speech_s += gap
        self._last_voiced = self._frames
        if self._phase < len(self._phases):
            self._phase_speech += gap
            if self._phase_speech >= self._phases[self._phase][1]:
                self._phase += 1
                self._phase_speech = 0.0
                self._bounds.append(self._start + (self._frames + 1) * FRAME_SAMPLES)
        self._voiced_levels.append(_dbfs(frame))
        self._voiced_samples += len(frame)
        self._clipped += int(np.count_nonzero(np.abs(frame) >= 0.99))

    def push_window(self, embedding: np.ndarray, voiced: bool, start_sample: int | None = None,
                    end_sample: int | None = None, band_mean: np.ndarray | None = None,
                    samples: np.ndarray | None = None) -> None:
        """One analysis window's embedding [D] (and a speaker-relative model's ``band_mean``
        [n_mels], and its ``samples`` when the collector keeps windows), kept when ``voiced``.

        With the window's stream position (``start_sample`` of its first real sample,
        ``end_sample``) it is filed under the phase its middle falls in, and dropped when it
        began before that phase (it holds the previous phase's audio, or audio from before the
        enrolment) or lies after the last phase. Without a position it goes to the phase being
        read now.
        """
        if not voiced:
            return
        if start_sample is None or end_sample is None:
            phase = self._phase
        else:
            middle = (start_sample + end_sample) // 2
            phase = next((i for i in range(len(self._bounds) - 1, -1, -1)
                          if middle >= self._bounds[i]), -1)
            if phase < 0 or start_sample < self._bounds[phase]:
                return
        if phase >= len(self._phases):
            return
        label = self._phases[phase][0]
        self._embeddings.setdefault(label, []).append(
            np.asarray(embedding, dtype=np.float32).copy())
        if self._keep_windows and samples is not None:
            self._samples.setdefault(label, []).append(
                np.asarray(samples, dtype=np.float32).copy())
        if band_mean is not None and label == "neutral" and np.isfinite(band_mean).all():
            self._band_means.append(np.asarray(band_mean, dtype=np.float64).copy())

    # -- reading ----------------------------------------------------------------------------
    @property
    def progress(self) -> EnrolmentProgress:
        """Where the enrolment stands."""
        total = sum(t for _, t in self._phases)
        done = sum(t for _, t in self._phases[: self._phase]) + self._phase_speech
        phase = self._phases[self._phase][0] if self._phase < len(self._phases) else None
        return EnrolmentProgress(min(done, total), total, self._level,
                                 sum(len(v) for v in self._embeddings.values()), phase)

    def issues(self) -> list[EnrolmentIssue]:
        """What would make :meth:`finish` fail now (empty when it would succeed)."""
        cfg = self.config
        voiced_windows = len(self._embeddings.get("neutral", ()))
        if self._speech_s < 1.0 or voiced_windows == 0:
            return [EnrolmentIssue("no_speech", "No speech was heard: check that the right "
                                   "microphone is selected and not muted, then read the passage "
                                   "aloud.")]
        out = []
        neutral_s = self._speech_s if self._phase == 0 else cfg.target_speech_s
        if neutral_s < cfg.min_speech_s:
            out.append(EnrolmentIssue(
                "too_short", f"Only {neutral_s:.0f} s of speech were heard; at least "
                f"{cfg.min_speech_s:.0f} s are needed (aim for {cfg.target_speech_s:.0f} s): "
                "read the whole passage."))
        level = float(np.median(self._voiced_levels)) if self._voiced_levels else -120.0
        if level < cfg.quiet_dbfs:
            out.append(EnrolmentIssue(
                "too_quiet", f"Your voice arrived at {level:.0f} dBFS, below the "
                f"{cfg.quiet_dbfs:.0f} dBFS needed: speak closer to the microphone or raise its "
                "input gain."))
        clipped = self._clipped / max(1, self._voiced_samples)
        if clipped > cfg.max_clipped_fraction:
            out.append(EnrolmentIssue(
                "clipped", f"The recording is clipped ({100 * clipped:.1f} % of speech samples "
                "at full scale): lower the microphone's input gain or move back a little."))
        if self._several_voices():
            out.append(EnrolmentIssue(
                "several_voices", "More than one voice was heard: enrol one person at a time, "
                "in a quiet spot."))
        return out

    def _several_voices(self) -> bool:
        """Two pitch groups far apart, each a fair share of the speech (per-second medians)."""
        if len(self._f0) < 20:
            return False
        times = np.array([t for t, _ in self._f0])
        semis = 12.0 * np.log2(np.array([f for _, f in self._f0]) / 100.0)
        seconds = np.floor(times).astype(int)
        medians = np.array([np.median(semis[seconds == s]) for s in np.unique(seconds)
                            if np.count_nonzero(seconds == s) >= 5])
        if len(medians) < 4:
            return False
        values = np.sort(medians)
        best, split = math.inf, 0
        for k in range(1, len(values)):  # 1-D two-means: the split with the least spread
            lo, hi = values[:k], values[k:]
            cost = float(((lo - lo.mean()) ** 2).sum() + ((hi - hi.mean()) ** 2).sum())
            if cost < best:
                best, split = cost, k
        lo, hi = values[:split], values[split:]
        spread = math.sqrt((lo.var() + hi.var()) / 2.0) + 0.5  # semitones; 0.5 = pitch jitter
        cfg = self.config
        return (hi.mean() - lo.mean() >= cfg.voice_split_semitones
                and (hi.mean() - lo.mean()) / spread >= 3.5
                and min(len(lo), len(hi)) >= max(3, cfg.min_voice_share * len(values)))

    def finish(self) -> EnrolmentResult:
        """The enrolment, or :class:`EnrolmentError` naming every problem found."""
        problems = self.issues()
        if problems:
            raise EnrolmentError(problems)
        f0 = np.array([f for _, f in self._f0]) if self._f0 else np.array([np.nan])
        return EnrolmentResult(
            embeddings={k: np.stack(v) for k, v in self._embeddings.items()},
            speech_s=self._speech_s,
            level_dbfs=float(np.median(self._voiced_levels)),
            clipped_fraction=self._clipped / max(1, self._voiced_samples),
            pitch_hz=float(np.nanmedian(f0)) if np.isfinite(f0).any() else float("nan"),
            reference=np.mean(self._band_means, axis=0) if self._band_means else None,
            samples={k: np.stack(v) for k, v in self._samples.items()
                     if len(v) == len(self._embeddings.get(k, ()))},
        )


def _dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(max(rms, 1e-10))
