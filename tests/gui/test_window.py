"""The dashboard window on the real engine (fake model, synthetic audio), offscreen."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamser.gui.app import create_window
from streamser.gui.options import DashboardOptions
from streamser.gui.session import SourceChoice

from .conftest import DEVICES, Factory


def make_window(qtbot: Any, factory: Factory, tmp_path: Path, **kw: Any) -> Any:
    kw.setdefault("source", SourceChoice(path=factory.wav))
    options = DashboardOptions(settings_path=tmp_path / "settings.ini", record_dir=tmp_path,
                               list_devices=lambda: DEVICES, ws_info=lambda: (8765, 3), **kw)
    window = create_window(factory, options)
    qtbot.addWidget(window)
    return window


def run_to_end(qtbot: Any, window: Any) -> None:
    """Wait until the (unpaced) file ended and the dashboard drained everything."""
    engine = window.host.engine
    qtbot.waitUntil(lambda: engine.finished.is_set(), timeout=10_000)
    qtbot.waitUntil(lambda: window.history.frames_seen == engine.stats().frames, timeout=5000)
    qtbot.wait(60)


def test_frames_reach_every_plot(qtbot: Any, themed: Any, factory: Factory,
                                 tmp_path: Path) -> None:
    """Trajectories, plane, now label, meters, waveform and prosody all get data."""
    window = make_window(qtbot, factory, tmp_path)
    run_to_end(qtbot, window)
    hist = window.history
    assert hist.frames_seen > 10 and hist.blocks_seen > 100
    x, y = window.traj.curves["happy"].getData()
    assert len(x) == hist.frames_seen and x[-1] <= 0.0
    assert np.isfinite(y).any()
    _, band_y = window.traj._band.getData()
    voiced = hist.voiced.view() > 0.5
    assert set(np.unique(band_y)) <= {0.0, 1.0}
    # unvoiced stretches are shown as such: grey band up, label lines broken
    assert np.all(band_y[~voiced] == 1.0) and np.all(np.isnan(y[~voiced]))
    assert (~voiced).any() and voiced.any()
    tx, ty = window.av._trail.getData()
    assert 1 <= len(tx) <= 48 and np.all(np.abs(tx) <= 1) and np.all(np.abs(ty) <= 1)
    assert window.now.text in (*factory.runner.labels, "no speech")
    wx, wy = window.wave._curve.getData()
    assert len(wx) > 500 and np.max(wy) > 0.1
    px, py = window.prosody._pitch.getData()
    assert len(px) > 200 and 100 < np.nanmedian(py) < 300
    assert window.meters.level.peak_db > -30
    assert window.meters.clip.on  # the synthetic file has a full-scale burst
    info = window.status_info()
    assert info.model == "fake-test-1" and info.ws_port == 8765 and info.ws_subscribers == 3
    assert info.gui_dropped == 0 and info.dropped_blocks == 0
    assert not np.isnan(info.latency_ms)
    window.update_status()
    assert "3 subscribers" in window.status.fields["ws"].text()


def test_device_list_marks_default_and_remembers_choice(qtbot: Any, themed: Any,
                                                        factory: Factory,
                                                        tmp_path: Path) -> None:
    """Devices appear once with the default starred; the pick is remembered next time."""
    window = make_window(qtbot, factory, tmp_path, source=SourceChoice())
    combo = window.controls.device_combo
    assert combo.count() == 2
    assert combo.itemText(0).startswith("\u2605 Built-in") and "\u2605" not in combo.itemText(1)
    assert factory.choices[-1] == SourceChoice()  # nothing remembered yet: system default
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    assert factory.choices[-1] == SourceChoice(device=3)
    assert window.host.running
    window.close()
    again = make_window(qtbot, factory, tmp_path, source=SourceChoice())
    assert factory.choices[-1] == SourceChoice(device=3)
    assert again.controls.current_device() == 3


def test_start_stop_and_open_file(qtbot: Any, themed: Any, factory: Factory,
                                  tmp_path: Path, speech_wav: Path) -> None:
    """Stop joins the engine; Start reopens; a picked file plays through a new engine."""
    factory.realtime = True
    window = make_window(qtbot, factory, tmp_path)
    first = window.host.engine
    qtbot.waitUntil(lambda: window.history.blocks_seen > 5, timeout=5000)
    window.controls.start_button.click()
    assert first.finished.is_set() and not window.host.running
    window.update_status()
    assert window.controls.start_button.text() == "Start"
    assert window.status_info().state == "stopped"
    window.controls.start_button.click()
    assert window.host.running and window.host.engine is not first
    other = tmp_path / "other.wav"
    other.write_bytes(speech_wav.read_bytes())
    window.controls.fileChosen.emit(other)
    assert factory.choices[-1] == SourceChoice(path=other)
    assert window.host.running and len(factory.engines) == 3
    qtbot.waitUntil(lambda: window.history.blocks_seen > 5, timeout=5000)


def test_hop_and_smoothing_apply_live(qtbot: Any, themed: Any, factory: Factory,
                                      tmp_path: Path) -> None:
    """The spin boxes change the running engine's hop and smoothing at once."""
    factory.realtime = True
    window = make_window(qtbot, factory, tmp_path)
    engine = window.host.engine
    assert window.controls.hop_spin.value() == pytest.approx(engine.stats().hop_s)
    window.controls.hop_spin.setValue(0.5)
    window.controls.smoothing_spin.setValue(0.3)
    assert engine.stats().hop_s == pytest.approx(0.5)
    assert engine.stats().smoothing_s == pytest.approx(0.3)
    start = window.history.frames_seen
    qtbot.waitUntil(lambda: window.history.frames_seen >= start + 4, timeout=5000)
    ends = window.history.times.view()[-3:]
    assert np.allclose(np.diff(ends), 0.5)
    # kept for the next engine
    window.controls.start_button.click()
    window.controls.start_button.click()
    assert window.host.engine.stats().hop_s == pytest.approx(0.5)


def test_record_writes_frames_and_audio(qtbot: Any, themed: Any, factory: Factory,
                                        tmp_path: Path) -> None:
    """Record writes a frames file and an audio file to the folder, with a running timer."""
    pytest.importorskip("streamser.outputs.recorders")
    factory.realtime = True
    window = make_window(qtbot, factory, tmp_path)
    window.controls.set_record_folder(tmp_path / "rec")
    window.controls.record_button.click()
    assert window.recording is not None and window.recording.active
    qtbot.wait(1300)
    window.update_status()
    assert window.controls.record_time.text() == "00:01"
    window.controls.record_button.click()
    assert not window.recording.active
    paths = window.recording.paths
    assert paths.frames.stat().st_size > 0 and paths.audio.stat().st_size > 0
    assert window.recording.frames_written > 0 and window.recording.dropped() == 0


def test_closing_stops_every_thread(qtbot: Any, themed: Any, factory: Factory,
                                    tmp_path: Path) -> None:
    """Closing the window stops timers, then the engine; no streamser thread survives."""
    factory.realtime = True
    window = make_window(qtbot, factory, tmp_path)
    qtbot.waitUntil(lambda: window.history.blocks_seen > 3, timeout=5000)
    window.close()
    assert not window.refresh_timer.isActive()
    assert factory.engines[-1].finished.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("streamser-")
                and t.is_alive()]


def test_kiosk_full_screen_no_controls_and_recovers(qtbot: Any, themed: Any,
                                                    factory: Factory, tmp_path: Path) -> None:
    """Kiosk: full screen, controls hidden, a vanished device is reopened when it is back."""
    factory.fail = 2
    window = make_window(qtbot, factory, tmp_path, kiosk=True, source=SourceChoice(device=0))
    assert window.isFullScreen() and not window.controls.isVisible()
    assert not window.host.running and window.status_info().state == "reopening"
    window.host.retry_s = 0.05
    window.recover_timer.setInterval(50)
    qtbot.waitUntil(lambda: window.host.running, timeout=5000)
    assert len(factory.choices) == 3
    # reopened by name: a re-plugged device may come back under another index
    assert factory.choices[-1] == SourceChoice(device="Built-in Microphone")
    # the "device" (our file) ends: kiosk mode opens it again
    qtbot.waitUntil(lambda: len(factory.engines) >= 2, timeout=10_000)
    assert window.history.frames_seen >= 0


def test_screenshot_run_saves_the_whole_window(qtbot: Any, themed: Any, factory: Factory,
                                                 tmp_path: Path) -> None:
    """run_dashboard(..., screenshot, seconds) runs, saves a 1280x720 PNG with content, exits 0."""
    from PySide6.QtGui import QImage

    from streamser.gui.app import run_dashboard

    factory.realtime = True
    out = tmp_path / "shots" / "dash.png"
    options = DashboardOptions(source=SourceChoice(path=factory.wav), screenshot=out,
                               seconds=2.0, settings_path=tmp_path / "s.ini",
                               list_devices=lambda: DEVICES)
    assert run_dashboard(factory, options) == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 720)
    colours = {image.pixel(x, y) for x in range(0, 1280, 7) for y in range(0, 720, 7)}
    assert len(colours) > 50
    assert factory.engines[-1].finished.is_set()
