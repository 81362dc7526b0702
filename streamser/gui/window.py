"""The dashboard's main window: layout, the 30 Hz refresh, controls, shutdown in order.

Everything here runs on the Qt main thread. The refresh timer drains the dashboard's bounded
subscriptions (:class:`streamser.gui.session.EngineHost`), folds what it got into preallocated
arrays (:class:`streamser.gui.history.History`) and redraws only what changed. A 4 Hz timer
updates the status bar and the recording timer; in kiosk mode a 1 Hz timer reopens a source
that ended or vanished. Closing the window stops the timers, then the recording, then the engine.
Calibration (profile picker, Calibrate button, the kiosk's one-button flow) lives in
:mod:`streamser.gui.calibration`; the refresh hands it the enrolment events and frames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QVBoxLayout, QWidget

from streamser.core.labels import CANONICAL_LABELS
from streamser.errors import StreamserError
from streamser.gui.calibration import CalibrationController
from streamser.gui.history import History, HistoryConfig
from streamser.gui.options import DashboardOptions
from streamser.gui.recording import Recording, recording_paths
from streamser.gui.session import EngineHost, SourceChoice
from streamser.gui.widgets.avplane import AVPlane
from streamser.gui.widgets.controls import ControlsBar
from streamser.gui.widgets.meters import InputMeters
from streamser.gui.widgets.now import NowPanel
from streamser.gui.widgets.status import StatusInfo, StatusPanel
from streamser.gui.widgets.strips import ProsodyStrip, WaveformStrip
from streamser.gui.widgets.trajectories import LegendRow, TrajectoryPlot

__all__ = ["DashboardWindow"]

log = logging.getLogger(__name__)

SETTINGS_DEVICE_NAME = "input/device_name"
SETTINGS_RECORD_DIR = "record/folder"

DEMO_BANNER = "Demo audio \u2014 no microphone. Plug one in and pick it (or press Start)."


class DashboardWindow(QMainWindow):
    """The whole dashboard. Construct, ``show()``, then :meth:`open_source`."""

    def __init__(
        self,
        host: EngineHost,
        options: DashboardOptions,
        settings: QSettings,
        list_devices: Callable[[], Sequence[Any]],
    ) -> None:
        super().__init__()
        self.host = host
        self.options = options
        self.settings = settings
        self.recording: Recording | None = None
        self.message = ""
        self.exit_code = 0
        self.ticks = 0
        self._generation = -1
        self._hop_override: float | None = None
        self._smoothing_override: float | None = None
        self._closed = False
        self.setWindowTitle(options.title)
        self.hist_config = HistoryConfig(trajectory_s=options.history_s)
        self.history = History(CANONICAL_LABELS, self.hist_config)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 4, 6, 2)
        outer.setSpacing(4)
        self.controls = ControlsBar(list_devices)
        outer.addWidget(self.controls)
        self.demo_banner = QLabel(DEMO_BANNER)
        self.demo_banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.demo_banner.setStyleSheet("background: #6b4e00; color: white; padding: 4px; "
                                       "font-weight: bold;")
        self.demo_banner.hide()
        outer.addWidget(self.demo_banner)
        self.calibration = CalibrationController(
            self, options.kiosk, options.kiosk_reset_s,
            min(options.calibrate_s, 12.0) if options.kiosk else options.calibrate_s)
        outer.addWidget(self.calibration.bar)
        body = QHBoxLayout()
        body.setSpacing(6)
        outer.addLayout(body, 1)
        self.left = QVBoxLayout()
        self.left.setSpacing(2)
        body.addLayout(self.left, 3)
        self.right = right = QVBoxLayout()
        right.setSpacing(4)
        body.addLayout(right, 2)
        right.addWidget(self.calibration.card)
        self.now = NowPanel()
        right.addWidget(self.now, 3 if options.kiosk else 2)
        self.meters = InputMeters()
        right.addWidget(self.meters)
        self._build_label_widgets(CANONICAL_LABELS)
        right.addWidget(self.av, 5)
        strip_s = self.hist_config.strip_s
        self.wave = WaveformStrip(strip_s, self.history.env.capacity)
        self.prosody = ProsodyStrip(strip_s, self.history.pitch_times.capacity)
        self.left.addWidget(self.legend)
        self.left.addWidget(self.traj, 5)
        self.left.addWidget(self.wave, 1)
        self.left.addWidget(self.prosody, 2)
        self.setCentralWidget(central)
        self.status = StatusPanel()
        self.setStatusBar(self.status)

        self._wire_controls()
        folder = options.record_dir or Path(str(settings.value(SETTINGS_RECORD_DIR, Path.cwd())))
        self.controls.set_record_folder(folder)
        self.controls.refresh_devices()
        if options.kiosk:
            self.controls.hide()
            self.calibration.bar.hide()
            self.setCursor(Qt.CursorShape.BlankCursor)
            QShortcut(QKeySequence("Ctrl+Q"), self, self.close)
        else:
            self.resize(*options.size)

        self.refresh_timer = QTimer(self)
        self.refresh_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.refresh_timer.setInterval(max(1, round(1000 / options.refresh_hz)))
        self.refresh_timer.timeout.connect(self.tick)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(250)
        self.status_timer.timeout.connect(self.update_status)
        self.recover_timer = QTimer(self)
        self.recover_timer.setInterval(1000)
        self.recover_timer.timeout.connect(self._recover)
        self.refresh_timer.start()
        self.status_timer.start()
        if host.auto_recover:
            self.recover_timer.start()

    # -- construction helpers -------------------------------------------------------------
    def _build_label_widgets(self, labels: Sequence[str]) -> None:
        big = self.options.kiosk
        self.legend = LegendRow(labels)
        self.traj = TrajectoryPlot(labels, self.options.history_s,
                                   self.history.times.capacity, line_width=4 if big else 2.5)
        self.av = AVPlane(labels, self.hist_config.trail_s, font_px=20 if big else 13)

    def _relabel(self, labels: Sequence[str]) -> None:
        """A model with other labels: new history and new label widgets in the same places."""
        self.history = History(labels, self.hist_config)
        old: list[tuple[QVBoxLayout, QWidget]] = [
            (self.left, self.legend), (self.left, self.traj), (self.right, self.av)]
        self._build_label_widgets(labels)
        new: list[QWidget] = [self.legend, self.traj, self.av]
        for (layout, before), after in zip(old, new, strict=True):
            layout.replaceWidget(before, after)
            before.deleteLater()

    def _wire_controls(self) -> None:
        c = self.controls
        c.deviceChosen.connect(self._on_device)
        c.fileChosen.connect(lambda path: self.open_source(SourceChoice(path=path)))
        c.startStopClicked.connect(self.toggle_running)
        c.hopChanged.connect(self.set_hop)
        c.smoothingChanged.connect(self.set_smoothing)
        c.recordToggled.connect(self.set_recording)
        c.folderChosen.connect(
            lambda folder: self.settings.setValue(SETTINGS_RECORD_DIR, str(folder)))

    # -- sources --------------------------------------------------------------------------
    def initial_choice(self) -> SourceChoice:
        """The CLI's choice; for an unspecified device, the remembered one if still present."""
        choice = self.options.source
        if choice.is_file or choice.device is not None:
            return choice
        remembered = self.settings.value(SETTINGS_DEVICE_NAME, "")
        for dev in self.controls.devices():
            if remembered and dev.name == remembered:
                return SourceChoice(device=dev.index)
        return choice

    def open_source(self, choice: SourceChoice) -> bool:
        """(Re)start the pipeline on ``choice``; False (with a message) when it cannot open."""
        self.set_recording(False)
        self.tick()  # take what the old engine still had queued
        if self.options.kiosk and isinstance(choice.device, int):
            # booth: reopen by name, the index may change when the device is plugged back
            name = next((d.name for d in self.controls.devices() if d.index == choice.device),
                        None)
            choice = SourceChoice(device=name) if name else choice
        try:
            self.host.open(choice)
        except StreamserError as exc:
            self.message = str(exc)
            self.update_status()
            return False
        self._after_open()
        return True

    def _after_open(self) -> None:
        engine = self.host.engine
        assert engine is not None
        self._generation = self.host.generation
        labels = tuple(engine.spec.labels)
        if labels != self.history.labels:
            self._relabel(labels)
        self.history.reset()
        self.message = ""
        self.calibration.after_open()
        for override, setter in ((self._hop_override, engine.set_hop),
                                 (self._smoothing_override, engine.set_smoothing)):
            if override is not None:
                try:
                    setter(override)
                except StreamserError as exc:
                    self.message = str(exc)
        stats = engine.stats()
        self.controls.set_engine_values(float(stats.hop_s), float(stats.smoothing_s))
        choice = self.host.choice
        if choice is not None and choice.path is not None:
            self.controls.show_file(choice.path.name)
        elif choice is not None:
            device = choice.device
            if isinstance(device, str):  # a name (part) from --device
                device = next((d.index for d in self.controls.devices()
                               if device.lower() in d.name.lower()), None)
            self.controls.select_device(device)
        self.update_status()

    def _on_device(self, index: int) -> None:
        for dev in self.controls.devices():
            if dev.index == index:
                self.settings.setValue(SETTINGS_DEVICE_NAME, dev.name)
        self.open_source(SourceChoice(device=index))

    def toggle_running(self) -> None:
        """Start/Stop button: stop a running engine, or reopen the last source."""
        if self.host.running:
            self.set_recording(False)
            self.tick()
            self.host.close()
        else:
            self.open_source(self.host.choice or self.initial_choice())
        self.update_status()

    def set_hop(self, hop_s: float) -> None:
        """Live hop change (seconds); kept for later restarts."""
        self._hop_override = hop_s
        self._apply(lambda engine: engine.set_hop(hop_s))

    def set_smoothing(self, tau_s: float) -> None:
        """Live smoothing change (seconds); kept for later restarts."""
        self._smoothing_override = tau_s
        self._apply(lambda engine: engine.set_smoothing(tau_s))

    def _apply(self, action: Callable[[Any], None]) -> None:
        if self.host.engine is None:
            return
        try:
            action(self.host.engine)
        except StreamserError as exc:
            self.message = str(exc)

    def _recover(self) -> None:
        """Kiosk: reopen a source that ended or vanished (recover timer, 1 Hz)."""
        if self.host.poll():
            self.controls.refresh_devices()
            self._after_open()

    # -- recording ------------------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        """Start or stop recording frames and audio to the chosen folder."""
        if not on:
            if self.recording is not None:
                self.recording.stop()
                if self.recording.error:
                    self.message = self.recording.error
            if self.controls.record_button.isChecked():
                self.controls.record_button.blockSignals(True)
                self.controls.record_button.setChecked(False)
                self.controls.record_button.blockSignals(False)
            return
        if self.recording is not None and self.recording.active:
            return
        if self.host.engine is None or not self.host.running:
            self.message = "start the input before recording"
            self.set_recording(False)
            return
        paths = recording_paths(self.controls.record_folder)
        recording = Recording(self.host.engine, paths)
        try:
            recording.start()
        except StreamserError as exc:
            self.message = str(exc)
            self.set_recording(False)
            return
        self.recording = recording
        self.message = f"recording to {paths.frames.parent}"

    # -- the refresh ----------------------------------------------------------------------
    def tick(self) -> None:
        """Drain the queues and redraw what changed (refresh timer, ~30 Hz)."""
        if self.host.generation != self._generation and self.host.engine is not None:
            self._after_open()
        frames, blocks = self.host.drain()
        self.calibration.on_events(self.host.drain_enrolment())
        self.calibration.on_frames(frames)
        self.ticks += 1
        hist = self.history
        hist.add_frames(frames)
        hist.add_blocks(blocks)
        now_s = hist.newest_time_s()
        if blocks:
            self.wave.refresh(hist, now_s)
            self.prosody.refresh(hist, now_s)
        if frames:
            # the slow plots move once per frame (every hop), the strips with every block
            self.traj.refresh(hist, now_s)
            self.av.refresh(hist, now_s)
            self.now.show_frame(hist.last_frame)
            last = hist.last_frame
            self.meters.voice.set_on(bool(last is not None and last.voiced))
        if blocks:
            self.meters.level.set_level(hist.rms_dbfs, hist.peak_dbfs)
        self.meters.clip.set_on(hist.clipping())

    def status_info(self) -> StatusInfo:
        """What the status bar should show now."""
        host, engine = self.host, self.host.engine
        stats = host.engine_stats()
        if stats is None:
            state = "error" if host.error else "stopped"
            source = host.choice.describe() if host.choice else "no source"
            model, dropped = "\u2013", 0
        else:
            state, source = str(stats.state.value), str(stats.source)
            model, dropped = str(stats.model_version), int(stats.dropped_blocks)
            if state == "failed":
                state = "error"
        message = self.message
        if self.recording is not None and self.recording.error:
            message = self.recording.error
        if host.error and not message:
            message = host.error
        if stats is not None and (stats.error or stats.warning) and not message:
            message = str(stats.error or stats.warning)
        if host.auto_recover and not host.running and host.choice is not None:
            state = "reopening"
        if engine is not None and state == "finished" and not message:
            message = "source ended; press Start to play it again"
        ws = self.options.ws_info() if self.options.ws_info is not None else None
        return StatusInfo(
            state=state, source=source, model=model,
            latency_ms=self.history.median_latency_ms(), dropped_blocks=dropped,
            gui_dropped=host.gui_dropped_frames(), ws_port=ws[0] if ws else None,
            ws_subscribers=ws[1] if ws else None, message=message,
        )

    def playing_demo(self) -> bool:
        """True when a microphone was asked for but the bundled demo audio is playing."""
        from streamser.resources import demo_audio_path

        engine, choice = self.host.engine, self.host.choice
        path = getattr(getattr(engine, "source", None), "path", None)
        demo = demo_audio_path()
        return (choice is not None and not choice.is_file and path is not None
                and demo is not None and Path(path).resolve() == demo.resolve())

    def update_status(self) -> None:
        """Status bar, start/stop label, recording timer, demo banner (status timer, 4 Hz)."""
        self.demo_banner.setVisible(self.playing_demo())
        self.status.show_status(self.status_info())
        self.controls.set_running(self.host.running)
        rec = self.recording
        self.controls.set_record_time(rec.elapsed_s if rec else 0.0, bool(rec and rec.active))

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> None:
        """``--seconds`` elapsed: save the screenshot if asked, then close."""
        path = self.options.screenshot
        if path is not None:
            self.tick()
            self.update_status()
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.grab().save(str(path)):
                log.error("could not save the screenshot to %s", path)
                self.exit_code = 1
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop in order: timers, recording, engine (joins its threads)."""
        if not self._closed:
            self._closed = True
            for timer in (self.refresh_timer, self.status_timer, self.recover_timer):
                timer.stop()
            self.set_recording(False)
            self.host.auto_recover = False
            self.host.close()
            self.settings.sync()
        event.accept()
