"""How the CLI configures the dashboard: :class:`DashboardOptions` (no Qt here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamser.gui.session import SourceChoice

__all__ = ["DashboardOptions", "SourceChoice"]


@dataclass(frozen=True)
class DashboardOptions:
    """Everything :func:`streamser.gui.app.run_dashboard` needs besides the engine factory.

    Times are seconds. Callables are called on the Qt main thread and must not block for long.
    """

    source: SourceChoice = field(default_factory=SourceChoice)
    """What to open first. A device of None means: the device remembered from the last session
    if it is still present, else the system default."""
    kiosk: bool = False
    """Booth mode: full screen, large type, no controls, reopen the source when it ends or
    vanishes (a file loops)."""
    screenshot: Path | None = None
    """Save a PNG of the whole window after ``seconds`` and exit."""
    seconds: float | None = None
    """Run this long, then close (None: until the window is closed)."""
    ws_info: Callable[[], tuple[int, int] | None] | None = None
    """Returns the websocket server's ``(port, subscribers)`` now, or None while it is not
    serving; None: no websocket at all."""
    list_devices: Callable[[], Sequence[Any]] | None = None
    """Lists input devices (objects with index, name, hostapi, is_default); None uses
    ``streamser.devices.list_input_devices``."""
    record_dir: Path | None = None
    """Default folder for recordings (None: the current directory)."""
    settings_path: Path | None = None
    """INI file for remembered choices (None: the user's standard Qt settings location)."""
    history_s: float = 30.0
    """Span of the trajectories, 30-120 s."""
    refresh_hz: float = 30.0
    """Redraw rate of the plots."""
    size: tuple[int, int] = (1280, 720)
    """Initial window size in pixels (ignored in kiosk mode: full screen)."""
    title: str = "streamser"
    kiosk_reset_s: float = 180.0
    """Kiosk: a visitor's voice profile is cleared after this long without speech."""
    calibrate_s: float = 20.0
    """Seconds of speech an enrolment collects (the kiosk's one-button flow uses 12)."""

    def __post_init__(self) -> None:
        if not 30.0 <= self.history_s <= 120.0:
            raise ValueError(f"history_s is {self.history_s}; use 30 to 120 seconds")
        if not 1.0 <= self.refresh_hz <= 120.0:
            raise ValueError(f"refresh_hz is {self.refresh_hz}; use 1 to 120")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds is {self.seconds}; it must be positive")
        if self.screenshot is not None and self.seconds is None:
            raise ValueError("screenshot needs seconds: how long to run before taking it")
