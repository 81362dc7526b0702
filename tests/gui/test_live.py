"""The CLI glue: LiveOptions -> one loaded model, sessions with their websocket server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from streamser.app import LiveOptions
from streamser.core.config import SourceSpec
from streamser.errors import ConfigError
from streamser.gui.live import live_factory, run_live_dashboard, source_choice
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice
from streamser.outputs.websocket import ServerConfig


def test_source_choice_from_live_options(tmp_path: Path) -> None:
    """mic/device/file map to SourceChoice; stdin is refused with what to do."""
    assert source_choice(LiveOptions()) == SourceChoice()
    assert source_choice(LiveOptions(SourceSpec.parse("mic", device="3"))) == \
        SourceChoice(device=3)
    assert source_choice(LiveOptions(SourceSpec.mic("USB"))) == SourceChoice(device="USB")
    assert source_choice(LiveOptions(SourceSpec.parse("a.wav"))) == \
        SourceChoice(path=Path("a.wav"))
    with pytest.raises(ConfigError, match="--no-gui"):
        source_choice(LiveOptions(SourceSpec.parse("-")))


def test_each_session_gets_a_websocket_server(tiny_model_path: Path, speech_wav: Path) -> None:
    """The factory's session serves its frames on the websocket; stop() closes both."""
    live = LiveOptions(SourceSpec.file(speech_wav), model=tiny_model_path,
                       outputs=(ServerConfig(port=0),))
    factory = live_factory(live)
    served = factory(SourceChoice(path=speech_wav))
    assert factory.ws_info() is None  # not serving before start
    served.start()
    info = factory.ws_info()
    assert info is not None and info[0] > 0 and info[1] == 0
    try:
        with connect(f"ws://127.0.0.1:{info[0]}") as ws:
            hello = json.loads(ws.recv(timeout=3))
            assert hello["type"] in ("hello", "session")
            assert served.stats().model_version == served.spec.model_version
    finally:
        served.stop()
        served.stop()
    assert served.finished.is_set()


def test_run_live_dashboard_screenshot(qtbot: Any, themed: Any, tiny_model_path: Path,
                                       speech_wav: Path, tmp_path: Path) -> None:
    """The whole path the CLI takes: a 4-label model, a file, a screenshot, exit 0."""
    live = LiveOptions(SourceSpec.file(speech_wav), model=tiny_model_path,
                       outputs=(ServerConfig(port=0),))
    out = tmp_path / "live.png"
    code = run_live_dashboard(live, DashboardOptions(
        screenshot=out, seconds=1.5, settings_path=tmp_path / "s.ini", list_devices=lambda: []))
    assert code == 0 and out.stat().st_size > 10_000
