"""Recorders: frames to JSONL or CSV, audio to WAV or FLAC.

The writers (:class:`FrameRecorder`, :class:`AudioRecorder`) are owned by one thread at a time.
They write through a buffered file to ``NAME.partial`` beside the target and rename it to
``NAME`` when closed complete, so a file under its real name is always whole; a writer that
failed, or is closed with ``complete=False`` (an interrupted ``analyze``), leaves the
``.partial`` file and says so in :attr:`incomplete`. ``close()`` is idempotent. The target's
folder must exist (a typo is not silently turned into a new folder). The outputs
(:class:`FrameFileOutput`, :class:`AudioFileOutput`, made from :class:`FrameFileConfig` and
:class:`AudioFileConfig`: ``--record`` and ``--record-audio``) run them on their own threads
(``streamser-record-frames``, ``streamser-record-audio``), so disk I/O never delays the engine.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from streamser.core.frames import SAMPLE_RATE, AudioBlock, Frame
from streamser.errors import OutputError
from streamser.outputs.base import OutputKind, ThreadedOutput

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from streamser.session import SessionLink

__all__ = ["FRAME_FORMATS", "AudioFileConfig", "AudioFileOutput", "AudioRecorder",
           "FrameFileConfig", "FrameFileOutput", "FrameRecorder", "partial_path"]

FRAME_FORMATS = (".jsonl", ".csv")
AUDIO_FORMATS = (".wav", ".flac")


def partial_path(path: Path) -> Path:
    """Where a recorder writes ``path`` until it is complete."""
    return path.with_name(path.name + ".partial")


def _check_folder(path: Path) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the folder {path.parent} does not exist. "
                          "Create it first, or choose another path.")


def _open(path: Path) -> IO[str]:
    _check_folder(path)
    try:
        return partial_path(path).open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}. Choose a writable path.") from None


def _finish(path: Path, complete: bool) -> Path:
    """Rename the partial file to ``path`` when complete; return where the data is."""
    if not complete:
        return partial_path(path)
    try:
        os.replace(partial_path(path), path)
    except OSError as exc:
        raise OutputError(f"cannot finish {path}: {exc.strerror}; the data is in "
                          f"{partial_path(path)}.") from None
    return path


class FrameRecorder:
    """Write frames to ``.jsonl`` (one ``frame`` object per line) or ``.csv`` (one row each).

    CSV columns: seq, start, end, wall_time, top, confidence, arousal, valence, voiced,
    voiced_prob, level_dbfs, latency_ms, model_version, speaker_norm, uncertain, profile,
    session_prior, then
    ``p_<label>`` (raw) and ``s_<label>`` (smoothed) for every label.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FRAME_FORMATS:
            raise OutputError(
                f"cannot record frames to {self.path.name!r}: the extension must be one of "
                f"{', '.join(FRAME_FORMATS)}."
            )
        self._csv = suffix == ".csv"
        self._file: IO[str] | None = _open(self.path)
        self._writer: csv.writer | None = None  # type: ignore[valid-type]
        self.count = 0
        self.failed = False
        self.incomplete: Path | None = None
        """The ``.partial`` file left behind, once closed incomplete."""

    def write(self, frame: Frame, extra: dict[str, object] | None = None) -> None:
        """Append one frame; ``extra`` fields (e.g. the source file) come first."""
        if self._file is None:
            raise OutputError(f"{self.path} is closed")
        body = {**(extra or {}), **frame.to_dict()}
        try:
            if not self._csv:
                self._file.write(json.dumps(body, separators=(",", ":"), allow_nan=False) + "\n")
            else:
                if self._writer is None:
                    self._writer = csv.writer(self._file)
                    head = [k for k in body if k not in ("probs", "smoothed")]
                    head += [f"p_{x}" for x in frame.labels] + [f"s_{x}" for x in frame.labels]
                    self._writer.writerow(head)
                row = [v for k, v in body.items() if k not in ("probs", "smoothed")]
                row += [round(p, 5) for p in frame.probs] + [round(p, 5) for p in frame.smoothed]
                self._writer.writerow(row)
            self._file.flush()  # a few lines a second: a full disk shows at once, a crash loses 1
        except (OSError, ValueError) as exc:
            self.failed = True
            raise OutputError(f"writing {partial_path(self.path)} failed "
                              f"({getattr(exc, 'strerror', None) or exc}).") from None
        self.count += 1

    def close(self, complete: bool = True) -> None:
        """Flush and close; rename to the real name unless incomplete or failed (idempotent)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            self.failed = True
        where = _finish(self.path, complete and not self.failed)
        self.incomplete = None if where == self.path else where


class AudioRecorder:
    """Write 16 kHz mono blocks to ``.wav`` (16-bit PCM) or ``.flac``; gaps become silence."""

    def __init__(self, path: str | Path, rate: int = SAMPLE_RATE) -> None:
        import soundfile as sf

        self.path = Path(path)
        if self.path.suffix.lower() not in AUDIO_FORMATS:
            raise OutputError(
                f"cannot record audio to {self.path.name!r}: the extension must be one of "
                f"{', '.join(AUDIO_FORMATS)}."
            )
        _check_folder(self.path)
        try:
            self._file: sf.SoundFile | None = sf.SoundFile(
                str(partial_path(self.path)), "w", samplerate=rate, channels=1,
                subtype="PCM_16", format=self.path.suffix[1:].upper())
        except (OSError, RuntimeError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}. Choose a writable path.") from None
        self._next: int | None = None
        self.samples = 0
        self.failed = False
        self.incomplete: Path | None = None

    def write(self, block: AudioBlock) -> None:
        """Append one block; a gap since the previous block is written as zeros."""
        import numpy as np

        if self._file is None:
            raise OutputError(f"{self.path} is closed")
        try:
            if self._next is not None and block.start_sample > self._next:
                self._file.write(np.zeros(block.start_sample - self._next, dtype=np.float32))
                self.samples += block.start_sample - self._next
            self._file.write(block.samples)
        except (OSError, RuntimeError) as exc:
            self.failed = True
            raise OutputError(f"writing {partial_path(self.path)} failed ({exc}).") from None
        self.samples += len(block.samples)
        self._next = block.end_sample

    def close(self, complete: bool = True) -> None:
        """Finish the file; rename to the real name unless incomplete or failed (idempotent)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except (OSError, RuntimeError):
            self.failed = True
        where = _finish(self.path, complete and not self.failed)
        self.incomplete = None if where == self.path else where


def _report_incomplete(name: str, where: Path | None) -> None:
    if where is not None:
        log.warning("%s: the recording is incomplete; what was written is in %s", name, where)


def _check_suffix(path: Path, allowed: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in allowed:
        raise OutputError(f"cannot record {what} to {path.name!r}: the extension must be one of "
                          f"{', '.join(allowed)}.")


class Writer(Protocol):
    """What the file outputs write through (a recorder, or a test's stand-in)."""

    def write(self, item: Any) -> None: ...
    def close(self) -> None: ...


class FrameFileOutput(ThreadedOutput):
    """Every frame to a :class:`FrameRecorder` (``.jsonl`` or ``.csv``), on its own thread.

    The output opens ``path`` with ``open_writer`` when it starts and closes it when it stops;
    or it appends to a caller's open ``recorder`` and leaves it open (the ``analyze`` command
    writes several inputs into one file). ``extra`` fields lead each row.
    """

    name = "record-frames"
    frame_capacity = 4096

    def __init__(self, path: Path | None = None, recorder: FrameRecorder | None = None,
                 extra: dict[str, object] | None = None,
                 open_writer: Callable[[Path], Writer] = FrameRecorder) -> None:
        super().__init__()
        if (path is None) == (recorder is None):
            raise ValueError("give exactly one of path or recorder")
        self.path = path if path is not None else recorder.path  # type: ignore[union-attr]
        self._writer: Writer | None = recorder
        self._owns = recorder is None
        self._open_writer = open_writer
        self._extra = extra

    def open(self, link: SessionLink) -> None:
        if self._writer is None:
            self._writer = self._open_writer(self.path)

    def on_frame(self, frame: Frame) -> None:
        assert self._writer is not None
        if self._extra is None:
            self._writer.write(frame)
        else:
            self._writer.write(frame, self._extra)  # type: ignore[call-arg]

    def close(self) -> None:
        if self._owns and self._writer is not None:
            self._writer.close()
            _report_incomplete(self.name, getattr(self._writer, "incomplete", None))

    def describe(self) -> str:
        return f"frames to {self.path}"


class AudioFileOutput(ThreadedOutput):
    """The conditioned 16 kHz mono audio to an :class:`AudioRecorder`, on its own thread."""

    name = "record-audio"
    wants_frames = False
    wants_audio = True
    audio_capacity = 4096

    def __init__(self, path: Path,
                 open_writer: Callable[[Path], Writer] = AudioRecorder) -> None:
        super().__init__()
        self.path = path
        self._open_writer = open_writer
        self._writer: Writer | None = None

    def open(self, link: SessionLink) -> None:
        self._writer = self._open_writer(self.path)

    def on_audio(self, block: AudioBlock) -> None:
        assert self._writer is not None
        self._writer.write(block)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            _report_incomplete(self.name, getattr(self._writer, "incomplete", None))

    def extra_counters(self) -> dict[str, int]:
        return {"samples_out": int(getattr(self._writer, "samples", 0))}

    def describe(self) -> str:
        return f"audio to {self.path}"


@dataclass(frozen=True)
class FrameFileConfig:
    """``--record FILE``: frames to FILE.jsonl or FILE.csv."""

    path: Path
    name = "record-frames"

    def __post_init__(self) -> None:
        _check_suffix(self.path, FRAME_FORMATS, "frames")

    def create(self) -> FrameFileOutput:
        return FrameFileOutput(self.path)


@dataclass(frozen=True)
class AudioFileConfig:
    """``--record-audio FILE``: the audio to FILE.wav or FILE.flac."""

    path: Path
    name = "record-audio"

    def __post_init__(self) -> None:
        _check_suffix(self.path, AUDIO_FORMATS, "audio")

    def create(self) -> AudioFileOutput:
        return AudioFileOutput(self.path)


def _add_frames_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", type=Path, help="also write frames to FILE.jsonl or FILE.csv")


def _add_audio_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record-audio", type=Path, help="also write the audio to FILE.wav/.flac")


FRAMES_KIND = OutputKind("record-frames", _add_frames_argument,
                         lambda args: FrameFileConfig(args.record) if args.record else None,
                         dashboard=False)
AUDIO_KIND = OutputKind("record-audio", _add_audio_argument,
                        lambda args: AudioFileConfig(args.record_audio) if args.record_audio
                        else None, dashboard=False)
