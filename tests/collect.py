"""A test output that keeps what it is given, on its own thread like any ThreadedOutput."""

from __future__ import annotations

from streamser.core.config import LiveSettings
from streamser.core.frames import Frame
from streamser.errors import OutputError
from streamser.outputs.base import ThreadedOutput
from streamser.session import SessionLink


class Collect(ThreadedOutput):
    """Keeps every frame and config it is given (on its own thread)."""

    def __init__(self, name: str = "collect", fail_open: bool = False) -> None:
        super().__init__()
        self.name = name
        self.fail_open = fail_open
        self.frames: list[Frame] = []
        self.configs: list[float] = []
        self.closed = False

    def open(self, link: SessionLink) -> None:
        if self.fail_open:
            raise OutputError(f"{self.name} cannot open (test)")

    def on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def on_config(self, settings: LiveSettings) -> None:
        self.configs.append(settings.hop_s)

    def close(self) -> None:
        self.closed = True
