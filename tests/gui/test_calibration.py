"""Calibrating from the dashboard and the kiosk: real Qt (offscreen), the real engine with the
shipped model, and a voice played into the PulseAudio virtual microphone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from test_calibration_core import demo_voice

from streamser.calibration.profiles import ProfileStore
from streamser.engine import Engine
from streamser.gui.app import create_window
from streamser.gui.calibration import KIOSK_PROFILE, NO_PROFILE
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice
from streamser.model import ModelRunner
from streamser.resources import default_model_path

from .test_mic import _need_virtual_mic

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.fixture(scope="module")
def shipped() -> ModelRunner:
    return ModelRunner.load(default_model_path())


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "profiles"
    monkeypatch.setenv("STREAMSER_PROFILES", str(folder))
    return folder


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    """About 12 s of demo actor 20, to be played into the virtual microphone."""
    path = tmp_path / "voice.wav"
    sf.write(path, demo_voice("20")[: 16_000 * 12], 16_000, subtype="PCM_16")
    return path


@pytest.fixture
def player() -> Iterator[list[subprocess.Popen[bytes]]]:
    """paplay processes started by a test; each is ended (by its pid) afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)


def _window(shipped: ModelRunner, tmp_path: Path, **options: Any) -> Any:
    from streamser.sources import MicSource

    def factory(choice: SourceChoice) -> Engine:
        return Engine(shipped, MicSource(choice.device))

    return create_window(factory, DashboardOptions(
        source=SourceChoice(device="pulse"), settings_path=tmp_path / "s.ini", **options))


def _play(player: list[subprocess.Popen[bytes]], wav: Path) -> None:
    player.append(subprocess.Popen(["paplay", "-d", "vsink", str(wav)]))


def test_dashboard_calibrate_button_and_profile_picker(qtbot: Any, themed: Any,
                                                       shipped: ModelRunner, profiles: Path,
                                                       voice: Path, tmp_path: Path,
                                                       player: list[Any]) -> None:
    """Calibrate... -> name -> Start -> the voice is read through the mic -> saved, picked,
    applied (frames carry the profile); 'no profile' in the picker clears it."""
    _need_virtual_mic()
    window = _window(shipped, tmp_path, calibrate_s=6.0)
    qtbot.addWidget(window)
    calib = window.calibration
    engine = window.host.engine
    qtbot.waitUntil(lambda: engine.stats().blocks > 0, timeout=10_000)
    assert not calib.card.isVisible()
    qtbot.mouseClick(calib.bar.button, Qt.MouseButton.LeftButton)
    assert calib.card.isVisibleTo(window) and calib.card.state == "idle"
    calib.card.name.setText("desk")
    qtbot.mouseClick(calib.card.start_button, Qt.MouseButton.LeftButton)
    assert calib.card.state == "enrolling"
    _play(player, voice)
    qtbot.waitUntil(lambda: calib.card.progress.value() > 0, timeout=15_000)
    qtbot.waitUntil(lambda: calib.card.state in ("done", "failed"), timeout=30_000)
    assert calib.card.state == "done", calib.card.detail.text()
    assert "saved" in calib.card.detail.text()
    method = ProfileStore(profiles).load_for("desk", shipped.spec).adaptation.method
    assert method == ("reference" if shipped.spec.speaker_reference else "prior")
    assert calib.bar.combo.currentText() == "desk"
    qtbot.waitUntil(lambda: window.history.last_frame is not None
                    and window.history.last_frame.profile == "desk", timeout=10_000)
    calib.bar.combo.setCurrentIndex(0)
    calib.bar.combo.activated.emit(0)
    assert calib.bar.combo.currentText() == NO_PROFILE and engine.settings.profile is None
    qtbot.waitUntil(lambda: window.history.last_frame.profile is None, timeout=10_000)
    window.close()
    assert engine.finished.is_set()


def test_kiosk_one_button_flow_resets_after_silence(qtbot: Any, themed: Any,
                                                    shipped: ModelRunner, profiles: Path,
                                                    voice: Path, tmp_path: Path,
                                                    player: list[Any]) -> None:
    """Kiosk: one button, the visitor reads, the plot follows their profile; after
    kiosk_reset_s without speech the profile is cleared and deleted and the button is back."""
    _need_virtual_mic()
    window = _window(shipped, tmp_path, kiosk=True, kiosk_reset_s=3.0, calibrate_s=6.0)
    qtbot.addWidget(window)
    calib = window.calibration
    engine = window.host.engine
    qtbot.waitUntil(lambda: engine.stats().blocks > 0, timeout=10_000)
    assert calib.card.isVisibleTo(window) and not calib.bar.isVisibleTo(window)
    assert calib.card.start_button.text() == "Calibrate to my voice"
    qtbot.mouseClick(calib.card.start_button, Qt.MouseButton.LeftButton)
    _play(player, voice)
    qtbot.waitUntil(lambda: calib.card.state in ("done", "failed"), timeout=30_000)
    assert calib.card.state == "done", calib.card.detail.text()
    assert calib.chosen == KIOSK_PROFILE
    assert (profiles / f"{KIOSK_PROFILE}.json").is_file()
    qtbot.waitUntil(lambda: window.history.last_frame.profile == KIOSK_PROFILE,
                    timeout=10_000)
    player[-1].wait(20)  # the visitor stops talking
    qtbot.waitUntil(lambda: calib.card.state == "idle", timeout=20_000)
    assert calib.chosen is None and engine.settings.profile is None
    assert not (profiles / f"{KIOSK_PROFILE}.json").exists()
    assert "next visitor" in calib.card.detail.text()
    window.close()
