"""The live engine: a source's thread feeds a bounded capture queue; one inference worker turns
the audio into frames and publishes them on two fan-out buses.

Threads and hand-offs::

    PortAudio / reader thread --RawBlock--> capture queue (drop-oldest, counted)
        --> "streamser-inference" thread: Conditioner -> Analyzer -> model
                --AudioBlock--> engine.audio bus   (meters, recorders)
                --Frame-------> engine.frames bus  (terminal, websocket, GUI, files)

Nothing downstream can stall capture: every subscription is its own bounded queue. Control
requests (:data:`~streamser.core.config.Control`: hop, smoothing) from any thread are validated
and folded into the engine's :class:`~streamser.core.config.LiveSettings` at once (latest
wins, so nothing can be dropped), published on ``engine.configs``, and applied by the worker
before its next block.

Lifecycle: :meth:`Engine.start` once; :meth:`Engine.stop` from any thread, any number of times —
it stops the source, then the worker (joined with a timeout), then closes the buses.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamser.bus import BoundedQueue, Bus, Overflow
from streamser.calibration.profiles import Profile, ProfileStore, check_name
from streamser.core.adapt import ActiveProfile
from streamser.core.analyzer import Analyzer, AnalyzerConfig, check_hop, check_smoothing
from streamser.core.conditioning import Conditioner, RawBlock
from streamser.core.config import (
    CancelEnrolment,
    Control,
    LiveSettings,
    SetHop,
    SetSmoothing,
    StartEnrolment,
)
from streamser.core.contract import ModelSpec
from streamser.core.enrolment import (
    EnrolmentCollector,
    EnrolmentConfig,
    EnrolmentError,
    EnrolmentEvent,
)
from streamser.core.frames import SAMPLE_RATE, AudioBlock, Frame
from streamser.errors import ConfigError, ProfileError, StreamserError
from streamser.model import ModelRunner
from streamser.sources import Source

__all__ = ["Engine", "EngineConfig", "EngineState", "EngineStats"]

log = logging.getLogger(__name__)


class EngineState(enum.Enum):
    """Where the engine is in its life."""

    IDLE = "idle"
    RUNNING = "running"
    FINISHED = "finished"  # the source ended (end of file / stdin)
    FAILED = "failed"  # the source or the model failed; see EngineStats.error
    STOPPED = "stopped"  # stop() was called


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings: the analysis, the capture and control queues' sizes, and how long a
    real-time source may deliver nothing before a warning (seconds)."""

    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    capture_blocks: int = 256
    stall_timeout_s: float = 3.0
    max_audio_s: float | None = None
    """End the stream after this much audio (seconds of the audio clock): ``--seconds`` for a
    source read as fast as possible, where wall time says nothing."""
    profiles_dir: Path | None = None
    """Where enrolments are saved (None: :func:`streamser.calibration.profiles.profiles_dir`)."""
    progress_interval_s: float = 0.25
    """Audio seconds between two enrolment ``progress`` events."""


@dataclass(frozen=True)
class EngineStats:
    """A snapshot for status displays; times in seconds.

    ``error`` says why the engine failed (``state`` is FAILED); ``warning`` is a passing
    problem while it runs (a stalled device). The counters are totals since start:
    ``dropped_blocks`` capture blocks lost to the full capture queue, ``skipped_windows``
    windows whose audio
    left the ring before they were analysed, ``overwritten_samples`` samples overwritten
    unread, ``bad_samples`` NaN/inf/absurd input samples replaced with silence,
    ``input_overflows`` times the device itself reported lost input.
    """

    state: EngineState
    source: str
    blocks: int
    dropped_blocks: int
    gap_s: float
    audio_s: float
    frames: int
    hop_s: float
    smoothing_s: float
    model_version: str
    error: str | None
    bad_samples: int = 0
    warning: str | None = None
    voiced_frames: int = 0
    skipped_windows: int = 0
    overwritten_samples: int = 0
    input_overflows: int = 0
    profile: str | None = None
    enrolling: str | None = None

    def counters(self) -> dict[str, int]:
        """The engine's loss counters by name (what ``status`` reports under ``engine``)."""
        return {"capture_dropped_blocks": self.dropped_blocks,
                "skipped_windows": self.skipped_windows,
                "overwritten_samples": self.overwritten_samples,
                "gap_samples": round(self.gap_s * SAMPLE_RATE),
                "bad_samples": self.bad_samples,
                "input_overflows": self.input_overflows}


class Engine:
    """Run one source through one model; publish frames and audio."""

    def __init__(self, runner: ModelRunner, source: Source,
                 config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.runner = runner
        self.source = source
        self.spec: ModelSpec = runner.spec
        self.frames: Bus[Frame] = Bus("frames")
        self.audio: Bus[AudioBlock] = Bus("audio")
        self.configs: Bus[LiveSettings] = Bus("configs")
        self.enrolment: Bus[EnrolmentEvent] = Bus("enrolment")
        self.capture: BoundedQueue[RawBlock] = BoundedQueue(
            "capture", self.config.capture_blocks, Overflow.DROP_OLDEST
        )
        self._analyzer = Analyzer(runner.predict, runner.spec, self.config.analyzer)
        self._conditioner = Conditioner(source.rate)
        self._settings = LiveSettings(self._analyzer.hop_s, self._analyzer.smoothing_s,
                                      self.config.analyzer.speaker_norm,
                                      self.config.analyzer.profile,
                                      self.config.analyzer.session_prior)
        self._enrol_request: StartEnrolment | CancelEnrolment | None = None
        self._enrolling: StartEnrolment | None = None  # the enrolment the worker collects
        self._progress_at = 0.0  # speech seconds of the last progress event
        self._applied = self._settings  # what the worker's analyzer runs with
        self._control_lock = threading.Lock()
        self._state = EngineState.IDLE
        self._error: str | None = None
        self._warning: str | None = None
        self._last_block = time.monotonic()  # when the worker last got audio
        self._frames_out = 0
        self._voiced_out = 0
        self._bad_logged_at = -1e9
        self._stop_requested = threading.Event()
        self.finished = threading.Event()
        self._worker: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        """Open the source and start the inference worker. Raises StreamserError on failure."""
        with self._lifecycle:
            if self._state is not EngineState.IDLE:
                raise RuntimeError(f"engine already {self._state.value}; make a new one")
            self._state = EngineState.RUNNING
            try:
                self.source.start(self.capture)
            except StreamserError as exc:
                self._state = EngineState.FAILED
                self._error = str(exc)
                self.finished.set()
                raise
            self._last_block = time.monotonic()
            self._worker = threading.Thread(target=self._run, name="streamser-inference",
                                            daemon=True)
            self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop source, then worker, then buses. Idempotent; safe from any thread."""
        with self._lifecycle:
            self._stop_requested.set()
            self.source.stop()
            worker = self._worker  # None when the source never opened: nothing to join
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout)
                if worker.is_alive():
                    log.warning("inference worker did not stop within %.1f s", timeout)
            if self._state in (EngineState.IDLE, EngineState.RUNNING):
                self._state = EngineState.STOPPED
            self.capture.close()
            self.frames.close()
            self.audio.close()
            self.configs.close()
            self.enrolment.close()
            self.finished.set()

    @property
    def stalled(self) -> bool:
        """True while a real-time source has delivered nothing for ``stall_timeout_s`` seconds
        (a suspended or frozen device that did not report an error; any thread)."""
        return (self._state is EngineState.RUNNING and self.source.realtime
                and time.monotonic() - self._last_block > self.config.stall_timeout_s)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine finished (source ended, failed, or stopped)."""
        return self.finished.wait(timeout)

    def control(self, request: Control) -> None:
        """Change a setting (any thread); raises ConfigError for an out-of-range value.

        The new :class:`LiveSettings` is in force at once for :attr:`settings` and is published
        on :attr:`configs`; the worker applies it before its next block (a hop from the next
        window). Requests never queue up: the latest value wins.
        """
        if isinstance(request, (StartEnrolment, CancelEnrolment)):
            self._request_enrolment(request)
            return
        with self._control_lock:
            if isinstance(request, SetHop):
                settings = dataclasses.replace(self._settings, hop_s=check_hop(request.hop_s))
            elif isinstance(request, SetSmoothing):
                settings = dataclasses.replace(self._settings,
                                               smoothing_s=check_smoothing(request.tau_s))
            else:
                if request.profile is not None and not self._analyzer.calibratable:
                    raise ConfigError(f"model {self.spec.model_version} cannot apply voice "
                                      "profiles (no 'speaker_norm' head metadata).")
                settings = dataclasses.replace(self._settings, profile=request.profile)
            if settings == self._settings:
                return
            self._settings = settings
            self.configs.publish(settings)

    def _request_enrolment(self, request: StartEnrolment | CancelEnrolment) -> None:
        """Validate a start (name, length, model) and leave it for the worker; latest wins."""
        if isinstance(request, StartEnrolment):
            check_name(request.profile)
            if not 5.0 <= request.seconds <= 120.0:
                raise ConfigError(f"enrolment of {request.seconds:g} s: allowed is 5 to 120 s "
                                  "of speech (20 s recommended).")
            unknown = [e for e in request.emotions
                       if e not in self.spec.labels or e == "neutral"]
            if unknown:
                raise ConfigError(f"cannot prompt {unknown}: the model's emotions are "
                                  f"{', '.join(x for x in self.spec.labels if x != 'neutral')}.")
            if not self._analyzer.calibratable:
                raise ConfigError(f"model {self.spec.model_version} cannot be calibrated (no "
                                  "'speaker_norm' head metadata).")
        with self._control_lock:
            self._enrol_request = request

    def set_hop(self, hop_s: float) -> None:
        """Ask for a new hop in seconds; applies from the next window. Raises ConfigError."""
        self.control(SetHop(hop_s))

    def set_smoothing(self, tau_s: float) -> None:
        """Ask for a new smoothing time constant in seconds. Raises ConfigError."""
        self.control(SetSmoothing(tau_s))

    @property
    def settings(self) -> LiveSettings:
        """The analysis settings in force (any thread)."""
        return self._settings

    @property
    def state(self) -> EngineState:
        """The current state."""
        return self._state

    def stats(self) -> EngineStats:
        """Counters for status lines (read without locks; values may be a few ms apart)."""
        capture = self.capture.stats()
        settings = self._settings
        return EngineStats(
            state=self._state,
            source=self.source.name,
            blocks=capture.put,
            dropped_blocks=capture.dropped,
            gap_s=self._analyzer.gap_samples / self.spec.sample_rate,
            audio_s=self._analyzer.samples_seen / self.spec.sample_rate,
            frames=self._frames_out,
            hop_s=settings.hop_s,
            smoothing_s=settings.smoothing_s,
            model_version=self.spec.model_version,
            error=self._error,
            bad_samples=self._analyzer.bad_samples,
            warning=self._warning,
            voiced_frames=self._voiced_out,
            skipped_windows=self._analyzer.skipped_windows,
            overwritten_samples=self._analyzer.overwritten_samples,
            input_overflows=self.source.overflows,
            profile=settings.profile_name,
            enrolling=None if self._enrolling is None else self._enrolling.profile,
        )

    # -- the inference worker -------------------------------------------------------------
    def _apply_controls(self) -> None:
        """Bring the analyzer to the settings asked for (inference thread)."""
        wanted, applied = self._settings, self._applied
        if wanted is applied:
            return
        if wanted.hop_s != applied.hop_s:
            self._analyzer.set_hop(wanted.hop_s)
        if wanted.smoothing_s != applied.smoothing_s:
            self._analyzer.set_smoothing(wanted.smoothing_s)
        if wanted.profile is not applied.profile:
            self._analyzer.set_profile(wanted.profile)
        self._applied = wanted

    # -- enrolment (inference thread) -------------------------------------------------------
    def _apply_enrolment_request(self) -> None:
        with self._control_lock:
            request, self._enrol_request = self._enrol_request, None
        if request is None:
            return
        previous = self._enrolling
        if previous is not None:
            self._analyzer.stop_enrolment()
            self._enrolling = None
            self.enrolment.publish(EnrolmentEvent("cancelled", previous.profile))
        if isinstance(request, StartEnrolment):
            config = EnrolmentConfig(target_speech_s=request.seconds,
                                     min_speech_s=min(8.0, request.seconds),
                                     emotions=request.emotions)
            collector = self._analyzer.start_enrolment(config)
            self._enrolling = request
            self._progress_at = 0.0
            self.enrolment.publish(EnrolmentEvent("started", request.profile,
                                                  collector.progress))

    def _tick_enrolment(self, end_of_stream: bool = False) -> None:
        """Progress events; finish when the target is reached or the stream ended."""
        collector, request = self._analyzer.enrolment, self._enrolling
        if collector is None or request is None:
            return
        progress = collector.progress
        if progress.done or end_of_stream:
            self._finish_enrolment(collector, request)
        elif progress.speech_s - self._progress_at >= self.config.progress_interval_s:
            self._progress_at = progress.speech_s
            self.enrolment.publish(EnrolmentEvent("progress", request.profile, progress))

    def _finish_enrolment(self, collector: EnrolmentCollector, request: StartEnrolment) -> None:
        """Check, save and apply the enrolment (inference thread; one small file write)."""
        self._analyzer.stop_enrolment()
        self._enrolling = None
        progress = collector.progress
        try:
            result = collector.finish()
        except EnrolmentError as exc:
            self.enrolment.publish(EnrolmentEvent("failed", request.profile, progress,
                                                  tuple(exc.issues), str(exc)))
            return
        head = self._analyzer.head
        assert head is not None  # checked when the enrolment was requested
        result = self._analyzer.relative_enrolment(result)
        try:
            profile = Profile.create(request.profile, self.spec, head, result,
                                     passage=request.passage)
            path = ProfileStore(self.config.profiles_dir).save(profile)
        except (ProfileError, ValueError) as exc:
            self.enrolment.publish(EnrolmentEvent("failed", request.profile, progress,
                                                  message=str(exc)))
            return
        self.enrolment.publish(EnrolmentEvent(
            "done", request.profile, progress,
            message=f"profile {profile.name!r} saved to {path} ({result.speech_s:.0f} s of "
                    f"speech, method {profile.adaptation.method}) and applied"))
        active = ActiveProfile(profile.name, profile.adaptation)
        with self._control_lock:
            self._settings = dataclasses.replace(self._settings, profile=active)
            self.configs.publish(self._settings)
        self._apply_controls()

    def _publish(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.frames.publish(frame)
            self._frames_out += 1
            self._voiced_out += frame.voiced

    def _report_bad_input(self) -> None:
        """Log corrupt input at most every 10 s (inference thread); the count is in stats()."""
        now = time.monotonic()
        if now - self._bad_logged_at >= 10.0:
            self._bad_logged_at = now
            log.warning("%s: %d non-finite or out-of-range samples so far were replaced with "
                        "silence; smoothing restarted", self.source.name,
                        self._analyzer.bad_samples)

    def _run(self) -> None:
        """Body of the "streamser-inference" thread."""
        last_block = time.monotonic()
        try:
            while not self._stop_requested.is_set():
                raw = self.capture.get(timeout=0.1)
                self._apply_controls()
                self._apply_enrolment_request()
                if raw is None:
                    if self.source.finished.is_set() and len(self.capture) == 0:
                        break
                    if (self.source.realtime
                            and time.monotonic() - last_block > self.config.stall_timeout_s):
                        self._warning = (f"{self.source.name}: no audio for "
                                         f"{self.config.stall_timeout_s:.0f} s (device "
                                         "stalled?)")
                        last_block = time.monotonic()
                        log.warning(self._warning)
                    continue
                last_block = raw.arrival or time.monotonic()
                self._last_block = time.monotonic()
                self._warning = None
                block = self._conditioner.process(raw)
                if len(block.samples) or block.bad_samples:
                    self.audio.publish(block)
                    self._publish(self._analyzer.push(block))
                    self._tick_enrolment()
                if block.bad_samples:
                    self._report_bad_input()
                limit = self.config.max_audio_s
                rate = self.spec.sample_rate
                if limit is not None and self._analyzer.samples_seen >= limit * rate:
                    break  # as if the source ended here: flush, FINISHED
            if not self._stop_requested.is_set():
                tail = self._conditioner.flush(time.monotonic())
                if len(tail.samples):
                    self.audio.publish(tail)
                    self._publish(self._analyzer.push(tail))
                self._publish(self._analyzer.flush())
                self._apply_enrolment_request()
                self._tick_enrolment(end_of_stream=True)
        except StreamserError as exc:  # e.g. the model broke its contract: one clear line
            log.error("inference stopped: %s", exc)
            self._error = str(exc)
            self._state = EngineState.FAILED
        except Exception as exc:  # a bug: report it instead of dying silently
            log.exception("inference worker failed")
            self._error = f"inference failed: {exc}"
            self._state = EngineState.FAILED
        else:
            if self._stop_requested.is_set():
                self._state = EngineState.STOPPED
            elif self.source.error is not None:
                self._error = str(self.source.error)
                self._state = EngineState.FAILED
            else:
                self._state = EngineState.FINISHED
        finally:
            self.frames.close()
            self.audio.close()
            self.configs.close()
            self.enrolment.close()
            self.finished.set()
