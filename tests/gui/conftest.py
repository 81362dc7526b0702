"""Fixtures for the dashboard tests: offscreen Qt, the real engine on a fake model, fake devices.

Every test here fails on any Qt warning (pytest-qt ``qt_log_level_fail``), except the
offscreen platform's note that it cannot propagate size hints.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from streamser.engine import Engine
from streamser.gui.session import SourceChoice
from streamser.sources import FileSource

from .fakes import FakeRunner, speechlike, write_wav

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore("propagateSizeHints"))


@dataclass(frozen=True)
class FakeDevice:
    """Looks like streamser.devices.InputDevice."""

    index: int
    name: str
    hostapi: str = "ALSA"
    channels: int = 1
    default_samplerate: float = 16000.0
    is_default: bool = False


DEVICES = [FakeDevice(0, "Built-in Microphone", is_default=True), FakeDevice(3, "USB Headset")]


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of synthetic syllables, 2 s of silence, one clipped burst."""
    path = tmp_path_factory.mktemp("audio") / "speechlike.wav"
    return write_wav(path, speechlike(6.0, seed=3, clip=True, silence=(2.5, 4.5)))


class Factory:
    """Engine factory over the real Engine and FileSource; devices map to the test file.

    Records every choice it was asked for and every engine it built; ``fail`` makes the next
    calls raise AudioSourceError (a vanished device).
    """

    def __init__(self, wav: Path, realtime: bool = False) -> None:
        self.wav = wav
        self.realtime = realtime
        self.runner = FakeRunner()
        self.choices: list[SourceChoice] = []
        self.engines: list[Engine] = []
        self.fail = 0

    def __call__(self, choice: SourceChoice) -> Engine:
        from streamser.errors import AudioSourceError

        self.choices.append(choice)
        if self.fail > 0:
            self.fail -= 1
            raise AudioSourceError(f"input device {choice.device} is gone (test)")
        path = choice.path if choice.path is not None else self.wav
        engine = Engine(self.runner, FileSource(path, realtime=self.realtime))  # type: ignore[arg-type]
        self.engines.append(engine)
        return engine


@pytest.fixture
def factory(speech_wav: Path) -> Factory:
    return Factory(speech_wav)


@pytest.fixture
def themed(qapp: object) -> object:
    from streamser.gui.theme import apply_theme

    apply_theme(qapp)  # type: ignore[arg-type]
    return qapp


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every streamser thread a test started is gone when it ends."""
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t.name for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("streamser") and t.is_alive()]
    assert not left, f"threads still running: {left}"


def wait_until(qtbot: object, cond: Callable[[], bool], timeout_ms: int = 5000) -> None:
    qtbot.waitUntil(cond, timeout=timeout_ms)  # type: ignore[attr-defined]
