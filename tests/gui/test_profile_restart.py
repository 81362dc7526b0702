"""The dashboard keeps the chosen voice profile across restarts and refuses a stale one
(real Qt offscreen, real engine with the shipped model, a file source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from test_calibration_core import demo_voice

from streamser.calibration.profiles import Profile, ProfileStore
from streamser.core.enrolment import EnrolmentCollector, EnrolmentConfig
from streamser.engine import Engine
from streamser.gui.app import create_window
from streamser.gui.calibration import NO_PROFILE
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice
from streamser.model import ModelRunner
from streamser.resources import default_model_path
from streamser.sources import FileSource


@pytest.fixture(scope="module")
def shipped() -> ModelRunner:
    return ModelRunner.load(default_model_path())


def _save_profile(shipped: ModelRunner, folder: Path, name: str) -> None:
    """A real profile of demo actor 19, made through the core as calibrate would."""
    from streamser.core.analyzer import Analyzer, AnalyzerConfig
    from streamser.core.frames import AudioBlock

    analyzer = Analyzer(shipped.predict, shipped.spec, AnalyzerConfig())
    collector: EnrolmentCollector = analyzer.start_enrolment(
        EnrolmentConfig(target_speech_s=6, min_speech_s=3))
    analyzer.push(AudioBlock(0, demo_voice("19")[: 16_000 * 10], 0.0))
    assert analyzer.head is not None
    ProfileStore(folder).save(Profile.create(name, shipped.spec, analyzer.head,
                                             collector.finish()))


def test_picked_profile_survives_a_restart_and_a_stale_one_is_refused(
        qtbot: Any, themed: Any, shipped: ModelRunner, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pick 'me' -> frames carry it; Stop/Start builds a new engine that applies it again;
    a profile edited to another model version is refused in the status bar, not applied."""
    folder = tmp_path / "profiles"
    monkeypatch.setenv("STREAMSER_PROFILES", str(folder))
    _save_profile(shipped, folder, "me")
    wav = tmp_path / "voice.wav"
    sf.write(wav, demo_voice("20")[: 16_000 * 6], 16_000, subtype="PCM_16")

    def factory(choice: SourceChoice) -> Engine:
        return Engine(shipped, FileSource(wav, realtime=True, loop=True))

    window = create_window(factory, DashboardOptions(source=SourceChoice(path=wav),
                                                     settings_path=tmp_path / "s.ini"))
    qtbot.addWidget(window)
    bar = window.calibration.bar
    assert [bar.combo.itemText(i) for i in range(bar.combo.count())] == [NO_PROFILE, "me"]
    bar.combo.setCurrentIndex(1)
    bar.combo.activated.emit(1)
    first = window.host.engine
    assert first.settings.profile_name == "me"
    qtbot.waitUntil(lambda: window.history.last_frame is not None
                    and window.history.last_frame.profile == "me", timeout=10_000)
    window.toggle_running()
    window.toggle_running()
    second = window.host.engine
    assert second is not first and second.settings.profile_name == "me"
    qtbot.waitUntil(lambda: window.history.last_frame is not None
                    and window.history.last_frame.profile == "me", timeout=10_000)

    path = folder / "me.json"
    path.write_text(json.dumps({**json.loads(path.read_text()),
                                "model_version": "facenet-s-0.1.0"}))
    bar.combo.activated.emit(1)
    assert "calibrated with model facenet-s-0.1.0" in window.message
    assert second.settings.profile is None and bar.combo.currentText() == NO_PROFILE
    window.close()
