"""``streamser calibrate``: enrol one voice in the terminal, from a microphone or a recording.

With a microphone it shows the passage to read, a level meter and a 3-second countdown, then
a progress bar and the seconds left while the person reads; with ``--source FILE`` it enrols
from the recording as fast as it can, without questions (for scripts and tests). Either way
the engine collects and checks the enrolment (:mod:`streamser.core.enrolment`), saves the
profile (:mod:`streamser.calibration.profiles`) and the command prints where, or why the
enrolment was refused. Main thread; the session runs its own threads.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from streamser.bus import Overflow
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SourceKind, SourceSpec
from streamser.core.enrolment import EnrolmentEvent
from streamser.core.passages import Passage, passage
from streamser.engine import EngineConfig
from streamser.errors import AudioSourceError
from streamser.model import ModelRunner, default_model_path
from streamser.session import Session, build_session

__all__ = ["CalibrateOptions", "meter", "run_calibrate"]


@dataclass(frozen=True)
class CalibrateOptions:
    """What ``streamser calibrate`` parsed. ``seconds`` of neutral speech; ``emotions`` are
    prompted afterwards (one sentence each); ``profiles_dir`` None = the user config folder."""

    profile: str = "me"
    source: SourceSpec = field(default_factory=SourceSpec)
    model: Path | None = None
    seconds: float = 20.0
    language: str = "en"
    emotions: tuple[str, ...] = ()
    countdown_s: float = 3.0
    profiles_dir: Path | None = None
    timeout_s: float = 180.0


def meter(level_dbfs: float, width: int = 20) -> str:
    """A text level meter from -60 to 0 dBFS: ``|#######.............| -28 dBFS``."""
    level = level_dbfs if math.isfinite(level_dbfs) else -120.0
    filled = max(0, min(width, round((level + 60.0) / 60.0 * width)))
    return f"|{'#' * filled}{'.' * (width - filled)}| {max(level, -99.0):4.0f} dBFS"


class _Screen:
    """Progress output: one rewritten line on a terminal, a few plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_plain = -1

    def line(self, text: str, step: int = -1) -> None:
        if self.tty:
            self.stream.write("\r" + text.ljust(78))
            self.stream.flush()
        elif step != self._last_plain:
            self._last_plain = step
            print(text, file=self.stream, flush=True)

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _show_passage(text: Passage, emotions: tuple[str, ...], out: TextIO) -> None:
    print("\nRead this aloud, calmly, in your normal voice:\n", file=out)
    words, line = text.text.split(), ""
    for word in words:
        if len(line) + len(word) > 70:
            print("    " + line, file=out)
            line = ""
        line = f"{line} {word}".strip()
    print("    " + line + "\n", file=out)
    if emotions:
        print("Then you will be asked to say one sentence in each of: "
              f"{', '.join(emotions)}.\n", file=out)


def _countdown(session: Session, seconds: float, screen: _Screen) -> None:
    """Show the input level for ``seconds`` before the enrolment starts."""
    audio = session.audio.subscribe("calibrate-meter", 64, Overflow.DROP_OLDEST)
    try:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            blocks = audio.drain()
            level = -120.0
            if blocks:
                x = np.concatenate([b.samples for b in blocks]).astype(np.float64)
                level = 10.0 * math.log10(float(np.mean(x * x)) + 1e-12) if len(x) else -120.0
            screen.line(f"Starting in {math.ceil(left)}  {meter(level)}", math.ceil(left))
            time.sleep(0.1)
    finally:
        session.audio.unsubscribe(audio)


def run_calibrate(options: CalibrateOptions, out: TextIO | None = None,
                  err: TextIO | None = None, stop: threading.Event | None = None) -> int:
    """Enrol, save and report. Returns 0 when a profile was saved, 2 when the enrolment was
    refused (the reasons are printed), 1 when the source failed, 130 when interrupted.
    Raises :class:`StreamserError` for problems found before audio flows."""
    out, err = out or sys.stdout, err or sys.stderr
    stop = stop or threading.Event()
    interactive = options.source.kind is SourceKind.MIC
    runner = ModelRunner.load(options.model or default_model_path())
    text = passage(options.language)

    def say(line: str) -> None:
        print(f"streamser: {line}", file=err, flush=True)

    session = build_session(runner, options.source, AnalyzerConfig(), (), say,
                            engine_config=EngineConfig(profiles_dir=options.profiles_dir))
    events = session.enrolment.subscribe("calibrate", 256, Overflow.DROP_OLDEST)
    screen = _Screen(out)
    outcome: EnrolmentEvent | None = None
    try:
        if interactive:
            _show_passage(text, options.emotions, out)
            session.start()
            _countdown(session, options.countdown_s, screen)
            session.start_enrolment(options.profile, options.seconds, options.emotions, text.key)
        else:
            session.start_enrolment(options.profile, options.seconds, options.emotions, text.key)
            session.start()
        deadline = time.monotonic() + options.timeout_s
        phase: str | None = "neutral"
        while outcome is None and not stop.is_set() and time.monotonic() < deadline:
            got = events.get(timeout=0.1)
            if got is None:
                if session.finished.is_set() and len(events) == 0:
                    break
                continue
            if got.kind in ("done", "failed", "cancelled"):
                outcome = got
            elif got.progress is not None:
                p = got.progress
                if interactive and p.phase not in (phase, None, "neutral"):
                    screen.end()
                    print(f"\nNow say this sounding {str(p.phase).upper()}:\n    "
                          f"{text.prompts.get(str(p.phase), '')}\n", file=out)
                phase = p.phase
                left = max(0.0, p.target_s - p.speech_s)
                bar = "#" * round(20 * p.fraction) + "-" * (20 - round(20 * p.fraction))
                screen.line(f"[{bar}] {p.speech_s:4.1f}/{p.target_s:g} s, {left:4.1f} s left  "
                            f"{meter(p.level_dbfs, 12)}", round(4 * p.fraction))
        if outcome is None and not stop.is_set() and not session.finished.is_set():
            session.cancel_enrolment()
    finally:
        session.stop()
        screen.end()
    status = session.status()
    if outcome is not None and outcome.kind == "done":
        print(f"streamser: {outcome.message}. Use it with: streamser live --profile "
              f"{options.profile}", file=out)
        return 0
    if stop.is_set():
        print("streamser: calibration interrupted; nothing saved", file=err)
        return 130
    if status.error is not None and outcome is None:
        raise AudioSourceError(status.error)
    if outcome is not None and outcome.kind == "failed":
        print(f"streamser: calibration refused: {outcome.message}", file=err)
        return 2
    print("streamser: calibration did not finish (the audio ended or timed out); nothing "
          "saved", file=err)
    return 2
