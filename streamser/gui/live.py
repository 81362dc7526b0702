"""``streamser live`` with the dashboard: LiveOptions -> session factory -> dashboard.

The CLI builds :class:`streamser.app.LiveOptions` as for a terminal session and calls
:func:`run_live_dashboard`. The model is loaded once; every (re)start of the pipeline — another
device, another file, Start after Stop, kiosk recovery — builds a fresh session with the same
runner through :func:`streamser.session.build_session`, the code the terminal and ``analyze``
use. Each session gets its own outputs (websocket, LSL, OSC; not the recorders: the dashboard
has its Record button) from the same configs, so subscribers reconnect to the same address
after a restart. An output that cannot start is reported and left out; the dashboard still
runs.

Main thread only (it runs the Qt event loop).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from streamser.core.config import SourceKind, SourceSpec
from streamser.errors import ConfigError
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice

__all__ = ["live_factory", "run_live_dashboard", "source_choice"]


def source_choice(live: Any) -> SourceChoice:
    """The dashboard's first source from ``LiveOptions.source`` (a :class:`SourceSpec`)."""
    spec: SourceSpec = live.source
    if spec.kind is SourceKind.STDIN:
        raise ConfigError("the dashboard cannot read raw PCM from stdin; add --no-gui.")
    if spec.kind is SourceKind.MIC:
        return SourceChoice(device=spec.device)
    return SourceChoice(path=spec.path)


class _LiveFactory:
    """Session factory over one loaded model; remembers the current session."""

    def __init__(self, live: Any, runner: Any, kiosk: bool) -> None:
        from streamser.outputs import for_dashboard

        self.live = live
        self.runner = runner
        self.kiosk = kiosk
        self.outputs, _ = for_dashboard(live.outputs)
        self.session: Any | None = None

    def __call__(self, choice: SourceChoice) -> Any:
        from streamser.session import build_session

        first: SourceSpec = self.live.source
        if choice.path is not None:
            is_first_file = first.kind is SourceKind.FILE and first.path == choice.path
            spec = SourceSpec.file(
                choice.path,
                # files opened in the window always play in real time; --fast applies to its own
                realtime=first.realtime if is_first_file else True,
                loop=first.loop or self.kiosk)
        else:
            spec = SourceSpec.mic(choice.device)
            spec = dataclasses.replace(spec, loop=first.loop)
        self.session = build_session(self.runner, spec, self.live.analyzer, self.outputs, _say,
                                     tolerate_output_errors=True)
        return self.session

    def ws_info(self) -> tuple[int, int] | None:
        """``(port, subscribers)`` of the current session's websocket, or None."""
        session = self.session
        ws = session.output("websocket") if session is not None else None
        return None if ws is None else (int(ws.port), int(ws.subscribers))


def _say(line: str) -> None:
    print(f"streamser: {line}", file=sys.stderr, flush=True)


def live_factory(live: Any, kiosk: bool = False) -> _LiveFactory:
    """Load the model named by ``live`` (LiveOptions) and return the dashboard's factory."""
    from streamser.app import load_runner, with_profile

    runner = load_runner(live)
    profiled = with_profile(live.analyzer, getattr(live, "profile", None), runner.spec)
    return _LiveFactory(dataclasses.replace(live, analyzer=profiled), runner, kiosk)


def run_live_dashboard(live: Any, options: DashboardOptions) -> int:
    """``streamser live`` with a window: returns the exit code.

    ``live`` is :class:`streamser.app.LiveOptions`; its source, outputs and seconds apply
    (``options.seconds`` wins when set). Raises StreamserError before the window opens when the
    model cannot be loaded or the source is stdin.
    """
    from streamser.gui.app import run_dashboard

    choice = source_choice(live)
    factory = live_factory(live, kiosk=options.kiosk)
    has_ws = any(config.name == "websocket" for config in factory.outputs)
    options = dataclasses.replace(
        options,
        source=choice,
        seconds=options.seconds if options.seconds is not None else live.seconds,
        ws_info=factory.ws_info if has_ws else None,
    )
    return run_dashboard(factory, options)
