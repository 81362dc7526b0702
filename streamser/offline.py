"""Offline timelines: a file through the same conditioner and analyzer as live mode, as fast as
compute allows, with no threads. ``streamser analyze`` uses it; so can notebooks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from streamser.core.analyzer import Analyzer, AnalyzerConfig
from streamser.core.conditioning import Conditioner, RawBlock
from streamser.core.frames import Frame
from streamser.errors import AudioSourceError
from streamser.model import ModelRunner
from streamser.sources import FileSource

__all__ = ["FileReport", "ProgressBar", "analyze_file"]


@dataclass
class FileReport:
    """What happened to one file, filled in while :func:`analyze_file` runs (caller's thread).

    ``bad_samples`` counts input samples that were NaN, infinite or absurd and were analysed
    as silence; ``complete`` turns true only after the file's last frame was yielded.
    """

    frames: int = 0
    voiced: int = 0
    bad_samples: int = 0
    complete: bool = False


def analyze_file(
    path: str | Path,
    runner: ModelRunner,
    config: AnalyzerConfig | None = None,
    block_s: float = 0.25,
    progress: Callable[[float], None] | None = None,
    report: FileReport | None = None,
) -> Iterator[Frame]:
    """Yield the frames of one file; ``progress`` gets the fraction done (0..1) per block.

    ``report``, if given, is updated as frames are yielded. Raises :class:`AudioSourceError`
    for a missing, unreadable or empty file.
    """
    report = report if report is not None else FileReport()
    for frame in _frames_of(path, runner, config, block_s, progress, report):
        report.frames += 1
        report.voiced += frame.voiced
        yield frame
    report.complete = True


def _frames_of(path: str | Path, runner: ModelRunner, config: AnalyzerConfig | None,
               block_s: float, progress: Callable[[float], None] | None,
               report: FileReport) -> Iterator[Frame]:
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
                report.bad_samples = analyzer.bad_samples
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
