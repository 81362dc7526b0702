"""The status bar: engine state and source, model, latency, drops, websocket, recording.

The window builds a :class:`StatusInfo` a few times per second and hands it to
:meth:`StatusPanel.show_status`, which only touches the labels whose text changed.
Main thread only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtWidgets import QLabel, QStatusBar

from streamser.gui import theme

__all__ = ["StatusInfo", "StatusPanel"]


@dataclass(frozen=True)
class StatusInfo:
    """One snapshot of what the status bar shows."""

    state: str
    """running / stopped / finished / error / reopening ..."""
    source: str
    model: str
    latency_ms: float
    """Median processing latency of recent frames, ms (NaN before the first frame)."""
    dropped_blocks: int
    """Audio blocks the engine dropped (capture overruns)."""
    gui_dropped: int
    """Frames the dashboard's own queue dropped (it fell behind)."""
    ws_port: int | None
    ws_subscribers: int | None
    message: str = ""
    """An error or note for the user (empty when all is well)."""


class StatusPanel(QStatusBar):
    """Permanent fields on the right, the current message on the left."""

    _FIELDS = ("state", "source", "model", "latency", "dropped", "ws")

    def __init__(self) -> None:
        super().__init__()
        self.setSizeGripEnabled(False)
        self.fields: dict[str, QLabel] = {}
        for name in self._FIELDS:
            label = QLabel("")
            label.setObjectName(f"status_{name}")
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)
            self.fields[name] = label
        self._message = QLabel("")
        self._message.setStyleSheet(f"color: {theme.WARN}")
        self.addWidget(self._message, 1)

    def _set(self, name: str, text: str, color: str | None = None) -> None:
        label = self.fields[name]
        if label.text() != text:
            label.setText(text)
        style = f"color: {color}" if color else ""
        if label.styleSheet() != style:
            label.setStyleSheet(style)

    def show_status(self, info: StatusInfo) -> None:
        """Show ``info``."""
        state_color = {"running": theme.GOOD, "error": theme.CLIP}.get(info.state, theme.WARN)
        self._set("state", f"\u25cf {info.state}", state_color)
        self._set("source", info.source)
        self._set("model", f"model {info.model}")
        latency = "\u2013" if math.isnan(info.latency_ms) else f"{info.latency_ms:.0f} ms"
        self._set("latency", f"latency {latency}")
        dropped = f"dropped {info.dropped_blocks} blocks"
        if info.gui_dropped:
            dropped += f", {info.gui_dropped} frames (GUI)"
        self._set("dropped", dropped,
                  theme.WARN if info.dropped_blocks or info.gui_dropped else None)
        if info.ws_port is None:
            ws = "websocket off"
        else:
            subs = "?" if info.ws_subscribers is None else str(info.ws_subscribers)
            ws = f"ws :{info.ws_port} \u00b7 {subs} subscribers"
        self._set("ws", ws)
        if self._message.text() != info.message:
            self._message.setText(info.message)
