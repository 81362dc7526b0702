"""Trajectories: the last minute of smoothed per-label probabilities, one colour per label.

Unvoiced stretches are not drawn as emotions: the label lines break there and a grey band marks
"no speech". The x axis is audio-clock seconds relative to the newest frame (0 = now).
Main thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from streamser.gui import theme
from streamser.gui.history import History

__all__ = ["LegendRow", "TrajectoryPlot"]


class TrajectoryPlot(pg.PlotWidget):
    """Per-label probability lines over the last ``span_s`` seconds."""

    def __init__(self, labels: Sequence[str], span_s: float, capacity: int,
                 line_width: float = 2.5) -> None:
        super().__init__()
        self.labels = tuple(labels)
        self.span_s = span_s
        item = self.getPlotItem()
        theme.quiet_plot(item)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "seconds")
        item.setLabel("left", "probability")
        item.setXRange(-span_s, 0.0, padding=0.0)
        item.setYRange(0.0, 1.0, padding=0.02)
        item.setLimits(yMin=-0.05, yMax=1.05)
        self._band = pg.PlotCurveItem(
            pen=pg.mkPen(None), brush=pg.mkBrush(theme.qcolor(theme.UNVOICED, 110)),
            fillLevel=0.0,
        )
        item.addItem(self._band)
        self.curves: dict[str, pg.PlotCurveItem] = {}
        for label in self.labels:
            curve = pg.PlotCurveItem(
                pen=pg.mkPen(theme.label_color(label), width=line_width), connect="finite",
                name=label,
            )
            item.addItem(curve)
            self.curves[label] = curve
        self._x = np.zeros(capacity)
        self._y = np.zeros((len(self.labels), capacity))
        self._band_y = np.zeros(capacity)
        self._edges = np.zeros(capacity + 1)

    def refresh(self, history: History, now_s: float) -> None:
        """Redraw from ``history``; ``now_s`` is the audio clock at the right edge."""
        times = history.times.view()
        n = len(times)
        x, band = self._x[:n], self._band_y[:n]
        np.subtract(times, now_s, out=x)
        unvoiced = history.voiced.view() < 0.5
        np.copyto(band, unvoiced)
        y = self._y[:, :n]
        np.copyto(y, history.smoothed.view().T)
        np.copyto(y, np.nan, where=unvoiced[None, :])
        if n >= 2:
            # one box per frame, from the midpoint with the previous frame to the next one
            edges = self._edges[: n + 1]
            np.add(x[1:], x[:-1], out=edges[1:n])
            edges[1:n] *= 0.5
            edges[0] = x[0] - (x[1] - x[0]) / 2
            edges[n] = x[n - 1] + (x[n - 1] - x[n - 2]) / 2
            self._band.setData(edges, band, stepMode="center")
        else:
            self._band.setData([], [], stepMode=None)
        for i, label in enumerate(self.labels):
            self.curves[label].setData(x, y[i])


class LegendRow(QLabel):
    """Coloured label names (plus the "no speech" grey) above the trajectories; wraps."""

    def __init__(self, labels: Sequence[str]) -> None:
        entries = [(label, theme.label_color(label)) for label in labels]
        entries.append(("no speech", theme.UNVOICED))
        chips = [f'<span style="color:{color}">\u25a0</span>&nbsp;{name}'
                 for name, color in entries]
        super().__init__(" &nbsp;&nbsp; ".join(chips))
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setContentsMargins(8, 0, 8, 0)
