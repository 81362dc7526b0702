"""``streamser live`` in the terminal: a session with the terminal view (main thread).

:class:`LiveOptions` is what the CLI parsed; the dashboard (:mod:`streamser.gui.live`) reads
the same options. :func:`run_headless` builds the session with :func:`streamser.session.
build_session` — the terminal view plus the outputs the flags asked for — and runs it until end
of stream, ``--seconds``, Ctrl-C or SIGTERM, then stops it in the fixed order: source →
inference worker → outputs (in registry order: websocket, LSL, OSC, recorders) → terminal.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from streamser.calibration.profiles import ProfileStore
from streamser.core.adapt import ActiveProfile
from streamser.core.analyzer import AnalyzerConfig
from streamser.core.config import SourceSpec
from streamser.core.contract import ModelSpec
from streamser.engine import EngineConfig, EngineState
from streamser.errors import one_line
from streamser.model import ModelRunner, default_model_path
from streamser.outputs.terminal import TerminalOutput
from streamser.session import OutputConfig, Session, build_session

__all__ = ["LiveOptions", "load_runner", "run_headless", "with_profile"]


@dataclass(frozen=True)
class LiveOptions:
    """Everything ``streamser live`` needs; built by :func:`streamser.cli.main`.

    ``outputs`` are the configs of the outputs asked for (websocket, LSL, OSC, recorders), in
    start order. ``seconds`` limits the run (None: until the source ends or a signal).
    """

    source: SourceSpec = field(default_factory=SourceSpec)
    model: Path | None = None
    threads: int = 1
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    outputs: tuple[OutputConfig, ...] = ()
    seconds: float | None = None
    quiet: bool = False
    profile: str | None = None
    """A saved voice profile to apply (``--profile``)."""


def load_runner(options: LiveOptions) -> ModelRunner:
    """Load the model the options name (or the shipped one)."""
    return ModelRunner.load(options.model or default_model_path(), threads=options.threads)


def with_profile(config: AnalyzerConfig, name: str | None, spec: ModelSpec) -> AnalyzerConfig:
    """``config`` with saved profile ``name`` applied (unchanged for None). Raises
    :class:`~streamser.errors.ProfileError` when it is missing, damaged or for another model."""
    if name is None:
        return config
    profile = ProfileStore().load_for(name, spec)
    return dataclasses.replace(config, profile=ActiveProfile(profile.name, profile.adaptation))


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
                 on_ready: Callable[[Session], None] | None = None) -> int:
    """Run a live session in the terminal until the source ends, ``seconds`` pass, or ``stop``.

    ``on_ready`` is called with the started session (tests read the bound ports from it).
    Returns the process exit code: 0 after a clean run, 1 when the source failed mid-way.
    Raises :class:`StreamserError` for problems found before audio flows.
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def say(line: str) -> None:
        print(f"streamser: {one_line(line)}", file=err, flush=True)

    stop = stop or threading.Event()
    runner = load_runner(options)
    analyzer = with_profile(options.analyzer, options.profile, runner.spec)
    terminal = () if options.quiet else (TerminalOutput(out),)
    unpaced = options.seconds if not options.source.realtime else None  # --fast: audio seconds
    session = build_session(runner, options.source, analyzer, (*options.outputs, *terminal), say,
                            engine_config=EngineConfig(max_audio_s=unpaced))
    with _signals_stop(stop):  # until cleanup is done: a second signal must not cut it short
        _run_session(session, options, runner.provider, say, stop, on_ready)
    status = session.status()
    losses = status.losses()
    say(f"stopped: {status.frames} frames over {status.audio_s:.1f} s of audio; "
        + (", ".join(f"{k} {v}" for k, v in losses.items()) if losses else "nothing dropped"))
    if status.frames and status.voiced_frames == 0 and status.state is not EngineState.FAILED:
        say("note: no speech was detected in any frame (silent input or a muted/very quiet "
            "microphone?); check the input level or pick another device with --device")
    if status.state is EngineState.FAILED:
        say(f"error: {status.error}")
        return 1
    return 0


def _run_session(session: Session, options: LiveOptions, provider: str,
                 say: Callable[[str], None], stop: threading.Event,
                 on_ready: Callable[[Session], None] | None) -> None:
    """Start ``session``, wait for its end, ``seconds`` or ``stop``, and stop it (main thread)."""
    try:
        session.start()
        served = "; ".join(o.describe() for o in session.outputs if o.name != "terminal")
        say(f"{session.engine.source.name} -> model {session.spec.model_version} "
            f"({provider}), window {session.spec.window_s:g} s, "
            f"hop {session.engine.settings.hop_s:g} s"
            + (f", voice profile {options.profile}" if options.profile else "")
            + (f"; {served}" if served else ""))
        if on_ready is not None:
            on_ready(session)
        paced = options.source.realtime  # unpaced: the engine counts --seconds of audio
        deadline = time.monotonic() + options.seconds if options.seconds and paced else None
        while not stop.is_set() and not session.wait(0.1):
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        session.stop()
