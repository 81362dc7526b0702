"""The Record control: frames (JSONL/CSV) and audio (WAV/FLAC) of the running engine to a folder.

A :class:`Recording` has its own bounded subscriptions to the engine's buses and its own writer
thread (``streamser-record``), so disk I/O never runs on the Qt main thread and never slows the
engine. The main thread calls :meth:`Recording.start`, reads :attr:`Recording.elapsed_s` for the
visible timer, and calls :meth:`Recording.stop` (idempotent; joins the thread and closes the
files). The writers come from :mod:`streamser.outputs.recorders`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from streamser.bus import BoundedQueue, Overflow
from streamser.core.frames import AudioBlock, Frame
from streamser.errors import OutputError

__all__ = ["Recording", "RecordingPaths", "recording_paths"]


class _Writer(Protocol):
    def write(self, item: Any) -> None: ...
    def close(self) -> None: ...


WriterFactory = Callable[[Path], _Writer]


@dataclass(frozen=True)
class RecordingPaths:
    """The two files one recording writes."""

    frames: Path
    audio: Path


def recording_paths(
    folder: Path, frames_format: str = "jsonl", audio_format: str = "flac",
    stamp: datetime | None = None,
) -> RecordingPaths:
    """``folder/streamser-YYYYmmdd-HHMMSS.{frames_format,audio_format}`` (not yet created)."""
    if frames_format not in ("jsonl", "csv"):
        raise OutputError(f"frames format {frames_format!r} is not jsonl or csv")
    if audio_format not in ("wav", "flac"):
        raise OutputError(f"audio format {audio_format!r} is not wav or flac")
    name = f"streamser-{(stamp or datetime.now()).strftime('%Y%m%d-%H%M%S')}"
    return RecordingPaths(folder / f"{name}.{frames_format}", folder / f"{name}.{audio_format}")


def _default_writers() -> tuple[WriterFactory, WriterFactory]:
    from streamser.outputs.recorders import AudioRecorder, FrameRecorder

    return FrameRecorder, AudioRecorder


class Recording:
    """Writes everything the engine publishes from :meth:`start` to :meth:`stop`."""

    def __init__(
        self,
        engine: Any,
        paths: RecordingPaths,
        writers: tuple[WriterFactory, WriterFactory] | None = None,
    ) -> None:
        self.paths = paths
        self._engine = engine
        self._writers = writers
        self._frames_q: BoundedQueue[Frame] | None = None
        self._audio_q: BoundedQueue[AudioBlock] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started_at = 0.0
        self._stopped_at: float | None = None
        self.frames_written = 0
        self.blocks_written = 0
        self.error: str | None = None

    def start(self) -> None:
        """Create the folder and files and start writing. Main thread."""
        make_frames, make_audio = self._writers or _default_writers()
        try:
            self.paths.frames.parent.mkdir(parents=True, exist_ok=True)
            self._frame_writer = make_frames(self.paths.frames)
            self._audio_writer = make_audio(self.paths.audio)
        except OSError as exc:
            raise OutputError(
                f"cannot record to {self.paths.frames.parent}: {exc}. Choose a writable folder."
            ) from exc
        self._frames_q = self._engine.frames.subscribe("record", 4096, Overflow.DROP_OLDEST)
        self._audio_q = self._engine.audio.subscribe("record", 4096, Overflow.DROP_OLDEST)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="streamser-record", daemon=True)
        self._thread.start()

    @property
    def elapsed_s(self) -> float:
        """Seconds recorded so far (frozen after stop)."""
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return max(0.0, end - self._started_at) if self._started_at else 0.0

    @property
    def active(self) -> bool:
        """True between start and stop."""
        return self._thread is not None and self._stopped_at is None

    def _run(self) -> None:
        """Writer thread: drain both queues every 50 ms until stopped, then once more."""
        assert self._frames_q is not None and self._audio_q is not None
        while True:
            stopping = self._stop.wait(0.05)
            try:
                for frame in self._frames_q.drain():
                    self._write_frame(frame)
                for block in self._audio_q.drain():
                    self._write_block(block)
            except Exception as exc:  # disk full, permission: report, stop writing
                self.error = f"recording stopped: {exc}"
                return
            if stopping:
                return

    def _write_frame(self, frame: Frame) -> None:
        self._frame_writer.write(frame)
        self.frames_written += 1

    def _write_block(self, block: AudioBlock) -> None:
        self._audio_writer.write(block)
        self.blocks_written += 1

    def dropped(self) -> int:
        """Items the recording's queues dropped (should stay 0)."""
        queues = [q for q in (self._frames_q, self._audio_q) if q is not None]
        return sum(q.stats().dropped for q in queues)

    def stop(self) -> None:
        """Stop writing, flush what is queued, close the files. Idempotent; main thread."""
        if self._thread is None or self._stopped_at is not None:
            return
        self._stopped_at = time.monotonic()
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._engine.frames.unsubscribe(self._frames_q)
        self._engine.audio.unsubscribe(self._audio_q)
        for writer in (self._frame_writer, self._audio_writer):
            try:
                writer.close()
            except Exception as exc:
                self.error = self.error or f"closing {writer}: {exc}"
