"""``streamser analyze``: files through the same session code as live mode, as fast as compute
allows, into one JSONL/CSV timeline (main thread drives; the session runs its own threads).

Each file becomes a session (:func:`streamser.session.build_session`) with a file source read
without pacing (it waits for room in the capture queue, so no audio is dropped) and one output,
:class:`~streamser.outputs.recorders.FrameFileOutput`, appending to the shared recorder. A
thread-free path for notebooks stays in :func:`streamser.offline.analyze_file`; both give the
same frames (tested).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from streamser.app import with_profile
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SourceSpec
from streamser.engine import EngineState
from streamser.errors import AudioSourceError, OutputError, one_line
from streamser.model import ModelRunner, default_model_path
from streamser.offline import ProgressBar
from streamser.outputs.recorders import FrameFileOutput, FrameRecorder
from streamser.session import build_session
from streamser.sources import FileSource

__all__ = ["analyze_files"]


def analyze_files(files: Sequence[Path], out: Path, config: AnalyzerConfig,
                  model: Path | None = None, threads: int = 1,
                  err: TextIO | None = None, profile: str | None = None) -> int:
    """Write the timeline of every file to ``out``; returns the exit code (0).

    Raises :class:`StreamserError` for a missing/unreadable input (before anything is written),
    an unwritable output, a bad model, or audio that turns out corrupt mid-file.
    """
    err = err or sys.stderr

    def say(line: str) -> None:
        print(f"streamser: {one_line(line)}", file=err, flush=True)

    for path in files:
        FileSource(path, realtime=False)  # refuse a bad input before writing anything
    runner = ModelRunner.load(model or default_model_path(), threads=threads)
    config = with_profile(config, profile, runner.spec)  # refuse a bad profile up front
    recorder = FrameRecorder(out)
    total = 0
    current: Path | None = None
    try:
        for path in files:
            current = path
            extra: dict[str, object] = {"file": str(path)}  # always: scripts need one layout
            output = FrameFileOutput(recorder=recorder, extra=extra)
            session = build_session(runner, SourceSpec.file(path, realtime=False), config,
                                    [output], say)
            duration = getattr(session.engine.source, "duration_s", 0.0) or 1.0
            bar = ProgressBar(path.name, stream=err)
            session.start()
            try:
                while not session.wait(0.1):
                    bar(min(1.0, session.engine.stats().audio_s / duration))
            finally:
                session.stop()
            bar(1.0)
            bar.close()
            status = session.status()
            if status.state is EngineState.FAILED:
                raise AudioSourceError(f"{path}: {status.error}")
            lost = status.queues.get(f"frames/{output.name}", 0) + output.errors
            if lost:
                raise OutputError(f"{lost} frames of {path} could not be written to {out} "
                                  f"({output.error or 'the writer fell behind'}).")
            bad = status.engine.get("bad_samples", 0)
            if bad:
                say(f"warning: {path}: {bad} samples were NaN, infinite or absurdly large; "
                    "they were analysed as silence.")
            total += status.frames
            say(f"{path}: {status.frames} frames, {status.voiced_frames} with speech")
            if status.voiced_frames == 0:
                say(f"note: no speech detected in {path}: every frame is marked unvoiced "
                    "(silent or very quiet audio?); its emotion columns are not readings.")
        current = None
    finally:
        recorder.close(complete=current is None)
        if recorder.incomplete is not None:
            say(f"incomplete: {recorder.incomplete} holds {recorder.count} frames; the timeline "
                f"of {current} stops early{_later(files, current)} ({out} was not written).")
    say(f"wrote {total} frames to {out}")
    return 0


def _later(files: Sequence[Path], current: Path | None) -> str:
    """', and N later files are missing' when the run stopped before the last file."""
    if current is None or current not in files:
        return ""
    left = len(files) - list(files).index(current) - 1
    if not left:
        return ""
    return ", and 1 later file is missing" if left == 1 else f", and {left} later files are missing"
