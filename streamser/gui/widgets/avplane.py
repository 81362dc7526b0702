"""The arousal-valence plane: labels at their circumplex positions, the current point, a trail.

Valence runs left (negative) to right (positive), arousal bottom (low) to top (high); each label
sits at its fixed coordinates from :data:`streamser.core.labels.CIRCUMPLEX`. The trail covers the
last few seconds and fades with age; the current point takes the colour of the top label (grey
when unvoiced). Main thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

from streamser.core.labels import CIRCUMPLEX
from streamser.gui import theme
from streamser.gui.history import History

__all__ = ["AVPlane"]

_TRAIL_POINTS = 48


class AVPlane(pg.PlotWidget):
    """Circumplex plot of (valence, arousal) with a fading trail."""

    def __init__(self, labels: Sequence[str], trail_s: float, font_px: int = 13) -> None:
        super().__init__()
        self.trail_s = trail_s
        item = self.getPlotItem()
        theme.quiet_plot(item)
        item.setAspectLocked(True)
        item.setXRange(-1.15, 1.15, padding=0.0)
        item.setYRange(-1.15, 1.15, padding=0.0)
        item.setLabel("bottom", "valence")
        item.setLabel("left", "arousal")
        for axis in ("bottom", "left"):
            item.getAxis(axis).setTicks([[(-1, "-1"), (0, "0"), (1, "+1")]])
        grid = pg.mkPen(theme.GRID, width=1)
        item.addItem(pg.InfiniteLine(pos=0, angle=0, pen=grid))
        item.addItem(pg.InfiniteLine(pos=0, angle=90, pen=grid))
        angle = np.linspace(0, 2 * np.pi, 181)
        item.addItem(pg.PlotCurveItem(np.cos(angle), np.sin(angle), pen=grid))
        font = QFont()
        font.setPixelSize(font_px)
        font.setBold(True)
        anchor_dot = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None))
        spots = []
        for label in labels:
            valence, arousal = CIRCUMPLEX[label]
            color = theme.label_color(label)
            text = pg.TextItem(label, color=color, anchor=(0.5, 1.15))
            text.setFont(font)
            text.setPos(valence, arousal)
            item.addItem(text)
            spots.append({"pos": (valence, arousal), "brush": theme.qcolor(color, 160)})
        anchor_dot.addPoints(spots)
        item.addItem(anchor_dot)
        self._trail_line = pg.PlotCurveItem(pen=pg.mkPen(theme.qcolor(theme.FOREGROUND, 60),
                                                         width=1.5))
        item.addItem(self._trail_line)
        self._trail = pg.ScatterPlotItem(pen=pg.mkPen(None), size=9)
        item.addItem(self._trail)
        self._now = pg.ScatterPlotItem(size=22, pen=pg.mkPen(theme.FOREGROUND, width=2))
        item.addItem(self._now)
        self._fade = [pg.mkBrush(theme.qcolor(theme.FOREGROUND, int(20 + 150 * (i + 1) /
                                                                  _TRAIL_POINTS)))
                      for i in range(_TRAIL_POINTS)]
        self._x = np.zeros(_TRAIL_POINTS)
        self._y = np.zeros(_TRAIL_POINTS)

    def refresh(self, history: History, now_s: float) -> None:
        """Redraw the trail (frames of the last ``trail_s`` seconds) and the current point."""
        times = history.times.view()
        if len(times) == 0:
            self._trail.setData([], [])
            self._trail_line.setData([], [])
            self._now.setData([], [])
            return
        recent = int(np.count_nonzero(times >= now_s - self.trail_s))
        n = max(1, min(recent, _TRAIL_POINTS))
        x, y = self._x[:n], self._y[:n]
        np.copyto(x, history.valence.view()[-n:])
        np.copyto(y, history.arousal.view()[-n:])
        self._trail_line.setData(x, y)
        self._trail.setData(x, y, brush=self._fade[-n:])
        frame = history.last_frame
        label = frame.top_label if frame is not None and frame.voiced else None
        color = theme.label_color(label)
        self._now.setData([x[-1]], [y[-1]], brush=pg.mkBrush(color))
