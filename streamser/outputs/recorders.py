"""Recorders: frames to JSONL or CSV, audio to WAV or FLAC.

Each recorder is owned by one consumer thread (the CLI's output loop or the GUI thread). They
write through a buffered file and flush on close; ``close()`` is idempotent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

from streamser.core.frames import SAMPLE_RATE, AudioBlock, Frame
from streamser.errors import OutputError

__all__ = ["FRAME_FORMATS", "AudioRecorder", "FrameRecorder"]

FRAME_FORMATS = (".jsonl", ".csv")
AUDIO_FORMATS = (".wav", ".flac")


def _open(path: Path) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}. Choose a writable path.") from None


class FrameRecorder:
    """Write frames to ``.jsonl`` (one ``frame`` object per line) or ``.csv`` (one row each).

    CSV columns: seq, start, end, wall_time, top, confidence, arousal, valence, voiced,
    voiced_prob, level_dbfs, latency_ms, model_version, then ``p_<label>`` (raw) and
    ``s_<label>`` (smoothed) for every label.
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

    def write(self, frame: Frame, extra: dict[str, object] | None = None) -> None:
        """Append one frame; ``extra`` fields (e.g. the source file) come first."""
        if self._file is None:
            raise OutputError(f"{self.path} is closed")
        body = {**(extra or {}), **frame.to_dict()}
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
        self.count += 1

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: sf.SoundFile | None = sf.SoundFile(
                str(self.path), "w", samplerate=rate, channels=1, subtype="PCM_16"
            )
        except (OSError, RuntimeError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}. Choose a writable path.") from None
        self._next: int | None = None
        self.samples = 0

    def write(self, block: AudioBlock) -> None:
        """Append one block; a gap since the previous block is written as zeros."""
        import numpy as np

        if self._file is None:
            raise OutputError(f"{self.path} is closed")
        if self._next is not None and block.start_sample > self._next:
            self._file.write(np.zeros(block.start_sample - self._next, dtype=np.float32))
            self.samples += block.start_sample - self._next
        self._file.write(block.samples)
        self.samples += len(block.samples)
        self._next = block.end_sample

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
