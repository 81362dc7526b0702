"""EngineHost: open, drain, restart, recover, close (no Qt, a stub engine)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from streamser.bus import Bus
from streamser.core.frames import AudioBlock, Frame
from streamser.errors import AudioSourceError
from streamser.gui.session import EngineHost, SourceChoice


class StubEngine:
    def __init__(self) -> None:
        self.frames: Bus[Frame] = Bus("frames")
        self.audio: Bus[AudioBlock] = Bus("audio")
        self.finished = threading.Event()
        self.started = self.stopped = 0
        self.subscribers_at_start = 0

    spec = None

    def start(self) -> None:
        self.started += 1
        self.subscribers_at_start = len(list(self.frames))

    def stop(self) -> None:
        self.stopped += 1
        self.finished.set()

    def set_hop(self, hop_s: float) -> None: ...
    def set_smoothing(self, tau_s: float) -> None: ...
    def stats(self) -> None: ...


class StubFactory:
    def __init__(self) -> None:
        self.engines: list[StubEngine] = []
        self.fail = 0

    def __call__(self, choice: SourceChoice) -> StubEngine:
        if self.fail:
            self.fail -= 1
            raise AudioSourceError("gone")
        self.engines.append(StubEngine())
        return self.engines[-1]


def test_subscribes_before_start_and_drains() -> None:
    """The dashboard's queues exist before the engine starts; drain returns what was published."""
    factory = StubFactory()
    host = EngineHost(factory, frame_capacity=2)
    host.open(SourceChoice(device=3))
    engine = factory.engines[0]
    assert engine.subscribers_at_start == 1 and host.running and host.generation == 1
    for i in range(5):
        engine.frames.publish(i)  # type: ignore[arg-type]
    frames, blocks = host.drain()
    assert frames == [3, 4] and blocks == []
    assert host.gui_dropped_frames() == 3


def test_reopen_stops_the_old_engine_and_keeps_drop_counts() -> None:
    """Opening again stops the previous engine; drop counters add up across engines."""
    factory = StubFactory()
    host = EngineHost(factory, frame_capacity=1)
    host.open(SourceChoice())
    factory.engines[0].frames.publish(1)  # type: ignore[arg-type]
    factory.engines[0].frames.publish(2)  # type: ignore[arg-type]
    host.open(SourceChoice(path=Path("x.wav")))
    assert factory.engines[0].stopped == 1 and host.generation == 2
    assert host.gui_dropped_frames() == 1
    host.close()
    host.close()
    assert factory.engines[1].stopped == 1 and not host.running


def test_failed_open_is_reported_and_retried_in_kiosk_mode() -> None:
    """A source that cannot open is retried every retry_s until it comes back."""
    factory = StubFactory()
    factory.fail = 2
    host = EngineHost(factory, auto_recover=True, retry_s=1.0)
    with pytest.raises(AudioSourceError):
        host.open(SourceChoice(device=1))
    assert host.error == "gone" and not host.running
    assert not host.poll(now=0.0)  # too early
    t = host._next_retry
    assert not host.poll(now=t + 0.01)  # fails again
    assert host.poll(now=t + 5.0)
    assert host.running and host.error is None and host.restarts == 1


def test_vanished_source_is_reopened_after_a_pause() -> None:
    """When the engine finishes (device lost) kiosk mode waits retry_s, then reopens."""
    factory = StubFactory()
    host = EngineHost(factory, auto_recover=True, retry_s=2.0)
    host.open(SourceChoice(device=1))
    factory.engines[0].finished.set()
    assert not host.poll(now=100.0)
    assert host.error is not None
    assert not host.poll(now=101.0)
    assert host.poll(now=102.5)
    assert len(factory.engines) == 2 and factory.engines[0].stopped == 1


def test_no_recovery_without_kiosk() -> None:
    """Outside kiosk mode a finished source stays finished."""
    factory = StubFactory()
    host = EngineHost(factory)
    host.open(SourceChoice())
    factory.engines[0].finished.set()
    assert not host.poll(now=1e9) and len(factory.engines) == 1
