"""Blocks in, emotion frames out: windowing, voice activity, model, smoothing (sans-I/O).

:class:`Analyzer` is the whole analysis with no threads, sockets or devices. The live engine, the
offline ``analyze`` command and the tests all drive this one class, so a file analysed offline
gives the same frames as the same audio played live (apart from wall time and latency).

Which thread: one owner at a time (the engine's inference worker). :meth:`set_hop`,
:meth:`set_smoothing`, :meth:`set_profile` and the enrolment methods must be called by that
owner; the engine forwards requests from other threads.

Calibration: with a voice profile set, each window's probabilities are recomputed from its
embedding through the profile's :class:`~streamser.core.adapt.Adaptation` (the frame says
which profile); while an enrolment is collected, the audio and each window's embedding also go
to its :class:`~streamser.core.enrolment.EnrolmentCollector`.

A speaker-relative model (contract ``speaker_reference``) hears each window relative to the
active profile's neutral reading when the profile carries one (method ``reference``), else, with
``voice_reference``, relative to the voice's running spectrum
(:class:`~streamser.core.voice_reference.VoiceReference`, fed by the model's own ``band_mean``
output of the voiced windows before it), else on its own.

Order of the adaptations of one window: speaker normalisation or the profile, then the session
class prior (:class:`~streamser.core.session_prior.SessionPrior`, which sees the adapted
probabilities and forgets the voice when the profile changes or after ``prior_idle_reset_s``
without a voiced window), then smoothing and the uncertain test.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from streamser.core.adapt import ActiveProfile
from streamser.core.contract import ModelSpec, Prediction, check_uncertain_below
from streamser.core.enrolment import EnrolmentCollector, EnrolmentConfig, EnrolmentResult
from streamser.core.frames import AudioBlock, Frame
from streamser.core.inputguard import sanitize
from streamser.core.labels import arousal_valence
from streamser.core.session_prior import SessionPrior
from streamser.core.smoothing import EmaSmoother
from streamser.core.speaker_norm import SpeakerNormalizer, SpeakerNormParams
from streamser.core.vad import VoiceActivity
from streamser.core.voice_reference import (
    PROFILE_CHECK_WINDOWS,
    PROFILE_MISMATCH_DB,
    VoiceReference,
    reference_mismatch_db,
)
from streamser.core.windowing import Window, Windower
from streamser.errors import ConfigError, ModelContractError

__all__ = ["MAX_HOP_S", "MIN_HOP_S", "Analyzer", "AnalyzerConfig"]

log = logging.getLogger(__name__)

MIN_HOP_S = 0.05
MAX_HOP_S = 2.0


@dataclass(frozen=True)
class AnalyzerConfig:
    """Analysis settings. Times in seconds.

    ``hop_s`` None takes the model's own hop (capped at 0.5 s for a live feel).
    ``voiced_threshold`` is the fraction of 30 ms frames in a window that must be speech for the
    window to count as voiced.
    """

    hop_s: float | None = None
    smoothing_s: float = 1.5
    voiced_threshold: float = 0.25
    vad_aggressiveness: int = 2
    vad_floor_dbfs: float = -60.0
    speaker_norm: bool = False
    """Re-score windows with the session's running speaker statistics (see speaker_norm.py)."""
    uncertain_below: float | None = None
    """Confidence below which a voiced frame is "uncertain" (no label); ``None`` takes the
    model's calibrated ``uncertain_below`` metadata (none for 1.x models), 0 turns it off."""
    profile: ActiveProfile | None = None
    """A voice profile to apply from the start (see :mod:`streamser.core.adapt`)."""
    session_prior: bool = False
    """Re-weight labels by how often the model says them for this voice (see session_prior.py)."""
    prior_idle_reset_s: float = 60.0
    """Seconds without a voiced window after which the session prior and the voice reference
    forget the voice."""
    voice_reference: bool = False
    """With a speaker-relative model, hear each window relative to the voice's running
    spectrum (see voice_reference.py); other models ignore it. Off by default: measured, a
    session's mixed-emotion spectrum lost 5 points on ASED (docs/model/MODEL2.md); a profile's
    neutral reading is used whenever a profile carries one."""


def check_hop(hop_s: float) -> float:
    """Validate a hop in seconds and return it; raise :class:`ConfigError` when out of range."""
    if not (MIN_HOP_S <= hop_s <= MAX_HOP_S) or not math.isfinite(hop_s):
        raise ConfigError(
            f"hop {hop_s} s is out of range; allowed is {MIN_HOP_S} to {MAX_HOP_S} s "
            "(e.g. --hop 0.25)."
        )
    return hop_s


def check_smoothing(tau_s: float) -> float:
    """Validate a smoothing time constant in seconds (0 disables smoothing)."""
    if not (0.0 <= tau_s <= 60.0) or not math.isfinite(tau_s):
        raise ConfigError(
            f"smoothing {tau_s} s is out of range; allowed is 0 (off) to 60 s (e.g. --smooth 1.5)."
        )
    return tau_s


class Analyzer:
    """Turn a 16 kHz mono block stream into :class:`Frame` objects."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], Prediction],
        spec: ModelSpec,
        config: AnalyzerConfig = AnalyzerConfig(),
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._predict = predict
        self.spec = spec
        hop_s = check_hop(config.hop_s if config.hop_s is not None else min(spec.hop_s, 0.5))
        self._windower = Windower(spec.window_samples, round(hop_s * spec.sample_rate))
        self._vad = VoiceActivity(config.vad_aggressiveness, config.vad_floor_dbfs)
        self._smoother = EmaSmoother(len(spec.labels), check_smoothing(config.smoothing_s))
        self._threshold = config.voiced_threshold
        below = config.uncertain_below if config.uncertain_below is not None else (
            spec.uncertain_below or 0.0)
        self._uncertain_below = check_uncertain_below(below, "the uncertain threshold")
        self._speaker: SpeakerNormalizer | None = None
        if config.speaker_norm:
            params = SpeakerNormParams.from_metadata(spec.extra, len(spec.labels),
                                                     spec.model_version)
            if params is None:
                raise ConfigError(
                    f"model {spec.model_version} carries no 'speaker_norm' metadata, so "
                    "speaker normalisation is not available; run without --speaker-norm."
                )
            self._speaker = SpeakerNormalizer(params)
        try:
            self._head = SpeakerNormParams.from_metadata(spec.extra, len(spec.labels),
                                                         spec.model_version)
        except ModelContractError:  # only needed for calibration; said when it is asked for
            self._head = None
        self._prior = SessionPrior(len(spec.labels)) if config.session_prior else None
        self._running_reference = config.voice_reference
        self._voice: VoiceReference | None = None  # made at the first band_mean (its n_mels)
        self._mismatch_db = math.nan  # profile reading vs running spectrum, dB
        self._prior_idle_reset = round(config.prior_idle_reset_s * spec.sample_rate)
        self._last_voiced_end: int | None = None
        self._profile: ActiveProfile | None = None
        self.set_profile(config.profile)
        self._enrolment: EnrolmentCollector | None = None
        self._monotonic = monotonic
        self._wall = wall
        self._seq = 0
        self._last_end: int | None = None
        self._bad_samples = 0

    @property
    def hop_s(self) -> float:
        """Current hop in seconds."""
        return self._windower.hop / self.spec.sample_rate

    @property
    def smoothing_s(self) -> float:
        """Current smoothing time constant in seconds."""
        return self._smoother.tau_s

    @property
    def samples_seen(self) -> int:
        """Audio clock in samples (gap fill included)."""
        return self._windower.samples_seen

    @property
    def skipped_windows(self) -> int:
        """Windows never analysed because their audio left the ring first (a stalled worker)."""
        return self._windower.skipped_windows

    @property
    def overwritten_samples(self) -> int:
        """Samples that fell out of the window ring before any window read them."""
        return self._windower.overwritten_samples

    @property
    def gap_samples(self) -> int:
        """Samples of silence inserted for gaps in the block stream (dropped capture blocks)."""
        return self._windower.gap_samples

    def set_hop(self, hop_s: float) -> None:
        """Change the hop (seconds); applies from the next window."""
        self._windower.set_hop(round(check_hop(hop_s) * self.spec.sample_rate))

    def set_smoothing(self, tau_s: float) -> None:
        """Change the smoothing time constant (seconds); keeps the current estimate."""
        self._smoother.tau_s = check_smoothing(tau_s)

    @property
    def calibratable(self) -> bool:
        """True when the model exposes what calibration needs (head metadata, embedding)."""
        return self._head is not None

    @property
    def profile(self) -> ActiveProfile | None:
        """The voice profile applied to every window, or None."""
        return self._profile

    def set_profile(self, profile: ActiveProfile | None) -> None:
        """Apply ``profile`` from the next window (None: the model's own probabilities).
        Raises ConfigError when the model cannot be calibrated."""
        if profile is not None:
            self._require_head("voice profiles cannot be applied")
        self._profile = profile
        self.forget_voice()

    @property
    def session_prior(self) -> SessionPrior | None:
        """The session class-prior correction, or None when it is off."""
        return self._prior

    def forget_voice(self) -> None:
        """Start the session prior and the voice reference afresh (a new person, or a profile
        applied or cleared)."""
        if self._prior is not None:
            self._prior.reset()
        if self._voice is not None:
            self._voice.reset()
        self._mismatch_db = math.nan

    def _require_head(self, consequence: str) -> None:
        if self._head is None:
            raise ConfigError(
                f"model {self.spec.model_version} carries no 'speaker_norm' head metadata, so "
                f"{consequence}; use a model exported by 'streamser export'."
            )

    @property
    def enrolment(self) -> EnrolmentCollector | None:
        """The enrolment being collected from this stream, or None."""
        return self._enrolment

    def start_enrolment(self, config: EnrolmentConfig) -> EnrolmentCollector:
        """Begin collecting an enrolment from the next sample on (replaces one in progress).
        Raises ConfigError when the model cannot be calibrated."""
        self._require_head("it cannot be calibrated to a voice")
        # a speaker-relative model's prompted windows are embedded again, relative to the
        # finished neutral reading (relative_enrolment), so their samples are kept
        keep = bool(self.spec.speaker_reference and config.emotions)
        self._enrolment = EnrolmentCollector(config, start_sample=self.samples_seen,
                                             keep_windows=keep)
        return self._enrolment

    def relative_enrolment(self, result: EnrolmentResult, batch: int = 32) -> EnrolmentResult:
        """``result`` with every kept window embedded again relative to its neutral reading
        (``result.reference``): what a ``reference_prototypes`` profile is built from. The
        result unchanged when the model is not speaker-relative, there is no reference, or the
        windows were not kept. Inference thread (runs the model: ~2 ms per window)."""
        if (not self.spec.speaker_reference or result.reference is None
                or set(result.samples) != set(result.embeddings)):
            return result
        embedded: dict[str, np.ndarray] = {}
        for label, windows in result.samples.items():
            parts = []
            for start in range(0, len(windows), batch):
                prediction = self._predict(windows[start:start + batch],  # type: ignore[call-arg]
                                           result.reference)
                if prediction.embedding is None:
                    return result
                parts.append(prediction.embedding)
            embedded[label] = np.concatenate(parts)
        return replace(result, embeddings=embedded)

    def stop_enrolment(self) -> EnrolmentCollector | None:
        """Stop feeding the enrolment; returns it (None when there was none)."""
        collector, self._enrolment = self._enrolment, None
        return collector

    @property
    def head(self) -> SpeakerNormParams | None:
        """The model's head and reference, from its metadata (None when absent)."""
        return self._head

    @property
    def bad_samples(self) -> int:
        """Input samples that were NaN, infinite or absurdly large and were replaced with silence
        (counted here or, before resampling, by the conditioner)."""
        return self._bad_samples

    def push(self, block: AudioBlock) -> list[Frame]:
        """Feed one block (any length, contiguous or after a gap); return completed frames.

        Non-finite or absurd samples (see :mod:`streamser.core.inputguard`) never reach the voice
        detector, the model or the smoothing: they become silence, are counted in
        :attr:`bad_samples`, and the smoothing starts afresh.
        """
        samples, bad = sanitize(block.samples)
        bad += block.bad_samples
        if bad:
            self._bad_samples += bad
            self._smoother.reset()
            block = AudioBlock(block.start_sample, samples, block.arrival, bad)
        seen = self._windower.samples_seen
        if block.start_sample > seen:
            gap = np.zeros(block.start_sample - seen, dtype=np.float32)
            self._vad.push(gap)
            self._vad.push(block.samples)
            if self._enrolment is not None:
                self._enrolment.push_audio(gap)
                self._enrolment.push_audio(block.samples)
        elif block.end_sample > seen:
            self._vad.push(block.samples[seen - block.start_sample :])
            if self._enrolment is not None:
                self._enrolment.push_audio(block.samples[seen - block.start_sample :])
        return [self._frame(w) for w in self._windower.push(block)]

    def flush(self) -> list[Frame]:
        """At end of stream: a last frame covering the unanalysed tail, if there is one."""
        return [self._frame(w) for w in self._windower.flush(self._monotonic())]

    def _idle_reset(self, window: Window, voiced: bool) -> None:
        """Forget the voice after ``prior_idle_reset_s`` without a voiced window."""
        if voiced:
            self._last_voiced_end = window.end_sample
        elif (self._last_voiced_end is not None
              and window.end_sample - self._last_voiced_end > self._prior_idle_reset):
            self.forget_voice()
            self._last_voiced_end = None

    @property
    def _profile_reading(self) -> np.ndarray | None:
        """The active profile's neutral reading (its reference spectrum), or None."""
        return None if self._profile is None else self._profile.adaptation.reference

    def _reference(self) -> tuple[np.ndarray | None, str | None]:
        """The voice reference to feed a speaker-relative model and where it comes from:
        the profile's neutral reading, else the running spectrum, else none.

        While a profile's reading and the voice's running spectrum (tracked whenever a profile
        carries a reading, judged from :data:`PROFILE_CHECK_WINDOWS` voiced windows on) differ
        by more than :data:`PROFILE_MISMATCH_DB`, the profile is set aside and the analyzer
        runs as without one (the running spectrum with ``voice_reference``, else the window
        alone; frames say ``profile: null``): a profile recorded through a telephone band and
        used on a full-band microphone, or the reverse, is worse than none.
        :attr:`profile_reference_mismatch_db` says by how much they differ.
        """
        if not self.spec.speaker_reference:
            return None, None
        running = self._voice.value() if self._voice is not None else None
        profile = self._profile_reading
        if profile is not None:
            assert self._profile is not None  # for the type checker: a reading has a profile
            heard = self._voice.value(PROFILE_CHECK_WINDOWS) if self._voice is not None else None
            if heard is None:
                return profile, "profile"
            mismatch = reference_mismatch_db(profile, heard)
            if (mismatch > PROFILE_MISMATCH_DB) != (self._mismatch_db > PROFILE_MISMATCH_DB):
                log.warning(
                    "profile %r: its reading and this microphone's voice spectrum differ by "
                    "%.1f dB (allowed %.0f dB): %s", self._profile.name, mismatch,
                    PROFILE_MISMATCH_DB,
                    "setting the profile aside; enrol again with this microphone"
                    if mismatch > PROFILE_MISMATCH_DB
                    else "using the profile's reading again")
            self._mismatch_db = mismatch
            if mismatch <= PROFILE_MISMATCH_DB:
                return profile, "profile"
        if not self._running_reference:  # as without a profile: the window alone
            return None, None
        return running, None if running is None else "session"

    @property
    def profile_reference_mismatch_db(self) -> float | None:
        """How differently the active profile's reading and the live voice are coloured (dB,
        :func:`~streamser.core.voice_reference.reference_mismatch_db`), or None before both
        are known. Above :data:`PROFILE_MISMATCH_DB` the profile's reading is not used."""
        return None if math.isnan(self._mismatch_db) else self._mismatch_db

    def _frame(self, window: Window) -> Frame:
        spec = self.spec
        rate = spec.sample_rate
        voiced_prob = self._vad.speech_fraction(window.start_sample, window.end_sample)
        voiced = voiced_prob >= self._threshold
        self._idle_reset(window, voiced)
        reference, source = self._reference()
        if reference is not None:
            prediction = self._predict(window.samples[np.newaxis, :], reference)  # type: ignore[call-arg]
        else:  # plain callables (bench, evaluation) take the window only
            prediction = self._predict(window.samples[np.newaxis, :])
        watch = self._profile_reading is not None
        if (self._running_reference or watch) and prediction.band_mean is not None:
            if self._voice is None:
                self._voice = VoiceReference(prediction.band_mean.shape[1])
            self._voice.observe(prediction.band_mean[0], voiced)
        probs = prediction.probs[0].astype(np.float64)
        normalised = False
        embedding = prediction.embedding
        if self._speaker is not None and embedding is not None:
            rescored = self._speaker.update(embedding[0], voiced)
            if rescored is not None:
                probs, normalised = rescored, True
        profile = self._profile if embedding is not None else None
        if watch and source != "profile":
            # Its reading is not this microphone's (see _reference): the prototypes were heard
            # relative to that reading, so the profile is set aside, not half applied.
            profile = None
        if profile is not None and self._head is not None and embedding is not None:
            probs, normalised = profile.adaptation.probs(self._head, embedding[:1])[0], False
        prior_applied = False
        if self._prior is not None:
            corrected = self._prior.update(probs, voiced)
            if corrected is not None:
                probs, prior_applied = corrected, True
        if self._enrolment is not None and embedding is not None:
            self._enrolment.push_window(
                embedding[0], voiced, window.start_sample, window.end_sample,
                None if prediction.band_mean is None else prediction.band_mean[0],
                window.samples)
        dt = (window.end_sample - (self._last_end or 0)) / rate
        self._last_end = window.end_sample
        smoothed = self._smoother.update(probs, dt, voiced)
        top = int(np.argmax(smoothed))
        uncertain = voiced and float(smoothed[top]) < self._uncertain_below
        arousal, valence = arousal_valence(spec.labels, smoothed)
        real = window.samples[window.padded :]
        rms = float(np.sqrt(np.mean(real.astype(np.float64) ** 2))) if len(real) else 0.0
        self._seq += 1
        return Frame(
            seq=self._seq,
            start_s=window.start_sample / rate,
            end_s=window.end_sample / rate,
            wall_time=self._wall(),
            labels=spec.labels,
            probs=tuple(float(p) for p in probs),
            smoothed=tuple(float(p) for p in smoothed),
            top_label=spec.labels[top] if voiced and not uncertain else None,
            confidence=float(smoothed[top]),
            arousal=arousal,
            valence=valence,
            voiced=voiced,
            voiced_prob=voiced_prob,
            level_dbfs=20.0 * math.log10(max(rms, 1e-10)),
            latency_ms=(self._monotonic() - window.arrival) * 1000.0,
            model_version=spec.model_version,
            speaker_norm=normalised,
            uncertain=uncertain,
            profile=None if profile is None else profile.name,
            session_prior=prior_applied,
            voice_reference=source,
        )
