"""The big "now" readout: the current emotion and its confidence, readable from three metres.

The type size follows the widget's height (about 40 % of it for the label, less when the word
would not fit the width), so the readout grows with the window, in kiosk mode and on a 4K
screen. When the current window holds no speech
it says so in grey instead of naming an emotion; once the session prior corrects the frames
(``--session-prior``) the detail line says the reading is adapted to this voice. Main thread
only.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from streamser.core.frames import Frame
from streamser.gui import theme

__all__ = ["NowPanel"]


class NowPanel(QWidget):
    """Current label (large, in its colour), confidence as a number and a bar."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.text = "waiting"
        self.detail = "no frames yet"
        self.confidence = 0.0
        self.color = theme.MUTED

    def show_frame(self, frame: Frame | None) -> None:
        """Show ``frame`` (None: nothing yet)."""
        if frame is None:
            text, detail, conf, color = "waiting", "no frames yet", 0.0, theme.MUTED
        elif frame.voiced and frame.uncertain:
            detail = f"top {frame.confidence * 100:.0f} %: too low to name"
            text, conf, color = "uncertain", 0.0, theme.MUTED
        elif not frame.voiced or frame.top_label is None:
            text, detail, conf, color = "no speech", "listening", 0.0, theme.MUTED
        else:
            text = frame.top_label
            conf = frame.confidence
            detail = f"{conf * 100:.0f} % confident"
            color = theme.label_color(frame.top_label)
        if frame is not None and frame.voiced and frame.session_prior:
            detail += " \u00b7 adapted to this voice"
        if (text, detail, conf, color) != (self.text, self.detail, self.confidence, self.color):
            self.text, self.detail, self.confidence, self.color = text, detail, conf, color
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the label, the confidence line and its bar, scaled to the widget height."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        painter.fillRect(self.rect(), QColor(theme.BACKGROUND))
        big = QFont(self.font())
        big.setBold(True)
        big.setCapitalization(QFont.Capitalization.AllUppercase)
        big.setPixelSize(100)
        text_w = max(1, QFontMetrics(big).horizontalAdvance(self.text))
        # as tall as the panel allows, but never wider than it
        big.setPixelSize(max(12, int(min(h * 0.42, 100 * w * 0.92 / text_w))))
        painter.setFont(big)
        painter.setPen(QColor(self.color))
        label_rect = QRectF(0, h * 0.02, w, h * 0.58)
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, self.text)
        small = QFont(self.font())
        small.setPixelSize(100)
        detail_w = max(1, QFontMetrics(small).horizontalAdvance(self.detail))
        # the detail line too: never wider than the panel (a long "uncertain ... adapted" line)
        small.setPixelSize(max(9, int(min(h * 0.15, 100 * w * 0.95 / detail_w))))
        painter.setFont(small)
        painter.setPen(QColor(theme.FOREGROUND))
        painter.drawText(QRectF(0, h * 0.60, w, h * 0.2), Qt.AlignmentFlag.AlignCenter,
                         self.detail)
        bar_w, bar_h = w * 0.7, max(4.0, h * 0.06)
        x0, y0 = (w - bar_w) / 2, h * 0.86
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(theme.GRID))
        painter.drawRoundedRect(QRectF(x0, y0, bar_w, bar_h), bar_h / 2, bar_h / 2)
        if self.confidence > 0:
            painter.setBrush(QColor(self.color))
            painter.drawRoundedRect(QRectF(x0, y0, bar_w * min(1.0, self.confidence), bar_h),
                                    bar_h / 2, bar_h / 2)
        painter.end()
