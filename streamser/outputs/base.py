"""A base for outputs that do their work on their own thread, fed by bounded queues.

:class:`ThreadedOutput` subscribes to the session's frame bus (and, if asked, to the audio and
config buses) with its own bounded queues (policy **drop-oldest**; what they drop is counted by
the bus and reported in ``status`` under ``queues``), and runs a thread ``streamser-<name>`` that
calls :meth:`ThreadedOutput.on_frame`, :meth:`~ThreadedOutput.on_audio`,
:meth:`~ThreadedOutput.on_config` and, every ``status_interval_s``,
:meth:`~ThreadedOutput.on_status`. So a slow file system or a blocked socket delays only its own
output, never the engine or another output.

A subclass implements ``open`` (controlling thread; raise :class:`OutputError`), the ``on_*``
hooks it needs (its thread), ``close`` (its thread is finished by then) and ``describe``. An
exception in a hook stops the output: it is logged once and kept in :attr:`error`, and what
arrives afterwards is counted in ``errors`` and not delivered; the session and the other outputs
go on (a recorder whose disk filled up says so instead of killing the session).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamser.bus import BoundedQueue, Overflow
from streamser.core.config import LiveSettings
from streamser.core.frames import AudioBlock, Frame

if TYPE_CHECKING:
    from streamser.session import OutputConfig, SessionLink, SessionStatus

__all__ = ["OutputKind", "ThreadedOutput", "label_of"]


def label_of(frame: Frame) -> str:
    """The frame's label as one word for marker-style outputs: the top label, ``uncertain``
    (speech, but no emotion stands out) or ``none`` (no speech)."""
    if frame.top_label is not None:
        return frame.top_label
    return "uncertain" if frame.uncertain else "none"


@dataclass(frozen=True)
class OutputKind:
    """How the CLI offers one kind of output: its flags and the config they make.

    ``from_args`` returns None when the flags do not ask for this output. ``dashboard``: the
    dashboard's sessions get it too (the recorders are terminal-only: the dashboard has its
    Record button).
    """

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    from_args: Callable[[argparse.Namespace], OutputConfig | None]
    dashboard: bool = True

log = logging.getLogger(__name__)


class ThreadedOutput:
    """See the module docstring. Class attributes set the queue sizes and what is received."""

    name = "output"
    wants_frames = True
    frame_capacity = 512
    wants_audio = False
    audio_capacity = 1024
    status_interval_s: float | None = None
    poll_s = 0.05

    def __init__(self) -> None:
        self._link: SessionLink | None = None
        self._frames: BoundedQueue[Frame] | None = None
        self._audio: BoundedQueue[AudioBlock] | None = None
        self._configs: BoundedQueue[LiveSettings] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self.frames_out = 0
        self.blocks_out = 0
        self.errors = 0
        self.error: str | None = None

    # -- for subclasses -------------------------------------------------------------------
    def open(self, link: SessionLink) -> None:
        """Open files / sockets (controlling thread). Raise OutputError when impossible."""

    def on_frame(self, frame: Frame) -> None:
        """Deliver one frame (output thread)."""

    def on_audio(self, block: AudioBlock) -> None:
        """Deliver one audio block (output thread; only with ``wants_audio``)."""

    def on_config(self, settings: LiveSettings) -> None:
        """A live setting changed (output thread)."""

    def on_status(self, status: SessionStatus) -> None:
        """Every ``status_interval_s`` seconds (output thread)."""

    def close(self) -> None:
        """Release files / sockets (controlling thread, after the output thread ended)."""

    def extra_counters(self) -> dict[str, int]:
        """Counters beyond ``frames_out`` and ``errors`` (any thread)."""
        return {}

    def describe(self) -> str:
        """One line for the user."""
        return self.name

    # -- the Output protocol --------------------------------------------------------------
    def start(self, link: SessionLink) -> None:
        """Open, subscribe, and start the output thread (controlling thread)."""
        self._link = link
        self.open(link)
        if self.wants_frames:
            self._frames = link.frames.subscribe(self.name, self.frame_capacity,
                                                 Overflow.DROP_OLDEST)
        if self.wants_audio:
            self._audio = link.audio.subscribe(self.name, self.audio_capacity,
                                               Overflow.DROP_OLDEST)
        self._configs = link.configs.subscribe(self.name, 16, Overflow.DROP_OLDEST)
        self._thread = threading.Thread(target=self._run, name=f"streamser-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Deliver what is queued, end the thread, close. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10.0)
            if self._thread.is_alive():
                log.warning("%s output did not finish within 10 s", self.name)
        link = self._link
        if link is not None:
            if self._frames is not None:
                link.frames.unsubscribe(self._frames)
            if self._audio is not None:
                link.audio.unsubscribe(self._audio)
            if self._configs is not None:
                link.configs.unsubscribe(self._configs)
        self.close()

    def counters(self) -> dict[str, int]:
        """``frames_out``, ``errors`` and the subclass's own counters (any thread)."""
        out = {"frames_out": self.frames_out, "errors": self.errors}
        if self.wants_audio:
            out["blocks_out"] = self.blocks_out
        return {**out, **self.extra_counters()}

    def dropped(self) -> int:
        """Items this output's own queues dropped so far (also in the session's ``queues``)."""
        queues = (self._frames, self._audio, self._configs)
        return sum(q.stats().dropped for q in queues if q is not None)

    # -- the output thread ----------------------------------------------------------------
    def _guard(self, hook: str, call: object, item: object) -> None:
        if self.error is not None:  # failed before: this output has stopped
            self.errors += 1
            return
        try:
            call(item)  # type: ignore[operator]
        except Exception as exc:
            self.errors += 1
            self.error = f"{self.name}: {exc}"
            log.warning("%s output stopped: %s failed: %s; the session and the other outputs "
                        "go on", self.name, hook, exc)

    def _frame(self, frame: Frame) -> None:
        self._guard("on_frame", self.on_frame, frame)
        self.frames_out += 1

    def _block(self, block: AudioBlock) -> None:
        self._guard("on_audio", self.on_audio, block)
        self.blocks_out += 1

    def _drain(self) -> None:
        if self._configs is not None:
            for settings in self._configs.drain():
                self._guard("on_config", self.on_config, settings)
        if self._audio is not None:
            for block in self._audio.drain():
                self._block(block)
        if self._frames is not None:
            for frame in self._frames.drain():
                self._frame(frame)

    def _run(self) -> None:
        """Wait on the frame queue (or the audio queue for audio-only outputs), deliver."""
        assert self._link is not None
        interval = self.status_interval_s
        next_status = time.monotonic() + interval if interval else float("inf")
        primary: BoundedQueue[Frame] | BoundedQueue[AudioBlock] | None = (
            self._frames if self._frames is not None else self._audio)
        while not self._stopping.is_set():
            item = primary.get(timeout=self.poll_s) if primary is not None else None
            if isinstance(item, Frame):
                self._frame(item)
            elif item is not None:
                self._block(item)
            elif primary is None or primary.closed:  # nothing to wait on: don't spin
                self._stopping.wait(self.poll_s)
            self._drain()
            now = time.monotonic()
            if interval and now >= next_status:
                next_status = now + interval
                self._guard("on_status", self.on_status, self._link.status())
        self._drain()  # what was queued before the engine stopped
