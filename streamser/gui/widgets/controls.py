"""The controls bar: input device, start/stop, open file, hop, smoothing, record.

The bar only emits signals; the window acts on them. Device entries come from a
``list_devices`` callable (``streamser.devices.list_input_devices`` in the app, a fake in tests):
each device appears once, the system default is marked with a star. Hidden in kiosk mode.
Main thread only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from streamser.gui import theme

__all__ = ["AUDIO_FILTER", "ControlsBar"]

AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.mp3);;All files (*)"


class ControlsBar(QWidget):
    """One row of controls. Signals carry plain values."""

    deviceChosen = Signal(object)
    """A device index (int) was picked."""
    fileChosen = Signal(object)
    """An audio file (Path) was picked."""
    startStopClicked = Signal()
    hopChanged = Signal(float)
    smoothingChanged = Signal(float)
    recordToggled = Signal(bool)
    folderChosen = Signal(object)
    """A recording folder (Path) was picked."""

    def __init__(self, list_devices: Callable[[], Sequence[Any]]) -> None:
        super().__init__()
        self._list_devices = list_devices
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        row.setSpacing(8)

        row.addWidget(QLabel("Input"))
        self.device_combo = QComboBox()
        self.device_combo.setMinimumContentsLength(22)
        self.device_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setToolTip("input device (\u2605 = system default)")
        self.device_combo.setPlaceholderText("no input device")
        self.device_combo.activated.connect(self._on_device)
        row.addWidget(self.device_combo)
        self.refresh_button = QPushButton("\u27f3")
        self.refresh_button.setToolTip("list input devices again")
        self.refresh_button.setFixedWidth(34)
        self.refresh_button.clicked.connect(self.refresh_devices)
        row.addWidget(self.refresh_button)
        self.file_button = QPushButton("Open file\u2026")
        self.file_button.setToolTip("play an audio file through the pipeline in real time")
        self.file_button.clicked.connect(self._on_open_file)
        row.addWidget(self.file_button)
        self.start_button = QPushButton("Stop")
        self.start_button.setMinimumWidth(70)
        self.start_button.clicked.connect(self.startStopClicked)
        row.addWidget(self.start_button)

        row.addSpacing(12)
        row.addWidget(QLabel("Hop"))
        self.hop_spin = self._spin(0.05, 2.0, 0.05, 0.5, "seconds between emotion frames")
        self.hop_spin.valueChanged.connect(self.hopChanged)
        row.addWidget(self.hop_spin)
        row.addWidget(QLabel("Smoothing"))
        self.smoothing_spin = self._spin(0.0, 10.0, 0.1, 1.0,
                                         "time constant of the causal smoothing, seconds")
        self.smoothing_spin.valueChanged.connect(self.smoothingChanged)
        row.addWidget(self.smoothing_spin)

        row.addStretch(1)
        self.record_button = QPushButton("\u25cf Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("record frames (JSONL) and audio (FLAC) to the folder")
        self.record_button.toggled.connect(self.recordToggled)
        row.addWidget(self.record_button)
        self.record_time = QLabel("00:00")
        self.record_time.setMinimumWidth(48)
        row.addWidget(self.record_time)
        self.folder_button = QPushButton("Folder\u2026")
        self.folder_button.clicked.connect(self._on_folder)
        row.addWidget(self.folder_button)
        self.record_folder: Path = Path.cwd()
        self._devices: list[Any] = []

    @staticmethod
    def _spin(lo: float, hi: float, step: float, value: float, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setSuffix(" s")
        spin.setValue(value)
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        return spin

    # -- devices --------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        """Ask for the device list again and fill the combo (keeps the current selection)."""
        current = self.current_device()
        try:
            devices = list(self._list_devices())
        except Exception as exc:  # PortAudio missing or failing: say so, keep going
            devices = []
            self.device_combo.setToolTip(f"cannot list input devices: {exc}")
        self._devices = devices
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for dev in devices:
            star = "\u2605 " if getattr(dev, "is_default", False) else ""
            api = getattr(dev, "hostapi", "")
            self.device_combo.addItem(f"{star}{dev.name}" + (f"  ({api})" if api else ""),
                                      dev.index)
        if current is not None:
            self.select_device(current)
        self.device_combo.blockSignals(False)

    def devices(self) -> list[Any]:
        """The devices last listed."""
        return list(self._devices)

    def current_device(self) -> int | None:
        """Index of the device selected in the combo (None when empty)."""
        data = self.device_combo.currentData()
        return int(data) if data is not None else None

    def select_device(self, index: int | None) -> bool:
        """Select the device with PortAudio ``index`` without emitting; False if not listed.

        None selects the default device (starred) when there is one.
        """
        if index is None:
            index = next((d.index for d in self._devices if getattr(d, "is_default", False)),
                         None)
        pos = self.device_combo.findData(index) if index is not None else -1
        if pos >= 0:
            self.device_combo.blockSignals(True)
            self.device_combo.setCurrentIndex(pos)
            self.device_combo.blockSignals(False)
        return pos >= 0

    def show_file(self, name: str) -> None:
        """A file is playing: no device is selected; the combo says which file."""
        self.device_combo.blockSignals(True)
        self.device_combo.setPlaceholderText(f"file: {name}")
        self.device_combo.setCurrentIndex(-1)
        self.device_combo.blockSignals(False)

    def _on_device(self, pos: int) -> None:
        data = self.device_combo.itemData(pos)
        if data is not None:
            self.deviceChosen.emit(int(data))

    # -- files ----------------------------------------------------------------------------
    def _on_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio file", "", AUDIO_FILTER)
        if path:
            self.fileChosen.emit(Path(path))

    def _on_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recording folder",
                                                  str(self.record_folder))
        if folder:
            self.set_record_folder(Path(folder))
            self.folderChosen.emit(Path(folder))

    def set_record_folder(self, folder: Path) -> None:
        """Where recordings go (shown as the folder button's tooltip)."""
        self.record_folder = folder
        self.folder_button.setToolTip(f"recordings go to {folder}")

    # -- state shown ----------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        """Label the start/stop button for the engine's state."""
        self.start_button.setText("Stop" if running else "Start")

    def set_engine_values(self, hop_s: float, smoothing_s: float) -> None:
        """Show the engine's hop and smoothing without emitting change signals."""
        for spin, value in ((self.hop_spin, hop_s), (self.smoothing_spin, smoothing_s)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def set_record_time(self, seconds: float, active: bool) -> None:
        """Update the recording timer (mm:ss); red while recording."""
        minutes, secs = divmod(int(seconds), 60)
        text = f"{minutes:02d}:{secs:02d}"
        if self.record_time.text() != text:
            self.record_time.setText(text)
        style = f"color: {theme.CLIP}; font-weight: bold" if active else ""
        if self.record_time.styleSheet() != style:
            self.record_time.setStyleSheet(style)
