"""One live session: a source, the engine, and any number of outputs, assembled in one place.

``streamser live`` (terminal and dashboard) and ``streamser analyze`` all build their pipeline
with :func:`build_session`; the dashboard calls it again for every restart. An output is any
object with the :class:`Output` protocol, made from a frozen :class:`OutputConfig` (see
:mod:`streamser.outputs` for the registry that turns CLI flags into configs).

Threads: :class:`Session` methods are called from one controlling thread (the CLI's main
thread or the Qt main thread), except :meth:`Session.status`, :meth:`Session.info` and
:meth:`Session.control`, which any thread may call (outputs call them from their own threads).

Lifecycle, in this order: outputs start (each subscribes to the buses it needs, binds or opens
its files; so no frame is missed), the engine starts; on :meth:`Session.stop` the engine stops
(source, then worker; the buses close), then the outputs stop in the order given (each delivers
what is queued and closes).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streamser import __version__
from streamser.bus import Bus
from streamser.calibration.profiles import ProfileInfo, ProfileStore
from streamser.core.adapt import ActiveProfile
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import (
    CancelEnrolment,
    Control,
    LiveSettings,
    SetHop,
    SetSmoothing,
    SourceKind,
    SourceSpec,
    StartEnrolment,
    UseProfile,
)
from streamser.core.contract import ModelSpec
from streamser.core.enrolment import EnrolmentEvent
from streamser.core.frames import AudioBlock, Frame
from streamser.core.protocol import SessionInfo
from streamser.engine import Engine, EngineConfig, EngineState, EngineStats
from streamser.errors import AudioSourceError, StreamserError
from streamser.model import ModelRunner
from streamser.resources import demo_audio_path
from streamser.sources import FileSource, MicSource, Source, StdinSource

__all__ = ["Output", "OutputConfig", "Session", "SessionLink", "SessionStatus", "build_session",
           "open_source"]

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True)
class SessionStatus:
    """Everything a status display or a ``status`` message reports (times in seconds).

    ``engine`` holds the engine's loss counters (:meth:`EngineStats.counters`), ``queues``
    the items each bus subscriber's bounded queue dropped (``"frames/websocket"``...), and
    ``outputs`` each output's own counters (by output name).
    """

    state: EngineState
    source: str
    frames: int
    voiced_frames: int
    audio_s: float
    hop_s: float
    smoothing_s: float
    model_version: str
    error: str | None
    warning: str | None
    engine: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)
    profile: str | None = None
    enrolling: str | None = None

    @property
    def dropped_blocks(self) -> int:
        """Capture blocks the engine lost."""
        return self.engine.get("capture_dropped_blocks", 0)

    def losses(self) -> dict[str, int]:
        """Every non-zero loss counter, flattened (``engine.X``, ``queue.X``, ``X.dropped``)."""
        out = {f"engine.{k}": v for k, v in self.engine.items() if v}
        out.update({f"queue.{k}": v for k, v in self.queues.items() if v})
        for name, counters in self.outputs.items():
            out.update({f"{name}.{k}": v for k, v in counters.items()
                        if v and ("drop" in k or "error" in k)})
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields of the ``status`` message."""
        return {
            "state": self.state.value, "source": self.source, "frames": self.frames,
            "voiced_frames": self.voiced_frames, "audio_s": round(self.audio_s, 3),
            "hop_s": self.hop_s, "smoothing_s": self.smoothing_s,
            "dropped_blocks": self.dropped_blocks,
            "bad_samples": self.engine.get("bad_samples", 0),
            "error": self.error, "warning": self.warning,
            "profile": self.profile, "enrolling": self.enrolling,
            "counters": {"engine": dict(self.engine), "queues": dict(self.queues),
                         "outputs": {k: dict(v) for k, v in self.outputs.items()}},
        }


class SessionLink(Protocol):
    """What an output sees of its session (read from any thread)."""

    @property
    def frames(self) -> Bus[Frame]: ...
    @property
    def audio(self) -> Bus[AudioBlock]: ...
    @property
    def configs(self) -> Bus[LiveSettings]: ...
    @property
    def enrolment(self) -> Bus[EnrolmentEvent]: ...
    def info(self) -> SessionInfo: ...
    def status(self) -> SessionStatus: ...
    def start_enrolment(self, name: str, seconds: float = 20.0,
                        emotions: tuple[str, ...] = (), passage: str | None = None) -> None: ...
    def cancel_enrolment(self) -> None: ...
    def use_profile(self, name: str | None) -> None: ...
    def profiles(self) -> list[ProfileInfo]: ...


class Output(Protocol):
    """Something that sends a session's frames somewhere (a file, sockets, a stream).

    ``start`` runs on the controlling thread before the engine starts: subscribe to the link's
    buses with bounded queues, open files, bind ports; raise
    :class:`~streamser.errors.OutputError` with what to do when that fails. ``stop`` runs after
    the engine stopped: deliver what is queued, close; idempotent. ``counters`` (any thread)
    reports what the output delivered and lost. ``describe`` is one line for the user.
    """

    name: str

    def start(self, link: SessionLink) -> None: ...
    def stop(self) -> None: ...
    def counters(self) -> dict[str, int]: ...
    def describe(self) -> str: ...


class OutputConfig(Protocol):
    """A frozen description of an output; :meth:`create` makes a fresh one per session."""

    @property
    def name(self) -> str: ...
    def create(self) -> Output: ...


class Session:
    """A source through one engine to the given outputs; see the module docstring.

    Looks like an engine to the dashboard (``frames``, ``audio``, ``finished``, ``spec``,
    ``start``, ``stop``, ``set_hop``, ``set_smoothing``, ``stats``).
    """

    def __init__(self, engine: Engine, outputs: Sequence[Output] = (),
                 say: Say | None = None, tolerate_output_errors: bool = False) -> None:
        self.engine = engine
        self.outputs: list[Output] = list(outputs)
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"output names must be unique in a session, got {names}")
        self._say = say or (lambda line: log.info("%s", line))
        self._tolerate = tolerate_output_errors
        self._id = uuid.uuid4().hex
        self._started: list[Output] = []

    # -- what outputs and the dashboard read ----------------------------------------------
    @property
    def frames(self) -> Bus[Frame]:
        return self.engine.frames

    @property
    def audio(self) -> Bus[AudioBlock]:
        return self.engine.audio

    @property
    def configs(self) -> Bus[LiveSettings]:
        return self.engine.configs

    @property
    def enrolment(self) -> Bus[EnrolmentEvent]:
        return self.engine.enrolment

    @property
    def finished(self) -> threading.Event:
        """Set when the engine finished (source ended or failed, or stopped)."""
        return self.engine.finished

    @property
    def spec(self) -> ModelSpec:
        return self.engine.spec

    def info(self) -> SessionInfo:
        """What a ``hello`` tells a new client now: the settings in force, not those at start."""
        spec, settings = self.engine.spec, self.engine.settings
        return SessionInfo(
            session=self._id, server=f"streamser {__version__}",
            model_version=spec.model_version, labels=spec.labels, window_s=spec.window_s,
            hop_s=settings.hop_s, sample_rate=spec.sample_rate, source=self.engine.source.name,
            smoothing_s=settings.smoothing_s, speaker_norm=settings.speaker_norm,
            profile=settings.profile_name, session_prior=settings.session_prior,
        )

    def stats(self) -> EngineStats:
        """The engine's snapshot (the dashboard's status bar)."""
        return self.engine.stats()

    def status(self) -> SessionStatus:
        """Engine state and every loss counter of the engine, the queues and the outputs."""
        stats = self.engine.stats()
        queues = {f"frames/{k}": v for k, v in self.frames.dropped().items()}
        queues.update({f"audio/{k}": v for k, v in self.audio.dropped().items()})
        queues.update({f"configs/{k}": v for k, v in self.configs.dropped().items()})
        queues.update({f"enrolment/{k}": v for k, v in self.enrolment.dropped().items()})
        return SessionStatus(
            state=stats.state, source=stats.source, frames=stats.frames,
            voiced_frames=stats.voiced_frames, audio_s=stats.audio_s, hop_s=stats.hop_s,
            smoothing_s=stats.smoothing_s, model_version=stats.model_version,
            error=stats.error, warning=stats.warning, engine=stats.counters(), queues=queues,
            outputs={o.name: o.counters() for o in self._started},
            profile=stats.profile, enrolling=stats.enrolling,
        )

    def output(self, name: str) -> Output | None:
        """The started output called ``name``, or None."""
        return next((o for o in self._started if o.name == name), None)

    # -- control ---------------------------------------------------------------------------
    def control(self, request: Control) -> None:
        """Send a control request to the engine (any thread); raises ConfigError."""
        self.engine.control(request)

    def set_hop(self, hop_s: float) -> None:
        self.control(SetHop(hop_s))

    # -- calibration (any thread; raise StreamserError for a bad request) -----------------
    @property
    def profile_store(self) -> ProfileStore:
        """Where this session's profiles are saved and loaded."""
        return ProfileStore(self.engine.config.profiles_dir)

    def start_enrolment(self, name: str, seconds: float = 20.0,
                        emotions: tuple[str, ...] = (), passage: str | None = None) -> None:
        """Start calibrating to the voice now at the source; events on :attr:`enrolment`."""
        self.control(StartEnrolment(name, seconds, emotions, passage))

    def cancel_enrolment(self) -> None:
        """Stop an enrolment in progress (nothing is saved)."""
        self.control(CancelEnrolment())

    def use_profile(self, name: str | None) -> None:
        """Apply saved profile ``name`` (None: none); ProfileError when missing, damaged or
        made with another model."""
        if name is None:
            self.control(UseProfile(None))
            return
        profile = self.profile_store.load_for(name, self.spec)
        self.control(UseProfile(ActiveProfile(profile.name, profile.adaptation)))

    def profiles(self) -> list[ProfileInfo]:
        """The saved profiles (damaged ones carry a ``problem``)."""
        return self.profile_store.entries()

    def set_smoothing(self, tau_s: float) -> None:
        self.control(SetSmoothing(tau_s))

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the outputs, then the engine. Raises StreamserError (after stopping whatever
        had started) when an output or the source cannot start; with
        ``tolerate_output_errors`` a failing output is reported and left out instead."""
        try:
            for output in self.outputs:
                try:
                    output.start(self)
                except StreamserError as exc:
                    if not self._tolerate:
                        raise
                    self._say(f"{output.name} output disabled: {exc}")
                    continue
                self._started.append(output)
            self.engine.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the engine, then every started output in order. Idempotent; controlling
        thread. An output failing to stop is logged; the others still stop."""
        self.engine.stop()
        for output in self._started:
            try:
                output.stop()
            except Exception:
                log.exception("%s output failed to stop cleanly", output.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the engine finished (source ended or failed, or stopped)."""
        return self.engine.wait(timeout)


def open_source(spec: SourceSpec, say: Say) -> Source:
    """Open what ``spec`` asks for. A default microphone that cannot be opened falls back to
    the bundled demo audio (paced in real time) after one line saying why; an explicitly
    chosen device that fails is an error (:class:`AudioSourceError`)."""
    if spec.kind is SourceKind.STDIN:
        return StdinSource(spec.rate, spec.channels)
    if spec.kind is SourceKind.FILE:
        assert spec.path is not None
        return FileSource(spec.path, realtime=spec.realtime, loop=spec.loop)
    try:
        return MicSource(spec.device)
    except AudioSourceError as exc:
        demo = demo_audio_path()
        if spec.device is not None or demo is None:
            raise
        say(f"no microphone ({str(exc).split('. ')[0]}); analysing the bundled demo audio "
            f"{demo.name} in real time instead")
        return FileSource(demo, realtime=True, loop=spec.loop)


def build_session(runner: ModelRunner, source: SourceSpec, analyzer: AnalyzerConfig,
                  outputs: Sequence[OutputConfig | Output] = (), say: Say | None = None, *,
                  tolerate_output_errors: bool = False,
                  engine_config: EngineConfig | None = None) -> Session:
    """Open the source and assemble a (not started) session: the one way streamser builds a
    pipeline. ``outputs`` are configs (a fresh output is created from each) or outputs made
    by the caller (e.g. the terminal view)."""
    say = say or (lambda line: log.info("%s", line))
    config = dataclasses.replace(engine_config or EngineConfig(), analyzer=analyzer)
    engine = Engine(runner, open_source(source, say), config)
    made = [o.create() if hasattr(o, "create") else o for o in outputs]
    return Session(engine, made, say, tolerate_output_errors)
