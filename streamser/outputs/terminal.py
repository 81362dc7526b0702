"""The compact terminal view of live frames (``streamser live --no-gui``).

:func:`header` and :func:`format_frame` are pure formatting; :class:`TerminalOutput` prints
one line per frame from its own thread (``streamser-terminal``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from streamser.core.frames import Frame
from streamser.outputs.base import ThreadedOutput

if TYPE_CHECKING:
    from streamser.session import SessionLink

__all__ = ["TerminalOutput", "format_frame", "header"]

_BARS = " ▁▂▃▄▅▆▇█"


def header(labels: tuple[str, ...]) -> str:
    """The column legend printed once before the first frame."""
    names = " ".join(label[:3] for label in labels)
    return (f"{'time':>8}  {'emotion':<9} {'conf':>4}  {'arousal/valence':<15}  [{names}]  "
            "level  latency")


def _bar(p: float) -> str:
    return _BARS[min(len(_BARS) - 1, max(0, round(p * (len(_BARS) - 1))))]


def format_frame(frame: Frame) -> str:
    """One line per frame: time, top emotion, confidence, A/V, per-label bars, level, latency."""
    bars = " ".join(f"{_bar(p):>3}" for p in frame.smoothed)
    if frame.voiced and frame.top_label is not None:
        what = f"{frame.top_label:<9} {frame.confidence * 100:3.0f}%"
        av = f"A{frame.arousal:+.2f} V{frame.valence:+.2f}"
    elif frame.voiced and frame.uncertain:
        what = f"{'uncertain':<9} {frame.confidence * 100:3.0f}%"
        av = f"A{frame.arousal:+.2f} V{frame.valence:+.2f}"
    else:
        what = f"{'·':<9} {'':>4}"
        av = "(no speech)"
    return (f"{frame.end_s:7.2f}s  {what}  {av:<15}  [{bars}]  {frame.level_dbfs:4.0f}dB  "
            f"{frame.latency_ms:5.1f}ms")


class TerminalOutput(ThreadedOutput):
    """Print the header once, then one line per frame, to ``out``."""

    name = "terminal"

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    def open(self, link: SessionLink) -> None:
        print(header(link.info().labels), file=self.out, flush=True)

    def on_frame(self, frame: Frame) -> None:
        print(format_frame(frame), file=self.out, flush=True)

    def describe(self) -> str:
        return "terminal"
