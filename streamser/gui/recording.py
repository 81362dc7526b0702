"""The Record control: frames (JSONL/CSV) and audio (WAV/FLAC) of the running session to a folder.

A :class:`Recording` is the two file outputs of :mod:`streamser.outputs.recorders`
(:class:`~streamser.outputs.recorders.FrameFileOutput`, :class:`~streamser.outputs.recorders.
AudioFileOutput`) started on the running session: each has its own bounded subscription and its
own writer thread (``streamser-record-frames``, ``streamser-record-audio``), so disk I/O never
runs on the Qt main thread and never slows the engine. The main thread calls
:meth:`Recording.start`, reads :attr:`Recording.elapsed_s` for the visible timer, and calls
:meth:`Recording.stop` (idempotent; joins the threads and closes the files).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from streamser.errors import OutputError
from streamser.outputs.recorders import (
    AudioFileOutput,
    AudioRecorder,
    FrameFileOutput,
    FrameRecorder,
    Writer,
)

__all__ = ["Recording", "RecordingPaths", "recording_paths"]

WriterFactory = Callable[[Path], Writer]


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


class Recording:
    """Writes everything the session publishes from :meth:`start` to :meth:`stop`.

    ``session`` is the running session (or engine): anything with ``frames``, ``audio`` and
    ``configs`` buses. ``writers`` replaces the frame and audio writers (tests).
    """

    def __init__(
        self,
        session: Any,
        paths: RecordingPaths,
        writers: tuple[WriterFactory, WriterFactory] | None = None,
    ) -> None:
        self.paths = paths
        self._session = session
        make_frames, make_audio = writers or (FrameRecorder, AudioRecorder)
        self._outputs = (FrameFileOutput(paths.frames, open_writer=make_frames),
                         AudioFileOutput(paths.audio, open_writer=make_audio))
        self._started_at = 0.0
        self._stopped_at: float | None = None
        self._running = False
        self._closing_error: str | None = None

    def start(self) -> None:
        """Create the folder and files and start writing. Main thread."""
        try:
            self.paths.frames.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot record to {self.paths.frames.parent}: {exc}. Choose a writable folder."
            ) from exc
        started: list[FrameFileOutput | AudioFileOutput] = []
        try:
            for output in self._outputs:
                output.start(self._session)
                started.append(output)
        except BaseException:
            for output in started:
                output.stop()
            raise
        self._started_at = time.monotonic()
        self._running = True

    @property
    def elapsed_s(self) -> float:
        """Seconds recorded so far (frozen after stop)."""
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return max(0.0, end - self._started_at) if self._started_at else 0.0

    @property
    def active(self) -> bool:
        """True between start and stop."""
        return self._running and self._stopped_at is None

    @property
    def frames_written(self) -> int:
        """Frames handed to the frame writer."""
        return self._outputs[0].frames_out

    @property
    def blocks_written(self) -> int:
        """Audio blocks handed to the audio writer."""
        return self._outputs[1].blocks_out

    @property
    def error(self) -> str | None:
        """The first write or close error in words, or None."""
        found = [o.error for o in self._outputs if o.error]
        return f"recording: {found[0]}" if found else self._closing_error

    def dropped(self) -> int:
        """Items the recording's queues dropped (should stay 0)."""
        return sum(o.dropped() for o in self._outputs)

    def stop(self) -> None:
        """Stop writing, flush what is queued, close the files. Idempotent; main thread."""
        if not self._running or self._stopped_at is not None:
            return
        self._stopped_at = time.monotonic()
        for output in self._outputs:
            try:
                output.stop()
            except Exception as exc:
                self._closing_error = self._closing_error or f"closing {output.path}: {exc}"
