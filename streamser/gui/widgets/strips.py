"""Scrolling strips under the trajectories: the waveform, and prosody (pitch + energy).

Both show the last few seconds of the audio clock with 0 = now, on preallocated arrays.
The waveform is a min/max envelope per 10 ms column; prosody draws pitch (Hz, left axis, gaps
where unvoiced) over the energy in dBFS (filled, right axis). Main thread only.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from streamser.gui import theme
from streamser.gui.history import History

__all__ = ["ProsodyStrip", "WaveformStrip"]


def axis_width() -> int:
    """Pixels for a vertical axis with a label and 3-digit ticks in the current app font."""
    metrics = QFontMetrics(QApplication.font())
    return metrics.horizontalAdvance("-000") + metrics.height() + 16


def _strip_item(plot: pg.PlotWidget, span_s: float, left: str) -> pg.PlotItem:
    item = plot.getPlotItem()
    theme.quiet_plot(item)
    item.setXRange(-span_s, 0.0, padding=0.0)
    item.setLabel("left", left)
    for axis in ("left", "right"):
        item.getAxis(axis).enableAutoSIPrefix(False)
    item.showGrid(x=True, y=False, alpha=0.12)
    width = axis_width()
    item.getAxis("left").setWidth(width)
    item.showAxis("right")
    item.getAxis("right").setWidth(width)
    item.getAxis("right").setStyle(showValues=False)
    return item


class WaveformStrip(pg.PlotWidget):
    """Min/max waveform envelope of the last ``span_s`` seconds."""

    def __init__(self, span_s: float, capacity: int) -> None:
        super().__init__()
        self.span_s = span_s
        item = _strip_item(self, span_s, "wave")
        item.getAxis("left").setStyle(showValues=False)
        self._range = 1.0
        self._set_range(0.05)
        item.getAxis("bottom").setStyle(showValues=False)
        self._curve = pg.PlotCurveItem(pen=pg.mkPen(theme.ACCENT, width=1))
        item.addItem(self._curve)
        self._x = np.zeros(2 * capacity)
        self._y = np.zeros(2 * capacity)

    def refresh(self, history: History, now_s: float) -> None:
        """Redraw the envelope; ``now_s`` is the audio clock at the right edge."""
        times = history.env_times.view()
        n = len(times)
        x, y = self._x[: 2 * n], self._y[: 2 * n]
        np.subtract(times, now_s, out=x[0::2])
        x[1::2] = x[0::2]
        env = history.env.view()
        y[0::2] = env[:, 0]
        y[1::2] = env[:, 1]
        self._curve.setData(x, y)
        peak = float(np.max(np.abs(y))) if n else 0.0
        self._set_range(max(peak * 1.15, 0.97 * self._range))

    def _set_range(self, target: float) -> None:
        """Automatic gain: the y range follows the recent peak (floor 0.02, ceiling 1.0)."""
        target = min(1.0, max(0.02, target))
        if abs(target - self._range) > 0.05 * self._range:
            self._range = target
            self.getPlotItem().setYRange(-target, target, padding=0.0)


class ProsodyStrip(pg.PlotWidget):
    """Pitch (Hz, left axis) over energy (dBFS, right axis, filled)."""

    def __init__(self, span_s: float, capacity: int, fmin: float = 50.0,
                 fmax: float = 420.0, floor_db: float = -70.0) -> None:
        super().__init__()
        self.span_s = span_s
        item = _strip_item(self, span_s, "pitch Hz")
        item.setYRange(fmin, fmax, padding=0.0)
        item.getAxis("left").setTicks([[(hz, str(hz)) for hz in range(100, int(fmax), 100)]])
        item.setLabel("bottom", "seconds")
        self._energy_box = pg.ViewBox(enableMenu=False)
        self._energy_box.setMouseEnabled(x=False, y=False)
        item.scene().addItem(self._energy_box)
        right = item.getAxis("right")
        right.setStyle(showValues=True)
        right.linkToView(self._energy_box)
        right.setLabel("energy dBFS")
        right.setTicks([[(db, f"{db:d}") for db in range(-60, 0, 20)]])
        self._energy_box.setXLink(item)
        self._energy_box.setYRange(floor_db, 0.0, padding=0.0)
        self._energy_box.setZValue(-10)
        self.floor_db = floor_db
        item.vb.sigResized.connect(self._sync_boxes)
        self._energy = pg.PlotCurveItem(
            pen=pg.mkPen(theme.qcolor(theme.MUTED, 200), width=1),
            brush=pg.mkBrush(theme.qcolor(theme.MUTED, 70)), fillLevel=floor_db,
        )
        self._energy_box.addItem(self._energy)
        self._pitch = pg.PlotCurveItem(pen=pg.mkPen(theme.WARN, width=2.5))
        item.addItem(self._pitch)
        self._x = np.zeros(capacity)
        self._e = np.zeros(capacity)
        self._link = np.zeros(capacity, dtype=bool)

    def _sync_boxes(self) -> None:
        vb = self.getPlotItem().vb
        self._energy_box.setGeometry(vb.sceneBoundingRect())
        self._energy_box.linkedViewChanged(vb, self._energy_box.XAxis)

    def refresh(self, history: History, now_s: float) -> None:
        """Redraw pitch and energy; ``now_s`` is the audio clock at the right edge."""
        times = history.pitch_times.view()
        n = len(times)
        x, e = self._x[:n], self._e[:n]
        np.subtract(times, now_s, out=x)
        np.maximum(history.energy_db.view(), self.floor_db, out=e)
        self._energy.setData(x, e)
        pitch = history.pitch_hz.view()
        link = self._link[:n]
        if n:
            # no line across gaps or jumps of more than a fifth (octave errors, new speaker)
            with np.errstate(invalid="ignore"):
                np.less(np.abs(np.diff(np.log2(pitch))), 0.6, out=link[:-1])
            link[-1] = False
        self._pitch.setData(x, pitch, connect=link)
