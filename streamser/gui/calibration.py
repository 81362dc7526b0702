"""Calibrate to a voice from the dashboard: profile picker, Calibrate button, enrolment card,
and the kiosk's one-button flow.

- Desktop: a bar with the voice-profile picker ("no profile" + the saved ones) and a
  "Calibrate…" button opening the :class:`EnrolmentCard`: the passage to read, a progress bar
  with the seconds left and the input level, the prompted sentence for each emotion when
  asked, then the result (saved and applied, or why it was refused).
- Kiosk (booth): the card is always there with one large button, "Calibrate to my voice". A
  visitor presses it and reads for about 15 s; the plot then follows their voice. After
  ``reset_s`` of silence (no voiced frame) the visitor's profile is cleared and deleted, and the
  button is back for the next person.

:class:`CalibrationController` glues the widgets to the engine: it sends the engine's
calibration controls (:mod:`streamser.core.config`), reads the enrolment events the
:class:`~streamser.gui.session.EngineHost` drained, and re-applies the chosen profile after
every restart. Everything here runs on the Qt main thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from streamser.calibration.profiles import ProfileStore
from streamser.core.adapt import ActiveProfile
from streamser.core.config import CancelEnrolment, StartEnrolment, UseProfile
from streamser.core.enrolment import EnrolmentEvent, EnrolmentProgress
from streamser.core.frames import Frame
from streamser.core.passages import Passage, passage
from streamser.errors import StreamserError
from streamser.gui import theme

__all__ = ["KIOSK_PROFILE", "CalibrationBar", "CalibrationController", "EnrolmentCard"]

KIOSK_PROFILE = "kiosk-visitor"
NO_PROFILE = "no profile"


class CalibrationBar(QWidget):
    """Voice-profile picker and the Calibrate button (desktop only)."""

    profileChosen = Signal(object)
    """A profile name (str) or None for "no profile"."""
    calibrateClicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        row.addWidget(QLabel("Voice"))
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(14)
        self.combo.setToolTip("voice profile applied to the analysis")
        self.combo.activated.connect(self._on_pick)
        row.addWidget(self.combo)
        self.button = QPushButton("Calibrate\u2026")
        self.button.setToolTip("read a short passage so streamser adapts to your voice")
        self.button.clicked.connect(self.calibrateClicked)
        row.addWidget(self.button)
        row.addStretch(1)
        self.set_profiles([], None)

    def set_profiles(self, names: Sequence[str], active: str | None) -> None:
        """List ``names`` (usable profiles) and select ``active``."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(NO_PROFILE)
        for name in names:
            self.combo.addItem(name)
        self.combo.setCurrentIndex(max(0, self.combo.findText(active or NO_PROFILE)))
        self.combo.blockSignals(False)

    def _on_pick(self, index: int) -> None:
        text = self.combo.itemText(index)
        self.profileChosen.emit(None if text == NO_PROFILE else text)


class EnrolmentCard(QFrame):
    """The enrolment: passage, progress, result. Large type and one button in kiosk mode."""

    startClicked = Signal(str)
    """Start with this profile name."""
    cancelClicked = Signal()
    closeClicked = Signal()

    def __init__(self, text: Passage, kiosk: bool) -> None:
        super().__init__()
        self.kiosk = kiosk
        self.passage = text
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(f"EnrolmentCard {{ background: {theme.BACKGROUND}; }}")
        px = 24 if kiosk else 14
        col = QVBoxLayout(self)
        self.title = QLabel("Calibrate to your voice")
        self.title.setStyleSheet(f"font-size: {px + 6}px; font-weight: bold;")
        col.addWidget(self.title)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet(f"font-size: {px}px;")
        col.addWidget(self.text, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        col.addWidget(self.progress)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet(f"font-size: {max(12, px - 4)}px;")
        col.addWidget(self.detail)
        row = QHBoxLayout()
        self.name = QLineEdit("me")
        self.name.setToolTip("profile name (use it later with --profile)")
        self.name.setMaximumWidth(160)
        self.start_button = QPushButton("Calibrate to my voice" if kiosk else "Start")
        if kiosk:
            self.start_button.setMinimumHeight(70)
            self.start_button.setStyleSheet(f"font-size: {px + 4}px; font-weight: bold;")
        self.start_button.clicked.connect(
            lambda: self.startClicked.emit(self.name.text().strip()))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelClicked)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.closeClicked)
        if not kiosk:
            row.addWidget(QLabel("Profile"))
            row.addWidget(self.name)
        row.addWidget(self.start_button, 1 if kiosk else 0)
        row.addWidget(self.cancel_button)
        if not kiosk:
            row.addWidget(self.close_button)
        row.addStretch(0 if kiosk else 1)
        col.addLayout(row)
        self.state = "idle"
        self.show_idle()

    def show_idle(self, note: str = "") -> None:
        """Ready to start: explain, show the button."""
        self.state = "idle"
        self.text.setText(
            "Press the button and read aloud for 15 seconds: the plot then follows your voice."
            if self.kiosk else
            "Read the passage below aloud, calmly, in your normal voice, after pressing Start:"
            f"\n\n{self.passage.text}")
        self.detail.setText(note)
        self.detail.setVisible(bool(note) or not self.kiosk)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress.setVisible(not self.kiosk)
        self.start_button.setVisible(True)
        self.cancel_button.setVisible(False)
        self.name.setEnabled(True)

    def show_progress(self, progress: EnrolmentProgress) -> None:
        """Reading: the passage (or the prompted sentence), the bar, seconds left, level."""
        self.state = "enrolling"
        phase = progress.phase or "neutral"
        if phase == "neutral":
            self.text.setText(self.passage.text)
        else:
            self.text.setText(f"Now say this sounding {phase.upper()}:\n\n"
                              f"{self.passage.prompts.get(phase, '')}")
        self.progress.setVisible(True)
        self.detail.setVisible(True)
        self.progress.setValue(round(1000 * progress.fraction))
        left = max(0.0, progress.target_s - progress.speech_s)
        self.progress.setFormat(f"{left:.0f} s left")
        self.detail.setText(f"input level {progress.level_dbfs:.0f} dBFS")
        self.start_button.setVisible(False)
        self.cancel_button.setVisible(True)
        self.name.setEnabled(False)

    def show_result(self, ok: bool, message: str) -> None:
        """Done (saved and applied) or refused (with the reasons)."""
        self.state = "done" if ok else "failed"
        self.text.setText("Calibrated: the plot now follows your voice." if ok
                          else "That did not work:")
        self.detail.setText(message)
        self.detail.setVisible(bool(message))
        self.progress.setValue(1000 if ok else 0)
        self.progress.setFormat("done" if ok else "")
        self.start_button.setVisible(not ok or self.kiosk)
        self.start_button.setText("Calibrate to my voice" if self.kiosk else "Try again")
        self.cancel_button.setVisible(False)
        self.name.setEnabled(True)


class CalibrationController:
    """Calibration for one dashboard window; see the module docstring."""

    def __init__(self, window: Any, kiosk: bool, reset_s: float, seconds: float = 20.0,
                 language: str = "en") -> None:
        self.window = window
        self.kiosk = kiosk
        self.reset_s = reset_s
        self.seconds = seconds
        self.store = ProfileStore()
        self.chosen: str | None = None  # re-applied after every restart
        self.bar = CalibrationBar()
        self.card = EnrolmentCard(passage(language), kiosk)
        self.card.setVisible(kiosk)
        self.bar.calibrateClicked.connect(self.open_card)
        self.bar.profileChosen.connect(self.choose)
        self.card.startClicked.connect(self.start)
        self.card.cancelClicked.connect(self.cancel)
        self.card.closeClicked.connect(lambda: self.card.setVisible(False))
        self._last_voiced_s: float | None = None
        self._newest_s = 0.0
        self.refresh_profiles()

    # -- actions (main thread) ------------------------------------------------------------
    def _engine(self) -> Any:
        return self.window.host.engine

    def refresh_profiles(self) -> None:
        """Re-read the saved profiles into the picker."""
        names = [e.name for e in self.store.entries() if e.problem is None
                 and e.name != KIOSK_PROFILE]
        self.bar.set_profiles(names, self.chosen)

    def open_card(self) -> None:
        """Show the enrolment card (desktop)."""
        self.card.show_idle()
        self.card.setVisible(True)

    def start(self, name: str) -> None:
        """Begin an enrolment as ``name`` (kiosk: the visitor profile)."""
        engine = self._engine()
        if engine is None:
            self.window.message = "start the input before calibrating"
            return
        name = KIOSK_PROFILE if self.kiosk else name
        seconds = self.seconds
        try:
            engine.control(StartEnrolment(name, seconds, passage=self.card.passage.key))
        except StreamserError as exc:
            self.card.show_result(False, str(exc))
            return
        self.card.show_progress(EnrolmentProgress(0.0, seconds, -120.0, 0))

    def cancel(self) -> None:
        """Stop the enrolment in progress."""
        engine = self._engine()
        if engine is not None:
            engine.control(CancelEnrolment())

    def choose(self, name: str | None) -> None:
        """Apply saved profile ``name`` (None: none) now and after restarts."""
        self.chosen = name
        self.apply()

    def apply(self) -> None:
        """Send the chosen profile to the engine (after a pick or a restart)."""
        engine = self._engine()
        if engine is None:
            return
        try:
            active = None
            if self.chosen is not None:
                profile = self.store.load_for(self.chosen, engine.spec)
                active = ActiveProfile(profile.name, profile.adaptation)
            engine.control(UseProfile(active))
        except StreamserError as exc:  # missing, damaged or another model's: none applied
            self.window.message = str(exc)
            self.chosen = None
            engine.control(UseProfile(None))
            self.refresh_profiles()

    # -- per tick (main thread) -------------------------------------------------------------
    def on_events(self, events: Sequence[EnrolmentEvent]) -> None:
        """Show what the engine reported about the enrolment."""
        for event in events:
            if event.kind in ("started", "progress") and event.progress is not None:
                self.card.show_progress(event.progress)
            elif event.kind == "done":
                self.chosen = event.profile
                self.refresh_profiles()
                self.card.show_result(True, "" if self.kiosk else event.message)
            elif event.kind == "failed":
                self.card.show_result(False, event.message)
            elif event.kind == "cancelled":
                self.card.show_idle("cancelled")

    def on_frames(self, frames: Sequence[Frame]) -> None:
        """Kiosk: clear the visitor's profile after ``reset_s`` without speech (audio clock)."""
        for frame in frames:
            self._newest_s = frame.end_s
            if frame.voiced:
                self._last_voiced_s = frame.end_s
        if not self.kiosk or self.chosen != KIOSK_PROFILE or self.card.state == "enrolling":
            return
        quiet_since = self._last_voiced_s if self._last_voiced_s is not None else 0.0
        if self._newest_s - quiet_since >= self.reset_s:
            self.chosen = None
            self.apply()
            self.store.delete(KIOSK_PROFILE)  # a booth keeps no visitor's voice data
            self.card.show_idle("Ready for the next visitor.")

    def after_open(self) -> None:
        """A new engine (restart, device change): re-apply the chosen profile."""
        self._last_voiced_s = None
        self._newest_s = 0.0
        if self.chosen is not None:
            self.apply()
