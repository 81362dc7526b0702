"""The dashboard's dark theme and its one label -> colour map.

Every widget that shows a label takes its colour from :data:`LABEL_COLORS` (via
:func:`label_color`), so "angry" is the same red in the trajectories, on the arousal-valence
plane and in the big "now" label. :func:`apply_theme` is called once, on the Qt main thread,
before any widget exists (pyqtgraph reads its config options when a plot is created).
The colour constants import no Qt, so other front ends (terminal, browser page) can share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication

__all__ = [
    "ACCENT",
    "BACKGROUND",
    "CLIP",
    "FOREGROUND",
    "GOOD",
    "GRID",
    "LABEL_COLORS",
    "MUTED",
    "PANEL",
    "UNVOICED",
    "WARN",
    "apply_theme",
    "label_color",
    "qcolor",
    "quiet_plot",
]

#: label -> hex colour; chosen to stay distinct for the common colour-vision deficiencies on a
#: dark background (hue *and* lightness differ between neighbours on the circumplex).
LABEL_COLORS: dict[str, str] = {
    "neutral": "#b0bec5",
    "calm": "#4dd0e1",
    "happy": "#ffd54f",
    "sad": "#5c7cfa",
    "angry": "#ff5252",
    "fearful": "#ce93d8",
    "disgust": "#9ccc65",
    "surprised": "#ffa726",
}

BACKGROUND = "#111418"
PANEL = "#181c22"
FOREGROUND = "#dde3ea"
MUTED = "#7d8794"
GRID = "#2a3038"
UNVOICED = "#3b4350"
"""Unvoiced / silence: shown as such, never as an emotion."""
ACCENT = "#4dabf7"
GOOD = "#51cf66"
WARN = "#fcc419"
CLIP = "#ff3b30"


def label_color(label: str | None) -> str:
    """Colour of ``label``; the unvoiced grey for None or an unknown label."""
    if label is None:
        return UNVOICED
    return LABEL_COLORS.get(label, MUTED)


def qcolor(hex_color: str, alpha: int = 255) -> QColor:
    """A QColor from ``#rrggbb`` with ``alpha`` in 0..255."""
    from PySide6.QtGui import QColor

    color = QColor(hex_color)
    color.setAlpha(alpha)
    return color


def apply_theme(app: QApplication, scale: float = 1.0) -> None:
    """Fusion style, dark palette, base font scaled by ``scale``; pyqtgraph colours to match.

    Main thread, once, before widgets are created.
    """
    import pyqtgraph as pg
    from PySide6.QtGui import QColor, QFont, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL,
        QPalette.ColorRole.WindowText: FOREGROUND,
        QPalette.ColorRole.Base: BACKGROUND,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: FOREGROUND,
        QPalette.ColorRole.Text: FOREGROUND,
        QPalette.ColorRole.Button: "#232932",
        QPalette.ColorRole.ButtonText: FOREGROUND,
        QPalette.ColorRole.BrightText: CLIP,
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: BACKGROUND,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(MUTED))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(MUTED))
    app.setPalette(palette)
    font = QFont(app.font())
    size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
    font.setPointSizeF(max(size, 10.0) * scale)
    app.setFont(font)
    pg.setConfigOptions(background=BACKGROUND, foreground=FOREGROUND, antialias=True)


def quiet_plot(item: object) -> None:
    """A plot for watching, not exploring: no menu, buttons or mouse; axes cached as pixmaps.

    Caching the axes (and the grid lines they draw) matters at 30 Hz: without it every curve
    update replays every axis picture. ``item`` is a pyqtgraph PlotItem. Main thread.
    """
    from PySide6.QtWidgets import QGraphicsItem

    item.setMenuEnabled(False)  # type: ignore[attr-defined]
    item.hideButtons()  # type: ignore[attr-defined]
    item.setMouseEnabled(x=False, y=False)  # type: ignore[attr-defined]
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)  # type: ignore[attr-defined]
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
