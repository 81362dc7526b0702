"""The running engine as the dashboard sees it: open, drain, restart, recover, close (no Qt).

The dashboard never builds an engine itself: it is given an :data:`EngineFactory` that turns a
:class:`SourceChoice` (a device or a file) into a ready, not yet started engine. That is how the
device picker, "open file", start/stop and the kiosk's automatic recovery all restart the
pipeline through the same code path.

:class:`EngineHost` subscribes the dashboard's own bounded queues to the engine's buses *before*
starting it (so no frame is missed), drains them without blocking, and counts what the queues
dropped across restarts. It is called only from the Qt main thread; the engine keeps its own
threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streamser.bus import BoundedQueue, Bus, Overflow
from streamser.core.frames import AudioBlock, Frame
from streamser.errors import StreamserError

__all__ = ["EngineFactory", "EngineHost", "EngineLike", "SourceChoice"]


@dataclass(frozen=True)
class SourceChoice:
    """Where audio comes from: an audio ``path`` (paced in real time) or an input ``device``.

    ``device`` is a PortAudio device index, a name, or None for the system default; it is
    ignored when ``path`` is set.
    """

    device: int | str | None = None
    path: Path | None = None

    @property
    def is_file(self) -> bool:
        """True for a file source."""
        return self.path is not None

    def describe(self) -> str:
        """Short human text for the status bar."""
        if self.path is not None:
            return f"file {self.path.name}"
        if self.device is None:
            return "default input"
        return f"device {self.device}"


class EngineLike(Protocol):
    """What the dashboard uses of :class:`streamser.engine.Engine`."""

    frames: Bus[Frame]
    audio: Bus[AudioBlock]
    finished: threading.Event

    @property
    def spec(self) -> Any: ...  # ModelSpec: labels, window_s, hop_s, model_version

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def set_hop(self, hop_s: float) -> None: ...
    def set_smoothing(self, tau_s: float) -> None: ...
    def stats(self) -> Any: ...  # EngineStats: state, blocks, dropped_blocks, frames, hop_s, ...


EngineFactory = Callable[[SourceChoice], EngineLike]
"""Builds a ready (not started) engine for a source; raises StreamserError when it cannot."""


class EngineHost:
    """Owns the current engine and the dashboard's subscriptions to it. Main thread only.

    With ``auto_recover`` (kiosk mode) :meth:`poll` reopens the last source every
    ``retry_s`` seconds after the engine finished or failed to open — a microphone that was
    unplugged and comes back, or a demo file that ended (it loops).
    """

    def __init__(
        self,
        factory: EngineFactory,
        *,
        auto_recover: bool = False,
        retry_s: float = 2.0,
        frame_capacity: int = 512,
        audio_capacity: int = 1024,
    ) -> None:
        self._factory = factory
        self.auto_recover = auto_recover
        self.retry_s = retry_s
        self._frame_capacity = frame_capacity
        self._audio_capacity = audio_capacity
        self.engine: EngineLike | None = None
        self.choice: SourceChoice | None = None
        self.error: str | None = None
        """The last error in words (None when the engine opened fine)."""
        self.generation = 0
        """Increments on every successful open: the dashboard resets its history then."""
        self._frames_q: BoundedQueue[Frame] | None = None
        self._audio_q: BoundedQueue[AudioBlock] | None = None
        self._enrol_q: BoundedQueue[Any] | None = None
        self._dropped_frames_before = 0
        self._dropped_blocks_before = 0
        self._next_retry = 0.0
        self.restarts = 0

    # -- lifecycle ------------------------------------------------------------------------
    def open(self, choice: SourceChoice) -> None:
        """Stop the current engine, build one for ``choice``, subscribe, start it.

        Raises :class:`StreamserError` (after recording it in :attr:`error`) when the factory
        or the start fails; the host is then closed and :meth:`poll` may retry.
        """
        self.close()
        self.choice = choice
        try:
            engine = self._factory(choice)
        except StreamserError as exc:
            self._failed(exc)
            raise
        self.engine = engine
        self._frames_q = engine.frames.subscribe("dashboard", self._frame_capacity,
                                                 Overflow.DROP_OLDEST)
        self._audio_q = engine.audio.subscribe("dashboard", self._audio_capacity,
                                               Overflow.DROP_OLDEST)
        enrolment = getattr(engine, "enrolment", None)  # calibration events, when supported
        if enrolment is not None:
            self._enrol_q = enrolment.subscribe("dashboard", 64, Overflow.DROP_OLDEST)
        try:
            engine.start()
        except StreamserError as exc:
            self.close()
            self._failed(exc)
            raise
        self.error = None
        self.generation += 1

    def _failed(self, exc: BaseException) -> None:
        self.error = str(exc)
        self._next_retry = time.monotonic() + self.retry_s

    def close(self) -> None:
        """Unsubscribe and stop the engine (joins its threads). Idempotent."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        for bus, queue in ((engine.frames, self._frames_q), (engine.audio, self._audio_q)):
            if queue is not None:
                stats = queue.stats()
                if bus is engine.frames:
                    self._dropped_frames_before += stats.dropped
                else:
                    self._dropped_blocks_before += stats.dropped
                bus.unsubscribe(queue)  # type: ignore[arg-type]
        self._frames_q = self._audio_q = None
        if self._enrol_q is not None:
            engine.enrolment.unsubscribe(self._enrol_q)  # type: ignore[attr-defined]
            self._enrol_q = None
        engine.stop()

    # -- per tick -------------------------------------------------------------------------
    def drain(self) -> tuple[list[Frame], list[AudioBlock]]:
        """Everything queued for the dashboard since the last call, oldest first."""
        frames = self._frames_q.drain() if self._frames_q is not None else []
        blocks = self._audio_q.drain() if self._audio_q is not None else []
        return frames, blocks

    def drain_enrolment(self) -> list[Any]:
        """Enrolment events (:class:`streamser.core.enrolment.EnrolmentEvent`) since the last
        call, oldest first."""
        return self._enrol_q.drain() if self._enrol_q is not None else []

    @property
    def running(self) -> bool:
        """True while an engine is open and its source has not ended."""
        return self.engine is not None and not self.engine.finished.is_set()

    def poll(self, now: float | None = None) -> bool:
        """Kiosk recovery: reopen the last source when due. True when it reopened.

        A source that ended, failed to open, or stalled (a suspended device that delivers
        nothing and reports nothing: :attr:`Engine.stalled`) is closed and reopened every
        ``retry_s`` seconds until it works again.
        """
        if not self.auto_recover or self.choice is None:
            return False
        now = time.monotonic() if now is None else now
        engine = self.engine
        if engine is not None and self.running and getattr(engine, "stalled", False):
            self.close()  # PortAudio's stop has a deadline: this cannot hang on a frozen server
            self.error = "the input delivered no audio (device stalled); reopening"
            self._next_retry = now + self.retry_s
            return False
        if self.running:
            return False
        if self.engine is not None and self.error is None:
            # the source just ended or vanished: note it and wait one retry period
            self.error = "source ended; reopening"
            self._next_retry = now + self.retry_s
            return False
        if now < self._next_retry:
            return False
        try:
            self.open(self.choice)
        except StreamserError:
            return False
        self.restarts += 1
        return True

    # -- counters -------------------------------------------------------------------------
    def gui_dropped_frames(self) -> int:
        """Frames the dashboard's queue had to drop (all engines so far)."""
        now = self._frames_q.stats().dropped if self._frames_q is not None else 0
        return self._dropped_frames_before + now

    def gui_dropped_blocks(self) -> int:
        """Audio blocks the dashboard's queue had to drop (all engines so far)."""
        now = self._audio_q.stats().dropped if self._audio_q is not None else 0
        return self._dropped_blocks_before + now

    def engine_stats(self) -> Any | None:
        """The engine's own stats snapshot, or None without an engine."""
        return self.engine.stats() if self.engine is not None else None
