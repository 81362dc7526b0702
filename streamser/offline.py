"""Offline timelines: a file through the same conditioner and analyzer as live mode, as fast as
compute allows, with no threads. ``streamser analyze`` uses it; so can notebooks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from streamser.analyzer import Analyzer, AnalyzerConfig
from streamser.errors import AudioSourceError
from streamser.frames import Frame
from streamser.model import ModelRunner
from streamser.sources import Conditioner, FileSource, RawBlock

__all__ = ["ProgressBar", "analyze_file"]


def analyze_file(
    path: str | Path,
    runner: ModelRunner,
    config: AnalyzerConfig | None = None,
    block_s: float = 0.25,
    progress: Callable[[float], None] | None = None,
) -> Iterator[Frame]:
    """Yield the frames of one file; ``progress`` gets the fraction done (0..1) per block.

    Raises :class:`AudioSourceError` for a missing, unreadable or empty file.
    """
    import soundfile as sf

    source = FileSource(path, realtime=False)  # validates the file with a clear message
    conditioner = Conditioner(source.rate)
    analyzer = Analyzer(runner.predict, runner.spec, config or AnalyzerConfig())
    blocksize = max(1, round(block_s * source.rate))
    total = max(1, round(source.duration_s * source.rate))  # frames at the file's rate
    frame = 0
    try:
        with sf.SoundFile(str(source.path)) as f:
            for data in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
                block = conditioner.process(RawBlock(frame, data, time.monotonic()))
                frame += len(data)
                yield from analyzer.push(block)
                if progress is not None:
                    progress(min(1.0, frame / total))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioSourceError(f"{path}: audio data is corrupt after sample {frame} ({exc}).") \
            from None
    yield from analyzer.push(conditioner.flush(time.monotonic()))
    yield from analyzer.flush()


class ProgressBar:
    """A one-line progress bar on a terminal stream (nothing when it is not a TTY)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self._shown = -1

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        filled = int(fraction * self.width)
        if filled == self._shown:
            return
        self._shown = filled
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:5.1f}%")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
