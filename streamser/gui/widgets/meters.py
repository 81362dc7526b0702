"""Input meters: a level meter with peak hold, a clipping light and a voice-activity light.

Painted widgets (no pyqtgraph) that repaint only when their value changes. Main thread only.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QWidget

from streamser.gui import theme

__all__ = ["InputMeters", "Lamp", "LevelMeter"]


class LevelMeter(QWidget):
    """Horizontal dBFS meter from ``floor_db`` to 0: RMS bar, peak tick held for 1.5 s."""

    def __init__(self, floor_db: float = -60.0) -> None:
        super().__init__()
        self.floor_db = floor_db
        self.rms_db = floor_db
        self.peak_db = floor_db
        self._hold_db = floor_db
        self._hold_until = 0.0
        self.setMinimumSize(120, QFontMetrics(self.font()).height() + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("input level (RMS bar, peak tick), dBFS")

    def sizeHint(self) -> QSize:
        return QSize(260, QFontMetrics(self.font()).height() + 8)

    def set_level(self, rms_db: float, peak_db: float, now: float | None = None) -> None:
        """New RMS and peak levels in dBFS."""
        now = time.monotonic() if now is None else now
        if peak_db >= self._hold_db or now > self._hold_until:
            self._hold_db, self._hold_until = peak_db, now + 1.5
        values = (round(rms_db, 1), round(peak_db, 1))
        if values != (round(self.rms_db, 1), round(self.peak_db, 1)):
            self.rms_db, self.peak_db = rms_db, peak_db
            self.update()

    def _x(self, db: float, width: float) -> float:
        frac = (max(self.floor_db, min(0.0, db)) - self.floor_db) / -self.floor_db
        return frac * width

    def paintEvent(self, event: QPaintEvent) -> None:
        """Bar in green / yellow (above -12 dBFS) / red (above -3 dBFS)."""
        painter = QPainter(self)
        w, h = float(self.width()), float(self.height())
        painter.fillRect(self.rect(), QColor(theme.BACKGROUND))
        zones = ((self.floor_db, -12.0, theme.GOOD), (-12.0, -3.0, theme.WARN),
                 (-3.0, 0.0, theme.CLIP))
        level = self._x(self.rms_db, w)
        for lo, hi, color in zones:
            x0, x1 = self._x(lo, w), self._x(hi, w)
            painter.fillRect(QRectF(x0, 3, x1 - x0, h - 6), theme.qcolor(color, 45))
            if level > x0:
                painter.fillRect(QRectF(x0, 3, min(level, x1) - x0, h - 6), QColor(color))
        hold = self._x(self._hold_db, w)
        painter.fillRect(QRectF(max(0.0, hold - 2), 0, 3, h), QColor(theme.FOREGROUND))
        painter.end()


class Lamp(QWidget):
    """A round light with a caption; ``set_on`` switches it."""

    def __init__(self, caption: str, on_color: str, tooltip: str) -> None:
        super().__init__()
        self.caption = caption
        self.on_color = on_color
        self.on = False
        self.setToolTip(tooltip)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        font = QFont(self.font())
        font.setBold(True)
        h = QFontMetrics(font).height() + 8
        return QSize(h + 12 + QFontMetrics(font).horizontalAdvance(self.caption), h)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def set_on(self, on: bool) -> None:
        """Switch the light."""
        if on != self.on:
            self.on = on
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        h = float(self.height())
        d = h * 0.62
        painter.setPen(QColor(theme.GRID))
        painter.setBrush(QColor(self.on_color) if self.on else QColor(theme.UNVOICED))
        painter.drawEllipse(QRectF(2, (h - d) / 2, d, d))
        font = QFont(self.font())
        font.setBold(self.on)
        painter.setFont(font)
        painter.setPen(QColor(theme.FOREGROUND if self.on else theme.MUTED))
        painter.drawText(QRectF(d + 8, 0, self.width() - d - 8, h),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         self.caption)
        painter.end()


class InputMeters(QWidget):
    """Level meter, clipping light and voice-activity light in one row."""

    def __init__(self) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        row.setSpacing(10)
        self.level = LevelMeter()
        self.clip = Lamp("CLIP", theme.CLIP, "a sample reached full scale in the last 2 s")
        self.voice = Lamp("VOICE", theme.GOOD, "voice activity in the current window")
        row.addWidget(self.level, 1)
        row.addWidget(self.clip)
        row.addWidget(self.voice)
