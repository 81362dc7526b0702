"""Assemble and run a live session: model + source + engine + outputs (main thread).

The CLI and the dashboard share these builders, so a microphone, a file and stdin all go through
the same engine. :func:`run_headless` is the terminal session: it prints frames, feeds recorders,
and shuts everything down in a fixed order on end of stream, ``--seconds``, Ctrl-C or SIGTERM:
source → inference worker → websocket server → recorders.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from streamser.bus import Overflow
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.frames import Frame
from streamser.engine import Engine, EngineConfig, EngineState
from streamser.errors import AudioSourceError
from streamser.model import ModelRunner, default_model_path
from streamser.outputs.recorders import AudioRecorder, FrameRecorder
from streamser.outputs.terminal import format_frame, header
from streamser.outputs.websocket import ServerConfig, WebSocketServer, session_info
from streamser.sources import FileSource, MicSource, Source, StdinSource

__all__ = ["DEMO_AUDIO", "LiveOptions", "build_engine", "open_source", "run_headless"]

DEMO_AUDIO = Path(__file__).resolve().parent.parent / "assets" / "demo.flac"


@dataclass(frozen=True)
class LiveOptions:
    """Everything ``streamser live`` needs; built by :func:`streamser.cli.main`.

    Times in seconds. ``source`` is ``"mic"``, ``"-"`` (raw s16le PCM on stdin) or a file path.
    """

    source: str = "mic"
    device: str | None = None
    model: Path | None = None
    threads: int = 1
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    realtime: bool = True
    loop: bool = False
    stdin_rate: int = 16_000
    stdin_channels: int = 1
    ws: ServerConfig | None = field(default_factory=ServerConfig)
    record_frames: Path | None = None
    record_audio: Path | None = None
    seconds: float | None = None
    quiet: bool = False


def open_source(options: LiveOptions, say: Callable[[str], None]) -> Source:
    """The source the options ask for. A default microphone that cannot be opened falls back to
    the bundled demo audio (paced in real time) after one line saying why; an explicitly chosen
    device that fails is an error.
    """
    if options.source == "-":
        return StdinSource(options.stdin_rate, options.stdin_channels)
    if options.source != "mic":
        return FileSource(options.source, realtime=options.realtime, loop=options.loop)
    try:
        return MicSource(options.device)
    except AudioSourceError as exc:
        if options.device is not None or not DEMO_AUDIO.is_file():
            raise
        say(f"no microphone ({str(exc).split('. ')[0]}); analysing the bundled demo audio "
            f"{DEMO_AUDIO.name} in real time instead")
        return FileSource(DEMO_AUDIO, realtime=True, loop=options.loop)


def build_engine(options: LiveOptions, say: Callable[[str], None]) -> Engine:
    """Load the model and open the source; the engine is built but not started."""
    runner = ModelRunner.load(options.model or default_model_path(), threads=options.threads)
    source = open_source(options, say)
    return Engine(runner, source, EngineConfig(analyzer=options.analyzer))


@contextmanager
def _signals_stop(stop: threading.Event) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``stop`` while inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_headless(options: LiveOptions, out: TextIO | None = None, err: TextIO | None = None,
                 stop: threading.Event | None = None,
                 on_ready: Callable[[Engine, WebSocketServer | None], None] | None = None) -> int:
    """Run a live session in the terminal until the source ends, ``seconds`` pass, or ``stop``.

    Returns the process exit code: 0 after a clean run, 1 when the source failed mid-way.
    Raises :class:`StreamserError` for problems found before audio flows.
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def say(line: str) -> None:
        print(f"streamser: {line}", file=err, flush=True)

    stop = stop or threading.Event()
    engine = build_engine(options, say)
    server: WebSocketServer | None = None
    frames_rec = FrameRecorder(options.record_frames) if options.record_frames else None
    audio_rec = AudioRecorder(options.record_audio) if options.record_audio else None
    view = engine.frames.subscribe("terminal", 512, Overflow.DROP_OLDEST)
    emit = _FrameSink(out, frames_rec, options.quiet)
    audio_q = engine.audio.subscribe("recorder", 1024, Overflow.DROP_OLDEST) if audio_rec else None
    try:
        if options.ws is not None:
            info = session_info(engine.spec, engine.stats().hop_s, engine.source.name)
            server = WebSocketServer(engine.frames, info, options.ws, stats=engine)
            server.start()
        engine.start()
        runner = engine.runner
        say(f"{engine.source.name} -> model {engine.spec.model_version} ({runner.provider}), "
            f"window {engine.spec.window_s:g} s, hop {engine.stats().hop_s:g} s"
            + (f"; websocket ws://{server.config.host}:{server.port}" if server else ""))
        if on_ready is not None:
            on_ready(engine, server)
        if not options.quiet:
            print(header(engine.spec.labels), file=out, flush=True)
        deadline = time.monotonic() + options.seconds if options.seconds else None
        with _signals_stop(stop):
            while not stop.is_set():
                frame = view.get(timeout=0.1)
                if frame is not None:
                    emit(frame)
                if audio_q is not None and audio_rec is not None:
                    for block in audio_q.drain():
                        audio_rec.write(block)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if frame is None and engine.finished.is_set() and len(view) == 0:
                    break
    finally:
        engine.stop()
        for frame in view.drain():
            emit(frame)
        if audio_q is not None and audio_rec is not None:
            for block in audio_q.drain():
                audio_rec.write(block)
        if server is not None:
            server.stop()
        if frames_rec is not None:
            frames_rec.close()
        if audio_rec is not None:
            audio_rec.close()
    stats = engine.stats()
    say(f"stopped: {stats.frames} frames over {stats.audio_s:.1f} s of audio; "
        f"{stats.dropped_blocks} capture blocks dropped, {view.stats().dropped} frames dropped "
        "by the terminal view")
    if stats.frames and emit.voiced == 0 and engine.state is not EngineState.FAILED:
        say("note: no speech was detected in any frame (silent input or a muted/very quiet "
            "microphone?); check the input level or pick another device with --device")
    if engine.state is EngineState.FAILED:
        say(f"error: {stats.error}")
        return 1
    return 0


class _FrameSink:
    """Where the terminal session sends each frame: the screen and the optional recorder."""

    def __init__(self, out: TextIO, rec: FrameRecorder | None, quiet: bool) -> None:
        self.out, self.rec, self.quiet = out, rec, quiet
        self.voiced = 0

    def __call__(self, frame: Frame) -> None:
        self.voiced += frame.voiced
        if not self.quiet:
            print(format_frame(frame), file=self.out, flush=True)
        if self.rec is not None:
            self.rec.write(frame)

