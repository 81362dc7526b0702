"""Defect 10 in the window: the demo banner, and kiosk full screen without a window manager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamser.engine import Engine
from streamser.gui.app import create_window
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice
from streamser.resources import demo_audio_path
from streamser.sources import FileSource

from .conftest import DEVICES
from .fakes import FakeRunner


def demo_factory(choice: SourceChoice) -> Engine:
    """A microphone that is not there: the session falls back to the demo audio."""
    path = choice.path if choice.path is not None else demo_audio_path()
    return Engine(FakeRunner(), FileSource(path, realtime=True))  # type: ignore[arg-type]


def window_for(qtbot: Any, tmp_path: Path, choice: SourceChoice, **kw: Any) -> Any:
    options = DashboardOptions(settings_path=tmp_path / "s.ini", record_dir=tmp_path,
                               list_devices=lambda: DEVICES, source=choice, **kw)
    window = create_window(demo_factory, options)
    qtbot.addWidget(window)
    return window


def test_demo_banner_says_no_microphone(qtbot: Any, themed: Any, tmp_path: Path,
                                        speech_wav: Path) -> None:
    """Playing the demo instead of a microphone shows the banner; a chosen file does not."""
    window = window_for(qtbot, tmp_path, SourceChoice())
    window.update_status()
    assert window.demo_banner.isVisible() and "no microphone" in window.demo_banner.text()
    window.open_source(SourceChoice(path=speech_wav))
    window.update_status()
    assert not window.demo_banner.isVisible()
    window.close()


def test_kiosk_fills_the_screen(qtbot: Any, themed: Any, tmp_path: Path) -> None:
    """Kiosk mode sizes the window to the whole screen itself (no window manager needed)."""
    window = window_for(qtbot, tmp_path, SourceChoice(), kiosk=True)
    screen = window.screen().geometry()
    assert window.geometry().size() == screen.size()
    window.close()
