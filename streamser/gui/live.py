"""``streamser live`` with the dashboard: LiveOptions -> engine factory + websocket -> dashboard.

The CLI builds :class:`streamser.app.LiveOptions` as for a terminal session and calls
:func:`run_live_dashboard`. The model is loaded once; every (re)start of the pipeline — another
device, another file, Start after Stop, kiosk recovery — builds a fresh source and engine with
the same runner, through :func:`streamser.app.open_source` (so the default-microphone fallback to
the bundled demo audio is the terminal's). Each engine gets its own websocket server on the
configured port, started before the engine and stopped after it, so subscribers reconnect to
the same address after a restart.

Main thread only (it runs the Qt event loop).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path
from typing import Any

from streamser.errors import ConfigError, StreamserError
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice

__all__ = ["ServedEngine", "live_factory", "run_live_dashboard", "source_choice"]


def source_choice(live: Any) -> SourceChoice:
    """The dashboard's first source from ``LiveOptions.source`` / ``.device``."""
    if live.source == "-":
        raise ConfigError("the dashboard cannot read raw PCM from stdin; add --no-gui.")
    if live.source == "mic":
        device = live.device
        if isinstance(device, str) and device.strip().lstrip("-").isdigit():
            device = int(device)
        return SourceChoice(device=device)
    return SourceChoice(path=Path(live.source))


class ServedEngine:
    """An :class:`streamser.engine.Engine` plus the websocket server fed by its frames.

    Looks like the engine to the dashboard; :meth:`stop` stops the engine, then the server.
    """

    def __init__(self, engine: Any, server: Any | None) -> None:
        self.engine = engine
        self.server = server
        self.frames = engine.frames
        self.audio = engine.audio
        self.finished: threading.Event = engine.finished
        self.spec = engine.spec

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        try:
            self.engine.stop()
        finally:
            if self.server is not None:
                self.server.stop()

    def set_hop(self, hop_s: float) -> None:
        self.engine.set_hop(hop_s)

    def set_smoothing(self, tau_s: float) -> None:
        self.engine.set_smoothing(tau_s)

    def stats(self) -> Any:
        return self.engine.stats()


class _LiveFactory:
    """Engine factory over one loaded model; remembers the current websocket server."""

    def __init__(self, live: Any, runner: Any, kiosk: bool) -> None:
        self.live = live
        self.runner = runner
        self.kiosk = kiosk
        self.server: Any | None = None

    def __call__(self, choice: SourceChoice) -> ServedEngine:
        from streamser.app import open_source
        from streamser.engine import Engine, EngineConfig
        from streamser.outputs.websocket import WebSocketServer, session_info

        first = self.live.source
        is_first_file = choice.path is not None and first not in ("mic", "-") and \
            Path(first) == choice.path
        live = dataclasses.replace(
            self.live,
            source=str(choice.path) if choice.path is not None else "mic",
            device=None if choice.device is None else str(choice.device),
            loop=self.live.loop or (self.kiosk and choice.path is not None),
            # files opened in the window always play in real time; --fast applies to its own
            realtime=self.live.realtime if is_first_file else True,
        )
        source = open_source(live, _say)
        engine = Engine(self.runner, source, EngineConfig(analyzer=live.analyzer))
        server = None
        if live.ws is not None:
            info = session_info(engine.spec, engine.stats().hop_s, source.name)
            server = WebSocketServer(engine.frames, info, live.ws, stats=engine)
            try:
                server.start()
            except StreamserError as exc:
                _say(str(exc))
                server = None
        self.server = server
        return ServedEngine(engine, server)

    def ws_info(self) -> tuple[int, int] | None:
        """``(port, subscribers)`` of the current server, or None."""
        server = self.server
        return None if server is None else (int(server.port), int(server.subscribers))


def _say(line: str) -> None:
    print(f"streamser: {line}", file=sys.stderr, flush=True)


def live_factory(live: Any, kiosk: bool = False) -> _LiveFactory:
    """Load the model named by ``live`` (LiveOptions) and return the dashboard's factory."""
    from streamser.model import ModelRunner, default_model_path

    runner = ModelRunner.load(live.model or default_model_path(), threads=live.threads)
    return _LiveFactory(live, runner, kiosk)


def run_live_dashboard(live: Any, options: DashboardOptions) -> int:
    """``streamser live`` with a window: returns the exit code.

    ``live`` is :class:`streamser.app.LiveOptions`; its source, device, websocket and seconds
    apply (``options.seconds`` wins when set). Raises StreamserError before the window opens
    when the model cannot be loaded or the source is stdin.
    """
    from streamser.gui.app import run_dashboard

    choice = source_choice(live)
    factory = live_factory(live, kiosk=options.kiosk)
    options = dataclasses.replace(
        options,
        source=choice,
        seconds=options.seconds if options.seconds is not None else live.seconds,
        ws_info=factory.ws_info if live.ws is not None else None,
    )
    return run_dashboard(factory, options)
